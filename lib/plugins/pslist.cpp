// pslist: the processes (and optionally threads) on the kernel's task list.
#include <algorithm>

#include "plugins/linux_task_rows.hpp"
#include "plugins/plugins.hpp"
#include "vmi/session.hpp"

namespace vmi {

namespace {

constexpr PluginOption kOptions[] = {
    {"threads", "list every thread, not only thread-group leaders", false},
    {"pid", "only these process IDs (comma-separated)", true},
};

Expected<Table> run_pslist(Session& session, const PluginArgs& args) {
  const Kernel* kernel = VMI_TRY(session.kernel());
  const auto pids = VMI_TRY(args.integers("pid"));
  Table table{kTaskColumns, {}, false};
  // Rows straight from the walk: no list of every task is kept beside them.
  VMI_TRY_VOID(linux_objects::for_each_task(*kernel, args.has("threads"), session.diagnostics(), [&](auto&& task) {
    if (pids.empty() || std::find(pids.begin(), pids.end(), task.tgid) != pids.end())
      table.rows.push_back(task_row(task));
    return true;
  }));
  return table;
}

}  // namespace

constexpr std::string_view kPslistAliases[] = {"linux.pslist.PsList"};
const Plugin kPslistPlugin{
    "linux.pslist", "pslist", "linux",   kPslistAliases, "List processes from the kernel's task list",
    kTaskColumns,   kOptions, run_pslist};

}  // namespace vmi
