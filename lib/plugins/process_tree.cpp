// Parent links as sorted (parent pid, child) pairs, walked depth-first with an explicit stack.
#include "plugins/process_tree.hpp"

#include <algorithm>
#include <string>
#include <utility>

namespace vmi {

namespace {
constexpr std::uint32_t kMaxDepth = 4096;  // a parent cycle in a hostile image cannot recurse forever
}  // namespace

void visit_process_tree(std::vector<ProcessNode> nodes,
                        const std::function<void(const ProcessNode& node, std::uint32_t depth, bool in_cycle)>& visit) {
  std::stable_sort(nodes.begin(), nodes.end(),
                   [](const ProcessNode& a, const ProcessNode& b) { return a.pid < b.pid; });
  auto has_pid = [&](std::int64_t pid) {
    auto it = std::lower_bound(nodes.begin(), nodes.end(), pid,
                               [](const ProcessNode& node, std::int64_t value) { return node.pid < value; });
    return it != nodes.end() && it->pid == pid;
  };
  // A parent's children are one run of `children`, in pid order.
  std::vector<std::pair<std::int64_t, std::size_t>> children;
  std::vector<std::size_t> roots;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const ProcessNode& node = nodes[i];
    if (node.parent && *node.parent != node.pid && has_pid(*node.parent)) {
      children.emplace_back(*node.parent, i);
    } else {
      roots.push_back(i);
    }
  }
  std::sort(children.begin(), children.end());

  std::vector<bool> visited(nodes.size(), false);
  std::vector<std::pair<std::size_t, std::uint32_t>> stack;
  auto push_children = [&](std::int64_t pid, std::uint32_t depth) {
    auto begin = std::lower_bound(children.begin(), children.end(), std::pair{pid, std::size_t{0}});
    auto end = begin;
    while (end != children.end() && end->first == pid) ++end;
    // Pushed in reverse, so the stack pops the lowest pid first.
    for (auto it = end; it != begin;) stack.emplace_back((--it)->second, depth);
  };
  std::reverse(roots.begin(), roots.end());
  for (std::size_t root : roots) stack.emplace_back(root, 0);
  while (!stack.empty()) {
    auto [index, depth] = stack.back();
    stack.pop_back();
    if (visited[index]) continue;
    visited[index] = true;
    visit(nodes[index], depth, false);
    if (depth < kMaxDepth) push_children(nodes[index].pid, depth + 1);
  }
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (!visited[i]) visit(nodes[i], 0, true);
  }
}

void write_process_tree(std::vector<ProcessNode> nodes, std::vector<Row>& rows, RowSink& out, Diagnostics& diagnostics,
                        std::string_view noun) {
  bool wanted = true;  // until the sink has had enough
  visit_process_tree(std::move(nodes), [&](const ProcessNode& node, std::uint32_t depth, bool in_cycle) {
    if (in_cycle) diagnostics.warn(std::string(noun) + " " + std::to_string(node.pid) + " is in a parent cycle");
    Row& row = rows[node.row];
    row.depth = depth;
    if (wanted) wanted = out.row(row);
    std::vector<Cell>().swap(row.cells);  // a sink that keeps rows copies them: free ours as we go
  });
}

}  // namespace vmi
