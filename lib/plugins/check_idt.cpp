// check_idt: the 256 gates of the kernel's interrupt descriptor table (idt_table), each handler
// with the code that owns it, Hooked when it lies outside the kernel's text and every module's.
// When the snapshot saved the vCPUs' registers, each vCPU's IDTR is checked too: a rootkit can
// load an IDT of its own and leave idt_table clean. The gate layout is the architecture's (Intel
// SDM vol. 3, 6.14.1), not a kernel structure.
#include <array>
#include <cstring>

#include "plugins/plugins.hpp"
#include "vmi/linux.hpp"
#include "vmi/rows.hpp"
#include "vmi/session.hpp"

namespace vmi {

namespace {

constexpr std::size_t kGates = 256, kGateSize = 16;
using Gate = std::array<std::byte, kGateSize>;
using GateTable = std::array<std::optional<Gate>, kGates>;  // empty: unreadable

struct IdtRow {
  std::uint64_t index = 0;
  Maybe<std::uint64_t> address;  // not applicable for a gate not present
  Maybe<std::string> module, symbol;
  Maybe<bool> present;
  bool hooked = false;
  std::string table;  // "idt_table", or the vCPU whose IDTR points elsewhere
};

// Volatility 3's columns, then whether the gate is present, Hooked (true exactly for the gates this
// check accuses) and the table the gate belongs to.
constexpr auto kIdtRow = declare_row(
    column<&IdtRow::index, ColumnType::address>("Index"), column<&IdtRow::address, ColumnType::address>("Address"),
    column<&IdtRow::module>("Module"), column<&IdtRow::symbol>("Symbol"), column<&IdtRow::present>("Present"),
    column<&IdtRow::hooked>("Hooked"), column<&IdtRow::table>("Table"));

GateTable read_gates(const Layer& layer, Addr base, std::string_view table, Diagnostics& diagnostics) {
  GateTable gates;
  for (std::size_t i = 0; i < kGates; ++i) {
    Gate gate{};
    const Addr at = base + i * kGateSize;
    if (read_exact(layer, at, gate)) {
      gates[i] = gate;
    } else {
      diagnostics.warn(std::string(table) + "[" + std::to_string(i) + "] at " + hex(at) + " is unreadable");
    }
  }
  return gates;
}

// One gate as a row. A gate of a vCPU's own table is Hooked also when it differs from
// idt_table's gate of the same vector (`reference`), wherever its handler lies.
IdtRow gate_row(std::size_t index, const std::optional<Gate>& gate, const std::optional<Gate>* reference,
                const linux_objects::KnownCode& code, std::string table) {
  IdtRow row{.index = index,
             .address = Absence::unreadable,
             .module = Absence::unreadable,
             .symbol = Absence::unreadable,
             .present = Absence::unreadable,
             .hooked = false,
             .table = std::move(table)};
  if (!gate) return row;
  const auto field = [&gate]<class T>(std::size_t offset, T value) {
    std::memcpy(&value, gate->data() + offset, sizeof value);
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
  if (reference != nullptr && reference->has_value() && **reference != *gate) row.hooked = true;
  return row;
}

Expected<void> run_check_idt(PluginContext& context) {
  const Kernel& kernel = *context.kernel;
  const PagedLayer& layer = kernel.kernel_layer();
  const auto table = kernel.symbol("idt_table");
  if (!table) return make_error(Errc::not_found, "profile has no symbol 'idt_table'");
  const auto code = VMI_TRY(linux_objects::KnownCode::gather(kernel, context.diagnostics));
  const GateTable kernel_gates = read_gates(layer, *table, "idt_table", context.diagnostics);
  RowWriter rows(context.out, kIdtRow);
  for (std::size_t i = 0; i < kGates; ++i)
    if (!rows.write(gate_row(i, kernel_gates[i], nullptr, code, "idt_table"))) return {};

  // Linux loads idt_table through a read-only alias in the CPU entry area (idt_map_in_cea), so a
  // vCPU's IDTR base is compared with idt_table by the physical page behind each.
  const auto table_physical = layer.translate(*table);
  for (const CpuState& cpu : context.session.image().cpu_states()) {
    const auto base = cpu.registers.find("idt_base");
    if (base == cpu.registers.end() || !table_physical) continue;
    const std::string name = "vCPU " + std::to_string(cpu.index) + " IDTR";
    const auto physical = layer.translate(base->second);
    if (physical && physical->physical == table_physical->physical) continue;
    context.diagnostics.warn(name + " base " + hex(base->second) +
                             (physical ? " is physical " + hex(physical->physical) + ", not idt_table's " +
                                             hex(table_physical->physical) + ": its gates follow"
                                       : " is not mapped in the kernel's page tables"));
    if (!physical) continue;
    const GateTable gates = read_gates(layer, base->second, name, context.diagnostics);
    for (std::size_t i = 0; i < kGates; ++i)
      if (!rows.write(gate_row(i, gates[i], &kernel_gates[i], code, name))) return {};
  }
  return {};
}

}  // namespace

constexpr std::string_view kCheckIdtAliases[] = {"linux.check_idt.Check_idt", "linux.malware.check_idt.Check_idt"};
const Plugin kCheckIdtPlugin{.name = "linux.check_idt",
                             .short_name = "check_idt",
                             .os = "linux",
                             .aliases = kCheckIdtAliases,
                             .description =
                                 "The 256 IDT gates (and any other IDT a vCPU had loaded), Hooked when "
                                 "a handler lies outside known code",
                             .needs = Requirement::kernel,
                             .columns = kIdtRow.columns,
                             .tree = false,
                             .options = {},
                             .run = run_check_idt};

}  // namespace vmi
