// windows.psscan: processes carved from all of physical memory by their pool allocations, live,
// exited and unlinked alike, each marked with whether PsActiveProcessHead's list holds it: a
// process the list does not hold and that has not exited has been hidden.
#include <set>

#include "plugins/plugins.hpp"
#include "vmi/rows.hpp"
#include "vmi/session.hpp"
#include "vmi/windows.hpp"

namespace vmi {

namespace {

struct CarvedRow {
  windows_objects::Process process;  // its address is physical
  bool in_list = false;
};

using windows_objects::Process;
// pslist's columns, the offset physical (Volatility 3 prints physical offsets under Offset(V)
// before Windows 10), then the cross-view.
constexpr auto kCarvedRow =
    declare_row(nested_column<&CarvedRow::process, &Process::pid>("PID"),
                nested_column<&CarvedRow::process, &Process::ppid>("PPID"),
                nested_column<&CarvedRow::process, &Process::image_file_name>("ImageFileName"),
                nested_column<&CarvedRow::process, &Process::address, ColumnType::address>("Offset(P)"),
                nested_column<&CarvedRow::process, &Process::threads>("Threads"),
                nested_column<&CarvedRow::process, &Process::handles>("Handles"),
                nested_column<&CarvedRow::process, &Process::session_id>("SessionId"),
                nested_column<&CarvedRow::process, &Process::wow64>("Wow64"),
                nested_column<&CarvedRow::process, &Process::create_time, ColumnType::timestamp>("CreateTime"),
                nested_column<&CarvedRow::process, &Process::exit_time, ColumnType::timestamp>("ExitTime"),
                column<&CarvedRow::in_list>("In List"));

constexpr PluginOption kOptions[] = {{"jobs", OptionType::integers, "threads scanning memory (default: one per core)"}};

Expected<void> run_windows_psscan(PluginContext& context) {
  const Kernel& kernel = *context.kernel;
  windows_objects::ProcessScanOptions options;
  options.workers = VMI_TRY(scan_jobs(context.args));
  options.progress = [&](std::uint64_t done, std::uint64_t total) {
    context.out.progress("scanning physical memory", done, total);
  };
  const auto carved =
      VMI_TRY(windows_objects::scan_for_processes(kernel, context.session.image(), options, context.diagnostics));
  std::set<Addr> listed;  // physical addresses of the list's processes
  VMI_TRY_VOID(windows_objects::for_each_process(kernel, context.diagnostics, [&](Process&& process) {
    if (auto translation = kernel.kernel_layer().translate(process.address)) listed.insert(translation->physical);
    return true;
  }));
  RowWriter rows(context.out, kCarvedRow);
  for (const Process& process : carved) {
    if (!rows.write({process, listed.contains(process.address)})) break;
  }
  return {};
}

}  // namespace

constexpr std::string_view kWindowsPsscanAliases[] = {"windows.psscan.PsScan"};
const Plugin kWindowsPsscanPlugin{.name = "windows.psscan",
                                  .short_name = "psscan",
                                  .os = "windows",
                                  .aliases = kWindowsPsscanAliases,
                                  .description =
                                      "Processes carved from physical memory by their pool tags, with "
                                      "whether the active process list holds them",
                                  .needs = Requirement::kernel,
                                  .columns = kCarvedRow.columns,
                                  .tree = false,
                                  .options = kOptions,
                                  .run = run_windows_psscan};

}  // namespace vmi
