// pidhashtable: the tasks of the initial pid namespace's pid table, a view beside the task list
// (a task unlinked from the list but still holding its pid shows here and not in pslist).
#include <algorithm>

#include "plugins/plugins.hpp"
#include "vmi/linux.hpp"
#include "vmi/rows.hpp"

namespace vmi {

namespace {

struct PidRow {
  Addr offset = 0;
  std::int32_t pid = 0, tid = 0;
  std::optional<std::int32_t> ppid;
  std::string comm;
};

// Volatility 3's columns (OFFSET is the task_struct's kernel-virtual address).
constexpr auto kPidRow =
    declare_row(column<&PidRow::offset, ColumnType::address>("OFFSET"), column<&PidRow::pid>("PID"),
                column<&PidRow::tid>("TID"), column<&PidRow::ppid>("PPID"), column<&PidRow::comm>("COMM"));

Expected<void> run_pidhashtable(PluginContext& context) {
  const Kernel& kernel = *context.kernel;
  std::vector<Addr> addresses;
  VMI_TRY_VOID(linux_objects::for_each_pid_table_entry(kernel, context.diagnostics,
                                                       [&](const linux_objects::PidTableEntry& entry) {
                                                         addresses.push_back(entry.task);
                                                         return true;
                                                       }));
  auto tasks = VMI_TRY(linux_objects::read_tasks(kernel, addresses, context.diagnostics));
  // Volatility 3's order: by process, then thread.
  std::ranges::sort(tasks, {}, [](const linux_objects::Task& task) { return std::pair(task.tgid, task.pid); });
  RowWriter rows(context.out, kPidRow);
  for (linux_objects::Task& task : tasks) {
    if (!rows.write(
            PidRow{.offset = task.address, .pid = task.tgid, .tid = task.pid, .ppid = task.ppid, .comm = task.comm}))
      break;
  }
  return {};
}

}  // namespace

constexpr std::string_view kPidhashtableAliases[] = {"linux.pidhashtable.PIDHashTable"};
const Plugin kPidhashtablePlugin{.name = "linux.pidhashtable",
                                 .short_name = "pidhashtable",
                                 .os = "linux",
                                 .aliases = kPidhashtableAliases,
                                 .description = "Tasks from the initial pid namespace's pid table",
                                 .needs = Requirement::kernel,
                                 .columns = kPidRow.columns,
                                 .tree = false,
                                 .options = {},
                                 .run = run_pidhashtable};

}  // namespace vmi
