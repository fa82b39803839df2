// pslist: the processes (and optionally threads) on the kernel's task list.
#include <algorithm>

#include "plugins/linux_task_rows.hpp"
#include "plugins/plugins.hpp"

namespace vmi {

namespace {

constexpr PluginOption kOptions[] = {
    {"threads", OptionType::flag, "list every thread, not only thread-group leaders"},
    {"pid", OptionType::integers, "only these process IDs (comma-separated)"},
};

Expected<void> run_pslist(PluginContext& context) {
  const auto pids = VMI_TRY(context.args.integers("pid"));
  RowWriter rows(context.out, kTaskRow);
  // Rows go out as the walk reads them: nothing keeps every task.
  return linux_objects::for_each_task(
      *context.kernel, context.args.flag("threads"), context.diagnostics, [&](auto&& task) {
        if (!pids.empty() && std::find(pids.begin(), pids.end(), task.tgid) == pids.end()) return true;
        return rows.write(task);
      });
}

}  // namespace

constexpr std::string_view kPslistAliases[] = {"linux.pslist.PsList"};
const Plugin kPslistPlugin{.name = "linux.pslist",
                           .short_name = "pslist",
                           .os = "linux",
                           .aliases = kPslistAliases,
                           .description = "List processes from the kernel's task list",
                           .needs = Requirement::kernel,
                           .columns = kTaskRow.columns,
                           .tree = false,
                           .options = kOptions,
                           .run = run_pslist};

}  // namespace vmi
