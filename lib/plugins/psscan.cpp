// psscan: tasks carved from all of physical memory, live, exited and hidden alike, each marked
// with whether the task list and the pid table hold it: a live task that neither holds, and that
// is not an idle task (pid 0), has been hidden.
#include <set>

#include "plugins/plugins.hpp"
#include "vmi/linux.hpp"
#include "vmi/rows.hpp"
#include "vmi/session.hpp"

namespace vmi {

namespace {

struct ScanRow {
  Addr offset = 0;
  std::int32_t pid = 0, tid = 0;
  std::optional<std::int32_t> ppid;
  std::string comm;
  std::string exit_state;
  bool in_task_list = false, in_pid_table = false;
};

// Volatility 3's columns, then the two cross-views.
constexpr auto kScanRow =
    declare_row(column<&ScanRow::offset, ColumnType::address>("OFFSET (P)"), column<&ScanRow::pid>("PID"),
                column<&ScanRow::tid>("TID"), column<&ScanRow::ppid>("PPID"), column<&ScanRow::comm>("COMM"),
                column<&ScanRow::exit_state>("EXIT_STATE"), column<&ScanRow::in_task_list>("In Task List"),
                column<&ScanRow::in_pid_table>("In PID Table"));

constexpr PluginOption kOptions[] = {{"jobs", OptionType::integers, "threads scanning memory (default: one per core)"}};

// Volatility 3's names for task_struct.exit_state.
std::string exit_state_name(std::uint32_t state) {
  switch (state) {
    case 0:
      return "TASK_RUNNING";
    case 0x10:
      return "EXIT_DEAD";
    case 0x20:
      return "EXIT_ZOMBIE";
    default:
      return "EXIT_TRACE";
  }
}

// The physical addresses of the tasks a kernel-virtual route finds, for comparing with carved ones.
class PhysicalSet {
 public:
  explicit PhysicalSet(const Kernel& kernel) : layer_(kernel.kernel_layer()) {}
  void add(Addr task) {
    if (auto translation = layer_.translate(task)) addresses_.insert(translation->physical);
  }
  bool contains(Addr physical) const { return addresses_.contains(physical); }

 private:
  const PagedLayer& layer_;
  std::set<Addr> addresses_;
};

Expected<void> run_psscan(PluginContext& context) {
  const Kernel& kernel = *context.kernel;
  linux_objects::TaskScanOptions options;
  options.workers = static_cast<unsigned>(VMI_TRY(scan_jobs(context.args)));
  options.progress = [&](std::uint64_t done, std::uint64_t total) {
    context.out.progress("scanning physical memory", done, total);
  };
  const auto carved =
      VMI_TRY(linux_objects::scan_for_tasks(kernel, context.session.image(), options, context.diagnostics));

  // The list's head, init_task, is the boot CPU's idle task; the other CPUs' idle tasks are on
  // neither list, as the kernel never adds a pid-0 task to them.
  PhysicalSet listed(kernel);
  if (auto init_task = kernel.symbol("init_task")) listed.add(*init_task);
  VMI_TRY_VOID(linux_objects::for_each_task(kernel, true, context.diagnostics, [&](linux_objects::Task&& task) {
    listed.add(task.address);
    return true;
  }));
  PhysicalSet hashed(kernel);
  VMI_TRY_VOID(linux_objects::for_each_pid_table_entry(kernel, context.diagnostics,
                                                       [&](const linux_objects::PidTableEntry& entry) {
                                                         hashed.add(entry.task);
                                                         return true;
                                                       }));

  RowWriter rows(context.out, kScanRow);
  for (const linux_objects::CarvedTask& task : carved) {
    const ScanRow row{.offset = task.physical,
                      .pid = task.tgid,
                      .tid = task.pid,
                      .ppid = task.ppid,
                      .comm = task.comm,
                      .exit_state = exit_state_name(task.exit_state),
                      .in_task_list = listed.contains(task.physical),
                      .in_pid_table = hashed.contains(task.physical)};
    if (!rows.write(row)) break;
  }
  return {};
}

}  // namespace

constexpr std::string_view kPsscanAliases[] = {"linux.psscan.PsScan"};
const Plugin kPsscanPlugin{.name = "linux.psscan",
                           .short_name = "psscan",
                           .os = "linux",
                           .aliases = kPsscanAliases,
                           .description =
                               "Tasks carved from physical memory, with whether the task list and "
                               "pid table hold them",
                           .needs = Requirement::kernel,
                           .columns = kScanRow.columns,
                           .tree = false,
                           .options = kOptions,
                           .run = run_psscan};

}  // namespace vmi
