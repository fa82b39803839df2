// envars: each process's environment, read from its own memory, one variable per row.
#include <algorithm>

#include "plugins/plugins.hpp"
#include "vmi/linux.hpp"
#include "vmi/rows.hpp"
#include "vmi/text.hpp"

namespace vmi {

namespace {

struct Variable {
  std::int32_t pid = 0;
  std::optional<std::int32_t> ppid;
  std::string comm;
  Maybe<std::string> key, value;
};

// Volatility 3's envars columns.
constexpr auto kVariableRow =
    declare_row(column<&Variable::pid>("PID"), column<&Variable::ppid>("PPID"), column<&Variable::comm>("COMM"),
                column<&Variable::key>("KEY"), column<&Variable::value>("VALUE"));

constexpr PluginOption kOptions[] = {{"pid", OptionType::integers, "only these process IDs (comma-separated)"}};

Expected<void> run_envars(PluginContext& context) {
  const auto pids = VMI_TRY(context.args.integers("pid"));
  RowWriter rows(context.out, kVariableRow);
  bool wanted = true;
  std::optional<Error> failed;  // mm_struct's fields could not be bound
  VMI_TRY_VOID(linux_objects::for_each_task(*context.kernel, false, context.diagnostics, [&](auto&& task) {
    if (!pids.empty() && std::ranges::find(pids, task.tgid) == pids.end()) return true;
    if (task.kernel_thread.value_or(false)) return true;  // no environment
    auto bytes = linux_objects::process_environment(*context.kernel, task, context.diagnostics);
    if (!bytes) {
      failed = bytes.error();
      return false;
    }
    const Variable process{task.tgid, task.ppid, task.comm, Absence::unreadable, Absence::unreadable};
    const auto* raw = std::get_if<std::string>(&*bytes);
    if (raw == nullptr) {
      // Pages not in the snapshot (warned about): one row says so. No mm: nothing to show.
      if (std::get<Absence>(*bytes) == Absence::unreadable) wanted = rows.write(process);
      return wanted;
    }
    std::string_view rest = *raw;
    while (!rest.empty() && wanted) {
      const std::string_view entry = rest.substr(0, rest.find('\0'));
      rest.remove_prefix(std::min(rest.size(), entry.size() + 1));
      if (entry.empty()) continue;
      Variable variable = process;
      const auto equals = entry.find('=');
      variable.key = escaped_text(entry.substr(0, equals));
      if (equals == std::string_view::npos) {
        variable.value = Absence::not_applicable;  // a string without '=' is no variable
      } else {
        variable.value = escaped_text(entry.substr(equals + 1));
      }
      wanted = rows.write(variable);
    }
    return wanted;
  }));
  if (failed) return *failed;
  return {};
}

}  // namespace

constexpr std::string_view kEnvarsAliases[] = {"linux.envars.Envars"};
const Plugin kEnvarsPlugin{.name = "linux.envars",
                           .short_name = "envars",
                           .os = "linux",
                           .aliases = kEnvarsAliases,
                           .description = "Each process's environment variables, read from its own memory",
                           .needs = Requirement::kernel,
                           .columns = kVariableRow.columns,
                           .tree = false,
                           .options = kOptions,
                           .run = run_envars};

}  // namespace vmi
