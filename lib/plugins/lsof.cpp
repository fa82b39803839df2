// lsof: every open file descriptor of every process, as /proc/PID/fd and fdinfo show them.
#include <algorithm>

#include "plugins/plugins.hpp"
#include "vmi/linux.hpp"
#include "vmi/rows.hpp"

namespace vmi {

namespace {

using linux_objects::FileDescriptor;

// Volatility 3's lsof columns, then fdinfo's flags and position.
constexpr auto kDescriptorRow = declare_row(
    column<&FileDescriptor::pid>("PID"), column<&FileDescriptor::tid>("TID"),
    column<&FileDescriptor::process>("Process"), column<&FileDescriptor::fd>("FD"),
    column<&FileDescriptor::path>("Path"), column<&FileDescriptor::device>("Device"),
    column<&FileDescriptor::inode>("Inode"), column<&FileDescriptor::type>("Type"),
    column<&FileDescriptor::mode>("Mode"), column<&FileDescriptor::changed_ns, ColumnType::timestamp>("Changed"),
    column<&FileDescriptor::modified_ns, ColumnType::timestamp>("Modified"),
    column<&FileDescriptor::accessed_ns, ColumnType::timestamp>("Accessed"), column<&FileDescriptor::size>("Size"),
    column<&FileDescriptor::flags>("Flags"), column<&FileDescriptor::position>("Position"));

constexpr PluginOption kOptions[] = {
    {"pid", OptionType::integers, "only these process IDs (comma-separated)"},
    {"threads", OptionType::flag, "repeat a process's descriptors for each thread that shares its table"},
};

Expected<void> run_lsof(PluginContext& context) {
  const auto pids = VMI_TRY(context.args.integers("pid"));
  const bool every_thread = context.args.flag("threads");
  RowWriter rows(context.out, kDescriptorRow);
  linux_objects::DescriptorBudget budget;
  bool wanted = true;
  std::optional<Addr> leader_table;  // the table of the process whose threads are being visited
  std::optional<Error> failed;       // the kernel's file structures could not be bound
  VMI_TRY_VOID(linux_objects::for_each_task(*context.kernel, true, context.diagnostics, [&](auto&& task) {
    if (!pids.empty() && std::find(pids.begin(), pids.end(), task.tgid) == pids.end()) return true;
    const auto table = linux_objects::file_table_of(*context.kernel, task, context.diagnostics);
    const bool leader = task.pid == task.tgid;
    if (leader) leader_table = table;
    // A thread's descriptors are its process's unless it has a table of its own.
    if (!leader && !every_thread && table == leader_table) return true;
    if (!table) return true;
    auto walked = linux_objects::for_each_file_descriptor(*context.kernel, task, *table, budget, context.diagnostics,
                                                          [&](FileDescriptor&& descriptor) {
                                                            wanted = rows.write(descriptor);
                                                            return wanted;
                                                          });
    if (!walked) failed = walked.error();
    return wanted && !failed;
  }));
  if (failed) return *failed;
  return {};
}

}  // namespace

constexpr std::string_view kLsofAliases[] = {"linux.lsof.Lsof"};
const Plugin kLsofPlugin{.name = "linux.lsof",
                         .short_name = "handles",
                         .os = "linux",
                         .aliases = kLsofAliases,
                         .description = "List every open file descriptor of every process",
                         .needs = Requirement::kernel,
                         .columns = kDescriptorRow.columns,
                         .tree = false,
                         .options = kOptions,
                         .run = run_lsof};

}  // namespace vmi
