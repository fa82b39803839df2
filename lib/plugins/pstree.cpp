// pstree: processes arranged under their parents, in PID order at each level.
#include <optional>
#include <utility>
#include <vector>

#include "plugins/linux_task_rows.hpp"
#include "plugins/plugins.hpp"
#include "plugins/process_tree.hpp"

namespace vmi {

namespace {

// The tree is known only when every process has been read, so its rows are kept until then
// (made as each task was read, so no Task is kept per process).
Expected<void> run_pstree(PluginContext& context) {
  std::vector<Row> rows;
  std::vector<ProcessNode> nodes;
  VMI_TRY_VOID(linux_objects::for_each_task(*context.kernel, false, context.diagnostics, [&](auto&& task) {
    // Parent unreadable, swapper (0) or not on the list: shown at the top level.
    nodes.push_back({task.tgid, task.ppid ? std::optional<std::int64_t>(*task.ppid) : std::nullopt, rows.size()});
    rows.push_back(make_row(kTaskRow, task));
    return true;
  }));
  write_process_tree(std::move(nodes), rows, context.out, context.diagnostics, "task");
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
