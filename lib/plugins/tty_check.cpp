// tty_check: each tty's line-discipline receive_buf, which a keylogger replaces to see every byte
// typed on a terminal.
#include "plugins/handler_rows.hpp"
#include "plugins/plugins.hpp"
#include "vmi/rows.hpp"

namespace vmi {

namespace {

struct TtyRow {
  std::string name;
  HandlerVerdict verdict;
};

// Volatility 3's columns (Name, Address of tty->ldisc->ops->receive_buf, Module, Symbol), then
// Hooked, true exactly for the ttys this check accuses.
constexpr auto kTtyRow =
    declare_row(column<&TtyRow::name>("Name"),
                nested_column<&TtyRow::verdict, &HandlerVerdict::address, ColumnType::address>("Address"),
                nested_column<&TtyRow::verdict, &HandlerVerdict::module>("Module"),
                nested_column<&TtyRow::verdict, &HandlerVerdict::symbol>("Symbol"),
                nested_column<&TtyRow::verdict, &HandlerVerdict::hooked>("Hooked"));

Expected<void> run_tty_check(PluginContext& context) {
  const Kernel& kernel = *context.kernel;
  const auto code = VMI_TRY(linux_objects::KnownCode::gather(kernel, context.diagnostics));
  RowWriter rows(context.out, kTtyRow);
  for (linux_objects::Handler& handler : VMI_TRY(linux_objects::tty_receive_handlers(kernel, context.diagnostics))) {
    if (!rows.write(TtyRow{.name = std::move(handler.owner), .verdict = judge_handler(code, handler.handler)})) break;
  }
  return {};
}

}  // namespace

constexpr std::string_view kTtyCheckAliases[] = {"linux.tty_check.tty_check", "linux.malware.tty_check.Tty_Check"};
const Plugin kTtyCheckPlugin{.name = "linux.tty_check",
                             .short_name = "tty_check",
                             .os = "linux",
                             .aliases = kTtyCheckAliases,
                             .description = "Each tty's receive_buf, Hooked outside known code",
                             .needs = Requirement::kernel,
                             .columns = kTtyRow.columns,
                             .tree = false,
                             .options = {},
                             .run = run_tty_check};

}  // namespace vmi
