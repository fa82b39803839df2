// windows.pstree: processes under their parents (InheritedFromUniqueProcessId), with the image
// path audited at creation and the command line and image path from the PEB.
#include <vector>

#include "plugins/plugins.hpp"
#include "plugins/process_tree.hpp"
#include "plugins/windows_process_rows.hpp"

namespace vmi {

namespace {

// The tree is known only when every process has been read, so its rows are kept until then.
Expected<void> run_windows_pstree(PluginContext& context) {
  std::vector<Row> rows;
  std::vector<ProcessNode> nodes;
  VMI_TRY_VOID(
      windows_objects::for_each_process(*context.kernel, context.diagnostics, [&](windows_objects::Process&& process) {
        const auto* parent = std::get_if<std::int64_t>(&process.ppid);
        nodes.push_back({process.pid, parent != nullptr ? std::optional(*parent) : std::nullopt, rows.size()});
        auto strings = windows_objects::read_process_strings(*context.kernel, process, context.diagnostics);
        rows.push_back(make_row(kWindowsProcessTreeRow, WindowsProcessTreeRow{std::move(process), std::move(strings)}));
        return true;
      }));
  write_process_tree(std::move(nodes), rows, context.out, context.diagnostics, "process");
  return {};
}

}  // namespace

constexpr std::string_view kWindowsPstreeAliases[] = {"windows.pstree.PsTree"};
const Plugin kWindowsPstreePlugin{.name = "windows.pstree",
                                  .short_name = "pstree",
                                  .os = "windows",
                                  .aliases = kWindowsPstreeAliases,
                                  .description = "Show processes as a tree of parents and children",
                                  .needs = Requirement::kernel,
                                  .columns = kWindowsProcessTreeRow.columns,
                                  .tree = true,
                                  .options = {},
                                  .run = run_windows_pstree};

}  // namespace vmi
