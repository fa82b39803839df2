// check_afinfo: the handlers behind /proc/net's tables (seq_operations of tcp, udp, raw, unix,
// packet, arp and netlink), which a rootkit replaces to drop its connections from netstat and ss.
#include "plugins/handler_rows.hpp"
#include "plugins/plugins.hpp"
#include "vmi/rows.hpp"

namespace vmi {

namespace {

struct AfinfoRow {
  std::string table, member;
  HandlerVerdict verdict;
};

// Volatility 3's columns (Symbol Name, Member, Handler Address), then Module, Symbol and Hooked,
// true exactly for the members this check accuses. Volatility lists only those; every member is
// shown here, so a clean table can be seen to be clean.
constexpr auto kAfinfoRow =
    declare_row(column<&AfinfoRow::table>("Symbol Name"), column<&AfinfoRow::member>("Member"),
                nested_column<&AfinfoRow::verdict, &HandlerVerdict::address, ColumnType::address>("Handler Address"),
                nested_column<&AfinfoRow::verdict, &HandlerVerdict::module>("Module"),
                nested_column<&AfinfoRow::verdict, &HandlerVerdict::symbol>("Symbol"),
                nested_column<&AfinfoRow::verdict, &HandlerVerdict::hooked>("Hooked"));

Expected<void> run_check_afinfo(PluginContext& context) {
  const Kernel& kernel = *context.kernel;
  const auto code = VMI_TRY(linux_objects::KnownCode::gather(kernel, context.diagnostics));
  RowWriter rows(context.out, kAfinfoRow);
  for (linux_objects::Handler& handler : VMI_TRY(linux_objects::network_seq_handlers(kernel, context.diagnostics))) {
    if (!rows.write(AfinfoRow{.table = std::move(handler.owner),
                              .member = std::move(handler.member),
                              .verdict = judge_handler(code, handler.handler)}))
      break;
  }
  return {};
}

}  // namespace

constexpr std::string_view kCheckAfinfoAliases[] = {"linux.check_afinfo.Check_afinfo",
                                                    "linux.malware.check_afinfo.Check_afinfo"};
const Plugin kCheckAfinfoPlugin{.name = "linux.check_afinfo",
                                .short_name = "check_afinfo",
                                .os = "linux",
                                .aliases = kCheckAfinfoAliases,
                                .description = "/proc/net's seq_operations handlers, Hooked outside known code",
                                .needs = Requirement::kernel,
                                .columns = kAfinfoRow.columns,
                                .tree = false,
                                .options = {},
                                .run = run_check_afinfo};

}  // namespace vmi
