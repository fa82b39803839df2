// pstree: processes arranged under their parents, in PID order at each level.
#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "plugins/linux_task_rows.hpp"
#include "plugins/plugins.hpp"

namespace vmi {

namespace {

constexpr std::uint32_t kMaxDepth = 4096;  // a parent cycle in a hostile image cannot recurse forever

// What the tree is built from: a process's pid, its parent's, and its row (made as the task was
// read, so no Task is kept per process; at the 1M-task cap that is 16 MB beside the rows).
struct Process {
  std::int32_t pid = 0;
  std::optional<std::int32_t> ppid;  // empty when real_parent is unreadable: shown at the top level
  std::size_t row = 0;
};

// The tree is known only when every process has been read, so its rows are kept until then.
Expected<void> run_pstree(PluginContext& context) {
  std::vector<Row> rows;
  std::vector<Process> processes;
  VMI_TRY_VOID(linux_objects::for_each_task(*context.kernel, false, context.diagnostics, [&](auto&& task) {
    processes.push_back({task.tgid, task.ppid, rows.size()});
    rows.push_back(make_row(kTaskRow, task));
    return true;
  }));
  std::stable_sort(processes.begin(), processes.end(),
                   [](const Process& a, const Process& b) { return a.pid < b.pid; });

  auto has_pid = [&](std::int32_t pid) {
    auto it = std::lower_bound(processes.begin(), processes.end(), pid,
                               [](const Process& process, std::int32_t value) { return process.pid < value; });
    return it != processes.end() && it->pid == pid;
  };
  // Parent links as sorted (parent pid, child index) pairs: a parent's children are one run, in
  // pid order.
  std::vector<std::pair<std::int32_t, std::size_t>> children;
  std::vector<std::size_t> roots;
  for (std::size_t i = 0; i < processes.size(); ++i) {
    const Process& process = processes[i];
    if (process.ppid && *process.ppid != process.pid && has_pid(*process.ppid)) {
      children.emplace_back(*process.ppid, i);
    } else {
      roots.push_back(i);  // parent is swapper (0), not on the list, or unreadable
    }
  }
  std::sort(children.begin(), children.end());

  bool wanted = true;  // until the sink has had enough
  auto emit = [&](const Process& process, std::uint32_t depth) {
    Row& row = rows[process.row];
    row.depth = depth;
    if (wanted) wanted = context.out.row(row);
    std::vector<Cell>().swap(row.cells);  // a sink that keeps rows copies them: free ours as we go
  };
  std::vector<bool> emitted(processes.size(), false);
  // Iterative depth-first walk: an explicit stack keeps hostile depth off the call stack.
  std::vector<std::pair<std::size_t, std::uint32_t>> stack;
  auto push_children = [&](std::int32_t pid, std::uint32_t depth) {
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
    if (emitted[index]) continue;
    emitted[index] = true;
    emit(processes[index], depth);
    if (depth < kMaxDepth) push_children(processes[index].pid, depth + 1);
  }
  // Processes caught in a parent cycle are reachable from no root; show them at the top level.
  for (std::size_t i = 0; i < processes.size(); ++i) {
    if (!emitted[i]) {
      context.diagnostics.warn("task " + std::to_string(processes[i].pid) + " is in a parent cycle");
      emit(processes[i], 0);
    }
  }
  return {};
}

}  // namespace

constexpr std::string_view kPstreeAliases[] = {"linux.pstree.PsTree"};
const Plugin kPstreePlugin{.name = "linux.pstree",
                           .short_name = "pstree",
                           .os = "linux",
                           .aliases = kPstreeAliases,
                           .description = "Show processes as a tree of parents and children",
                           .needs = Requirement::kernel,
                           .columns = kTaskRow.columns,
                           .tree = true,
                           .options = {},
                           .run = run_pstree};

}  // namespace vmi
