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
  const auto tasks = VMI_TRY(linux_objects::list_tasks(*kernel, args.has("threads"), session.diagnostics()));
  Table table{kTaskColumns, {}, false};
  for (const auto& task : tasks) {
    if (!pids.empty() && std::find(pids.begin(), pids.end(), task.tgid) == pids.end()) continue;
    table.rows.push_back(task_row(task));
  }
  return table;
}

}  // namespace

const Plugin kPslistPlugin{"pslist", "linux", "List processes from the kernel's task list", kOptions, run_pslist};

}  // namespace vmi
