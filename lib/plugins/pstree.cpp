// pstree: processes arranged under their parents, in PID order at each level.
#include <algorithm>
#include <map>

#include "plugins/linux_task_rows.hpp"
#include "plugins/plugins.hpp"
#include "vmi/session.hpp"

namespace vmi {

namespace {

constexpr std::uint32_t kMaxDepth = 4096;  // a parent cycle in a hostile image cannot recurse forever

Expected<Table> run_pstree(Session& session, const PluginArgs& /*args*/) {
  const Kernel* kernel = VMI_TRY(session.kernel());
  auto tasks = VMI_TRY(linux_objects::list_tasks(*kernel, false, session.diagnostics()));
  std::sort(tasks.begin(), tasks.end(), [](const auto& a, const auto& b) { return a.tgid < b.tgid; });

  std::map<std::int32_t, std::size_t> by_pid;
  for (std::size_t i = 0; i < tasks.size(); ++i) by_pid.emplace(tasks[i].tgid, i);
  std::multimap<std::int32_t, std::size_t> children;  // parent pid -> child index, in pid order
  std::vector<std::size_t> roots;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const auto& task = tasks[i];
    if (task.ppid != task.tgid && by_pid.contains(task.ppid)) {
      children.emplace(task.ppid, i);
    } else {
      roots.push_back(i);  // parent is swapper (0) or not on the list
    }
  }

  Table table{kTaskColumns, {}, true};
  std::vector<bool> emitted(tasks.size(), false);
  // Iterative depth-first walk: an explicit stack keeps hostile depth off the call stack.
  std::vector<std::pair<std::size_t, std::uint32_t>> stack;
  auto push_children = [&](std::int32_t pid, std::uint32_t depth) {
    auto [begin, end] = children.equal_range(pid);
    std::vector<std::size_t> kids;
    for (auto it = begin; it != end; ++it) kids.push_back(it->second);
    std::reverse(kids.begin(), kids.end());  // the stack pops the lowest pid first
    for (std::size_t kid : kids) stack.emplace_back(kid, depth);
  };
  std::reverse(roots.begin(), roots.end());
  for (std::size_t root : roots) stack.emplace_back(root, 0);
  while (!stack.empty()) {
    auto [index, depth] = stack.back();
    stack.pop_back();
    if (emitted[index]) continue;
    emitted[index] = true;
    table.rows.push_back(task_row(tasks[index], depth));
    if (depth < kMaxDepth) push_children(tasks[index].tgid, depth + 1);
  }
  // Tasks caught in a parent cycle are reachable from no root; show them at the top level.
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    if (!emitted[i]) {
      session.diagnostics().warn("task " + std::to_string(tasks[i].tgid) + " is in a parent cycle");
      table.rows.push_back(task_row(tasks[i], 0));
    }
  }
  return table;
}

}  // namespace

const Plugin kPstreePlugin{"pstree", "linux", "Show processes as a tree of parents and children", {}, run_pstree};

}  // namespace vmi
