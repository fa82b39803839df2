// cpus: what each vCPU was executing when the snapshot was taken, from the registers saved with
// the image.
#include "plugins/plugins.hpp"
#include "vmi/kernel_symbols.hpp"
#include "vmi/rows.hpp"
#include "vmi/session.hpp"

namespace vmi {

namespace {

struct CpuRow {
  std::uint32_t cpu = 0;
  Maybe<std::string> mode;  // "kernel" or "user": the privilege level in CS
  Maybe<Addr> rip;
  Maybe<std::string> symbol;  // kernel RIP as symbol+offset
  Maybe<Addr> rsp;
  Maybe<Addr> cr3;
};

constexpr auto kCpuRow =
    declare_row(column<&CpuRow::cpu>("CPU"), column<&CpuRow::mode>("Mode"),
                column<&CpuRow::rip, ColumnType::address>("RIP"), column<&CpuRow::symbol>("Symbol"),
                column<&CpuRow::rsp, ColumnType::address>("RSP"), column<&CpuRow::cr3, ColumnType::address>("CR3"));

// A register the image's format saved for this vCPU; unreadable, with a warning, when it did not.
Maybe<std::uint64_t> saved(PluginContext& context, const CpuState& state, std::string_view name) {
  const auto found = state.registers.find(name);
  if (found != state.registers.end()) return found->second;
  context.diagnostics.warn(std::string(context.session.image().name()) + ": vCPU " + std::to_string(state.index) +
                           " has no saved register '" + std::string(name) + "'");
  return Absence::unreadable;
}

CpuRow row_of(PluginContext& context, const CpuState& state) {
  CpuRow row;
  row.cpu = state.index;
  row.rip = saved(context, state, "rip");
  row.rsp = saved(context, state, "rsp");
  row.cr3 = saved(context, state, "cr3");
  const auto cs = saved(context, state, "cs");
  const auto* selector = std::get_if<std::uint64_t>(&cs);
  if (selector == nullptr) {
    row.mode = row.symbol = Absence::unreadable;
    return row;
  }
  const bool user = (*selector & 3) == 3;  // the requested privilege level: ring 3
  row.mode = std::string(user ? "user" : "kernel");
  const auto* rip = std::get_if<std::uint64_t>(&row.rip);
  if (user || rip == nullptr) {
    row.symbol = user ? Absence::not_applicable : Absence::unreadable;
    return row;
  }
  if (auto symbol = kernel_symbol_at(*context.kernel, *rip)) {
    row.symbol = symbol->text();
  } else {
    context.diagnostics.warn("vCPU " + std::to_string(state.index) + ": RIP " + hex(*rip) +
                             " is outside the kernel image (in a module or generated code); no symbol");
    row.symbol = Absence::unreadable;
  }
  return row;
}

Expected<void> run_cpus(PluginContext& context) {
  RowWriter rows(context.out, kCpuRow);
  for (const CpuState& state : context.session.image().cpu_states()) {
    if (!rows.write(row_of(context, state))) break;
  }
  return {};
}

}  // namespace

const Plugin kCpusPlugin{.name = "linux.cpus",
                         .short_name = "cpus",
                         .os = "linux",
                         .aliases = {},
                         .description = "What each vCPU was executing: mode, RIP as symbol+offset, RSP, CR3",
                         .needs = Requirement::vcpus,
                         .columns = kCpuRow.columns,
                         .tree = false,
                         .options = {},
                         .run = run_cpus};

}  // namespace vmi
