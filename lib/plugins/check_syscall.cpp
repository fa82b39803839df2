// check_syscall: every system-call entry point the kernel dispatches to, and whether a rootkit
// replaced it. Two routes lead to a handler on x86-64: sys_call_table (and ia32_sys_call_table
// where it exists), and since the 2024 branch-history mitigations (6.9, backported to 6.1.85 and
// others) the switch in x64_sys_call, ia32_sys_call and x32_sys_call, which the entry code calls
// instead of the table: a hook there escapes a table-only check, so its call targets are read too.
#include <algorithm>
#include <array>
#include <charconv>
#include <map>

#include "os/linux/syscall_table.hpp"
#include "plugins/plugins.hpp"
#include "vmi/disassembly.hpp"
#include "vmi/kernel_symbols.hpp"
#include "vmi/linux.hpp"
#include "vmi/rows.hpp"

namespace vmi {

namespace {

constexpr std::uint64_t kMaxDispatcherBytes = 1u << 16;
constexpr std::size_t kMaxDispatcherInstructions = 1u << 15;

// The functions a system call's definition generates (include/linux/syscalls.h,
// arch/x86/include/asm/syscall_wrapper.h), and the return thunk a tail call may end in.
constexpr std::string_view kEntryPrefixes[] = {
    "__x64_sys_", "__ia32_sys_",      "__x64_compat_sys_", "__ia32_compat_sys_", "__x32_compat_sys_",
    "__do_sys_",  "__do_compat_sys_", "__se_sys_",         "__se_compat_sys_",   "__x86_return_thunk",
};

struct SyscallRow {
  Addr table = 0;
  std::string table_name;  // 64bit, 32bit, or the dispatcher's name
  Maybe<std::int64_t> index;
  Addr handler = 0;
  Maybe<std::string> symbol;
  Maybe<std::string> module;
  Maybe<std::string> expected;  // the entry point this slot holds in a clean kernel
  bool hooked = false;
};

// Volatility 3's columns, then the handler's module, the entry point expected there and Hooked,
// true exactly for the entries this check accuses.
constexpr auto kSyscallRow = declare_row(
    column<&SyscallRow::table, ColumnType::address>("Table Address"), column<&SyscallRow::table_name>("Table Name"),
    column<&SyscallRow::index>("Index"), column<&SyscallRow::handler, ColumnType::address>("Handler Address"),
    column<&SyscallRow::symbol>("Handler Symbol"), column<&SyscallRow::module>("Module"),
    column<&SyscallRow::expected>("Expected"), column<&SyscallRow::hooked>("Hooked"));

Maybe<std::string> known(std::optional<std::string> value) {
  if (value) return std::move(*value);
  return Absence::unreadable;
}

class SyscallCheck {
 public:
  SyscallCheck(PluginContext& context, const linux_objects::KnownCode& code)
      : context_(context), kernel_(*context.kernel), code_(code), rows_(context.out, kSyscallRow) {}

  // One table of handler pointers: each slot's handler must be known code and, where the slot's
  // entry point is known and in the profile, exactly that entry point.
  bool table(std::string_view symbol, std::string_view label, std::string_view prefix, bool named_slots) {
    const auto table = kernel_.symbol(symbol);
    if (!table) return true;
    const auto slots = linux_objects::syscall_table_slots(kernel_, symbol);
    if (!slots) {
      context_.diagnostics.warn(std::string(symbol) + ": its extent is unknown (no symbol after it); not checked");
      return true;
    }
    const auto ni_syscall = kernel_.symbol(std::string(prefix) + "ni_syscall");
    std::vector<std::uint64_t> handlers(*slots);
    for (std::uint64_t i = 0; i < *slots; ++i) {
      auto value = read_value<std::uint64_t>(kernel_.kernel_layer(), *table + i * 8);
      if (!value) {
        context_.diagnostics.warn(std::string(symbol) + "[" + std::to_string(i) + "] at " + hex(*table + i * 8) +
                                  " is unreadable");
      }
      handlers[i] = value ? *value : 0;
    }
    while (!handlers.empty() && handlers.back() == 0) handlers.pop_back();  // alignment padding after the table
    for (std::uint64_t i = 0; i < handlers.size(); ++i) {
      SyscallRow row = judged(*table, label, handlers[i]);
      row.index = static_cast<std::int64_t>(i);
      if (named_slots) {
        if (const auto call = linux_objects::x86_64_syscall_name(static_cast<std::int64_t>(i))) {
          const std::string entry = std::string(prefix) + std::string(*call);
          row.expected = entry;
          const auto expected_at = kernel_.symbol(entry);
          // A call the build left out is served by ni_syscall (COND_SYSCALL's weak stub where the
          // profile has one).
          if (expected_at && handlers[i] != *expected_at && handlers[i] != ni_syscall.value_or(0)) row.hooked = true;
        }
      }
      if (!rows_.write(row)) return false;
    }
    return true;
  }

