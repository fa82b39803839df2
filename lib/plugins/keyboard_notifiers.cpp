// keyboard_notifiers: the callbacks on keyboard_notifier_list, which every key press reaches: a
// keylogger's favourite hook.
#include "plugins/handler_rows.hpp"
#include "plugins/plugins.hpp"
#include "vmi/rows.hpp"

namespace vmi {

namespace {

struct NotifierRow {
  HandlerVerdict verdict;
  std::string block;  // the notifier_block's address
};

// Volatility 3's columns (Address, Module, Symbol), then Hooked, true exactly for the callbacks
// this check accuses, and the notifier_block that holds each.
constexpr auto kNotifierRow =
    declare_row(nested_column<&NotifierRow::verdict, &HandlerVerdict::address, ColumnType::address>("Address"),
                nested_column<&NotifierRow::verdict, &HandlerVerdict::module>("Module"),
                nested_column<&NotifierRow::verdict, &HandlerVerdict::symbol>("Symbol"),
                nested_column<&NotifierRow::verdict, &HandlerVerdict::hooked>("Hooked"),
                column<&NotifierRow::block>("Notifier Block"));

Expected<void> run_keyboard_notifiers(PluginContext& context) {
  const Kernel& kernel = *context.kernel;
  const auto code = VMI_TRY(linux_objects::KnownCode::gather(kernel, context.diagnostics));
  RowWriter rows(context.out, kNotifierRow);
  for (const linux_objects::Handler& handler :
       VMI_TRY(linux_objects::keyboard_notifiers(kernel, context.diagnostics))) {
    if (!rows.write(NotifierRow{.verdict = judge_handler(code, handler.handler), .block = handler.owner})) break;
  }
  return {};
}

}  // namespace

constexpr std::string_view kKeyboardNotifiersAliases[] = {"linux.keyboard_notifiers.Keyboard_notifiers",
                                                          "linux.malware.keyboard_notifiers.Keyboard_notifiers"};
const Plugin kKeyboardNotifiersPlugin{.name = "linux.keyboard_notifiers",
                                      .short_name = "keyboard_notifiers",
                                      .os = "linux",
                                      .aliases = kKeyboardNotifiersAliases,
                                      .description = "Callbacks on keyboard_notifier_list, Hooked outside known code",
                                      .needs = Requirement::kernel,
                                      .columns = kNotifierRow.columns,
                                      .tree = false,
                                      .options = {},
                                      .run = run_keyboard_notifiers};

}  // namespace vmi
