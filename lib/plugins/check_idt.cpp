// check_idt: the 256 gates of the kernel's interrupt descriptor table (idt_table), each handler
// with the code that owns it, Hooked when it lies outside the kernel's text and every module's.
// The gate layout is the architecture's (Intel SDM vol. 3, 6.14.1), not a kernel structure.
#include <array>
#include <cstring>

#include "plugins/plugins.hpp"
#include "vmi/linux.hpp"
#include "vmi/rows.hpp"

namespace vmi {

namespace {

constexpr std::size_t kGates = 256, kGateSize = 16;

struct IdtRow {
  std::uint64_t index = 0;
  Maybe<std::uint64_t> address;  // not applicable for a gate not present
  Maybe<std::string> module, symbol;
  Maybe<bool> present;
  bool hooked = false;
};

// Volatility 3's columns, then whether the gate is present and Hooked, true exactly for the gates
// this check accuses.
constexpr auto kIdtRow = declare_row(column<&IdtRow::index, ColumnType::address>("Index"),
                                     column<&IdtRow::address, ColumnType::address>("Address"),
                                     column<&IdtRow::module>("Module"), column<&IdtRow::symbol>("Symbol"),
                                     column<&IdtRow::present>("Present"), column<&IdtRow::hooked>("Hooked"));

Expected<void> run_check_idt(PluginContext& context) {
  const Kernel& kernel = *context.kernel;
  const auto table = kernel.symbol("idt_table");
  if (!table) return make_error(Errc::not_found, "profile has no symbol 'idt_table'");
  const auto code = VMI_TRY(linux_objects::KnownCode::gather(kernel, context.diagnostics));
  RowWriter rows(context.out, kIdtRow);
  std::array<std::byte, kGateSize> gate{};
  for (std::size_t i = 0; i < kGates; ++i) {
    IdtRow row{.index = i,
               .address = Absence::unreadable,
               .module = Absence::unreadable,
               .symbol = Absence::unreadable,
               .present = Absence::unreadable};
    const Addr at = *table + i * kGateSize;
    if (!read_exact(kernel.kernel_layer(), at, gate)) {
      context.diagnostics.warn("idt_table[" + std::to_string(i) + "] at " + hex(at) + " is unreadable");
      if (!rows.write(row)) break;
      continue;
    }
    const auto field = [&gate]<class T>(std::size_t offset, T value) {
      std::memcpy(&value, gate.data() + offset, sizeof value);
      return value;
    };
    const auto low = field(0, std::uint16_t{});
    const auto bits = field(4, std::uint16_t{});
    const auto middle = field(6, std::uint16_t{});
    const auto high = field(8, std::uint32_t{});
    const bool present = (bits & 0x8000) != 0;
    row.present = present;
    if (!present) {
      row.address = Absence::not_applicable;
      row.module = row.symbol = Absence::not_applicable;
    } else {
      const Addr handler = low | (Addr{middle} << 16) | (Addr{high} << 32);
      const linux_objects::CodeOwner owner = code.owner_of(handler);
      row.address = handler;
      row.hooked = owner.module.empty();
      if (!row.hooked) row.module = owner.module;
      if (owner.symbol) row.symbol = *owner.symbol;
    }
    if (!rows.write(row)) break;
  }
  return {};
}

}  // namespace

constexpr std::string_view kCheckIdtAliases[] = {"linux.check_idt.Check_idt", "linux.malware.check_idt.Check_idt"};
const Plugin kCheckIdtPlugin{.name = "linux.check_idt",
                             .short_name = "check_idt",
                             .os = "linux",
                             .aliases = kCheckIdtAliases,
                             .description = "The 256 IDT gates, Hooked when a handler lies outside known code",
                             .needs = Requirement::kernel,
                             .columns = kIdtRow.columns,
                             .tree = false,
                             .options = {},
                             .run = run_check_idt};

}  // namespace vmi