  // A dispatcher function: every call or jump leaving it must reach the first byte of a function
  // SYSCALL_DEFINE or COMPAT_SYSCALL_DEFINE generates (the compiler calls the inner __do_sys_
  // function straight for calls without arguments) or the return thunk.
  bool dispatcher(std::string_view symbol) {
    const auto function = kernel_.symbol(symbol);
    const auto extent = kernel_symbol_extent(kernel_, symbol);
    if (!function || !extent) return true;
    std::vector<std::uint8_t> code(std::min(*extent, kMaxDispatcherBytes));
    if (!read_exact(kernel_.kernel_layer(), *function, std::as_writable_bytes(std::span(code)))) {
      context_.diagnostics.warn(std::string(symbol) + " at " + hex(*function) + " is not in the snapshot; not checked");
      return true;
    }
    auto instructions = disassemble_x86_64(code, *function, kMaxDispatcherInstructions);
    if (!instructions) {
      context_.diagnostics.warn(std::string(symbol) + ": not disassembled: " + instructions.error().message);
      return true;
    }
    const Addr end = function_end(*instructions, *function, *function + code.size());
    std::map<Addr, std::size_t> seen;  // a target is shown once, however many branches reach it
    for (const Instruction& instruction : *instructions) {
      if (instruction.address >= end) break;
      if (instruction.mnemonic != "call" && !instruction.mnemonic.starts_with("j")) continue;
      const auto target = immediate(instruction.operands);
      if (!target || (*target >= *function && *target < end)) continue;  // inside the switch
      if (!seen.emplace(*target, 0).second) continue;
      SyscallRow row = judged(*function, symbol, *target);
      row.index = Absence::not_applicable;  // the case it serves is not recovered
      const auto* name = std::get_if<std::string>(&row.symbol);
      const bool entry_point =
          name != nullptr && name->ends_with("+0x0") &&
          std::ranges::any_of(kEntryPrefixes, [&](std::string_view p) { return name->starts_with(p); });
      if (!entry_point) row.hooked = true;
      if (!rows_.write(row)) return false;
    }
    return true;
  }

 private:
  // A row for a handler, hooked when it lies outside every known code.
  SyscallRow judged(Addr table, std::string_view label, Addr handler) const {
    const linux_objects::CodeOwner owner = code_.owner_of(handler);
    SyscallRow row{.table = table,
                   .table_name = std::string(label),
                   .index = Absence::not_applicable,
                   .handler = handler,
                   .symbol = known(owner.symbol),
                   .module = owner.module.empty() ? Maybe<std::string>(Absence::unreadable) : owner.module,
                   .expected = Absence::not_applicable,
                   .hooked = owner.module.empty()};
    return row;
  }

  // Where the function ends: after the first unconditional jump or return that no branch seen so
  // far jumps past. The profile's next symbol may lie beyond the next function (static functions
  // are not in every profile), and a linear sweep must not run into it.
  static Addr function_end(const std::vector<Instruction>& instructions, Addr start, Addr limit) {
    Addr furthest = start;
    for (const Instruction& instruction : instructions) {
      const Addr next = instruction.address + instruction.size;
      if (instruction.mnemonic.starts_with("j")) {
        if (auto target = immediate(instruction.operands); target && *target > start && *target < limit)
          furthest = std::max(furthest, *target);
      }
      const bool leaves = instruction.mnemonic == "jmp" || instruction.mnemonic.starts_with("ret");
      if (leaves && next > furthest) return next;
    }
    return limit;
  }

  static std::optional<Addr> immediate(std::string_view operand) {
    if (!operand.starts_with("0x")) return std::nullopt;
    Addr value = 0;
    const auto [end, error] = std::from_chars(operand.data() + 2, operand.data() + operand.size(), value, 16);
    if (error != std::errc{} || end != operand.data() + operand.size()) return std::nullopt;
    return value;
  }

  PluginContext& context_;
  const Kernel& kernel_;
  const linux_objects::KnownCode& code_;
  RowWriter<SyscallRow, kSyscallRow.fields.size()> rows_;
};

Expected<void> run_check_syscall(PluginContext& context) {
  const Kernel& kernel = *context.kernel;
  if (!kernel.symbol("sys_call_table")) return make_error(Errc::not_found, "profile has no symbol 'sys_call_table'");
  const auto code = VMI_TRY(linux_objects::KnownCode::gather(kernel, context.diagnostics));
  SyscallCheck check(context, code);
  if (!check.table("sys_call_table", "64bit", "__x64_sys_", true)) return {};
  if (!check.table("ia32_sys_call_table", "32bit", "__ia32_sys_", false)) return {};
  for (std::string_view dispatcher : {"x64_sys_call", "ia32_sys_call", "x32_sys_call"}) {
    if (!check.dispatcher(dispatcher)) break;
  }
  return {};
}

}  // namespace

constexpr std::string_view kCheckSyscallAliases[] = {"linux.check_syscall.Check_syscall",
                                                     "linux.malware.check_syscall.Check_syscall"};
const Plugin kCheckSyscallPlugin{
    .name = "linux.check_syscall",
    .short_name = "check_syscall",
    .os = "linux",
    .aliases = kCheckSyscallAliases,
    .description = "System-call handlers (tables and x64_sys_call's switch), Hooked when not the kernel's own",
    .needs = Requirement::kernel,
    .columns = kSyscallRow.columns,
    .tree = false,
    .options = {},
    .run = run_check_syscall};

}  // namespace vmi
