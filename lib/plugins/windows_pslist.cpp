// windows.pslist: the processes on PsActiveProcessHead's list.
#include <algorithm>

#include "plugins/plugins.hpp"
#include "plugins/windows_process_rows.hpp"

namespace vmi {

namespace {

constexpr PluginOption kOptions[] = {
    {"pid", OptionType::integers, "only these process IDs (comma-separated)"},
};

Expected<void> run_windows_pslist(PluginContext& context) {
  const auto pids = VMI_TRY(context.args.integers("pid"));
  RowWriter rows(context.out, kWindowsProcessRow);
  return windows_objects::for_each_process(*context.kernel, context.diagnostics,
                                           [&](windows_objects::Process&& process) {
                                             if (!pids.empty() && std::ranges::find(pids, process.pid) == pids.end())
                                               return true;
                                             return rows.write(process);
                                           });
}

}  // namespace

constexpr std::string_view kWindowsPslistAliases[] = {"windows.pslist.PsList"};
const Plugin kWindowsPslistPlugin{.name = "windows.pslist",
                                  .short_name = "pslist",
                                  .os = "windows",
                                  .aliases = kWindowsPslistAliases,
                                  .description = "List processes from PsActiveProcessHead",
                                  .needs = Requirement::kernel,
                                  .columns = kWindowsProcessRow.columns,
                                  .tree = false,
                                  .options = kOptions,
                                  .run = run_windows_pslist};

}  // namespace vmi
