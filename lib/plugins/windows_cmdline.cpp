// windows.cmdline: each process's command line, from its PEB's ProcessParameters.
#include <algorithm>

#include "plugins/plugins.hpp"
#include "vmi/rows.hpp"
#include "vmi/windows.hpp"

namespace vmi {

namespace {

struct CommandLineRow {
  std::int64_t pid = 0;
  Maybe<std::string> process, args;
};

constexpr auto kCommandLineRow =
    declare_row(column<&CommandLineRow::pid>("PID"), column<&CommandLineRow::process>("Process"),
                column<&CommandLineRow::args>("Args"));

constexpr PluginOption kOptions[] = {
    {"pid", OptionType::integers, "only these process IDs (comma-separated)"},
};

Expected<void> run_windows_cmdline(PluginContext& context) {
  const auto pids = VMI_TRY(context.args.integers("pid"));
  RowWriter rows(context.out, kCommandLineRow);
  return windows_objects::for_each_process(
      *context.kernel, context.diagnostics, [&](windows_objects::Process&& process) {
        if (!pids.empty() && std::ranges::find(pids, process.pid) == pids.end()) return true;
        auto strings = windows_objects::read_process_strings(*context.kernel, process, context.diagnostics);
        return rows.write({process.pid, process.image_file_name, std::move(strings.command_line)});
      });
}

}  // namespace

constexpr std::string_view kWindowsCmdlineAliases[] = {"windows.cmdline.CmdLine"};
const Plugin kWindowsCmdlinePlugin{.name = "windows.cmdline",
                                   .short_name = "cmdline",
                                   .os = "windows",
                                   .aliases = kWindowsCmdlineAliases,
                                   .description = "Show each process's command line (PEB ProcessParameters)",
                                   .needs = Requirement::kernel,
                                   .columns = kCommandLineRow.columns,
                                   .tree = false,
                                   .options = kOptions,
                                   .run = run_windows_cmdline};

}  // namespace vmi
