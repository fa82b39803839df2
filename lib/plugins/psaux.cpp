// psaux: each process's command line, read from its own memory.
#include <algorithm>

#include "plugins/plugins.hpp"
#include "vmi/linux.hpp"
#include "vmi/rows.hpp"
#include "vmi/text.hpp"

namespace vmi {

namespace {

struct CommandLine {
  std::int32_t pid = 0;
  std::optional<std::int32_t> ppid;
  std::string comm;
  Maybe<std::string> arguments;
};

// Volatility 3's psaux columns.
constexpr auto kCommandLineRow =
    declare_row(column<&CommandLine::pid>("PID"), column<&CommandLine::ppid>("PPID"),
                column<&CommandLine::comm>("COMM"), column<&CommandLine::arguments>("ARGS"));

constexpr PluginOption kOptions[] = {{"pid", OptionType::integers, "only these process IDs (comma-separated)"}};

Expected<void> run_psaux(PluginContext& context) {
  const auto pids = VMI_TRY(context.args.integers("pid"));
  RowWriter rows(context.out, kCommandLineRow);
  std::optional<Error> failed;  // mm_struct's fields could not be bound
  VMI_TRY_VOID(linux_objects::for_each_task(*context.kernel, false, context.diagnostics, [&](auto&& task) {
    if (!pids.empty() && std::ranges::find(pids, task.tgid) == pids.end()) return true;
    CommandLine row{task.tgid, task.ppid, task.comm, Absence::unreadable};
    if (task.kernel_thread.value_or(false)) {
      row.arguments = "[" + task.name.value_or(task.comm) + "]";  // as ps shows a kernel thread
    } else {
      auto bytes = linux_objects::process_arguments(*context.kernel, task, context.diagnostics);
      if (!bytes) {
        failed = bytes.error();
        return false;
      }
      if (const auto* raw = std::get_if<std::string>(&*bytes)) {
        row.arguments = command_line_text(*raw);
      } else {
        row.arguments = std::get<Absence>(*bytes);
      }
    }
    return rows.write(row);
  }));
  if (failed) return *failed;
  return {};
}

}  // namespace

constexpr std::string_view kPsauxAliases[] = {"linux.psaux.PsAux"};
const Plugin kPsauxPlugin{.name = "linux.psaux",
                          .short_name = "psaux",
                          .os = "linux",
                          .aliases = kPsauxAliases,
                          .description = "Each process's command line, read from its own memory",
                          .needs = Requirement::kernel,
                          .columns = kCommandLineRow.columns,
                          .tree = false,
                          .options = kOptions,
                          .run = run_psaux};

}  // namespace vmi
