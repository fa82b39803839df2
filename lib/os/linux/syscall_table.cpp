// x86-64's system-call numbering (generated from linux-libc-dev's asm/unistd_64.h by
// scripts/gen-syscall-names.py) and the dispatch tables' extent.
#include "os/linux/syscall_table.hpp"

#include <algorithm>
#include <iterator>
#include <utility>

#include "vmi/kernel_symbols.hpp"

namespace vmi::linux_objects {

namespace {

constexpr std::pair<unsigned, std::string_view> kX86_64Calls[] = {
#include "os/linux/syscall_names_x86_64.inc"
};

}  // namespace

std::optional<std::string_view> x86_64_syscall_name(std::int64_t number) {
  if (number < 0) return std::nullopt;
  const auto* call =
      std::ranges::find(kX86_64Calls, static_cast<unsigned>(number), &std::pair<unsigned, std::string_view>::first);
  if (call == std::end(kX86_64Calls)) return std::nullopt;
  return call->second;
}

std::optional<std::uint64_t> syscall_table_slots(const Kernel& kernel, std::string_view table) {
  if (!kernel.symbol(table)) return std::nullopt;
  const auto extent = kernel_symbol_extent(kernel, table);
  if (!extent) return std::nullopt;
  return std::min(*extent / 8, kMaxSyscallTableEntries);
}

}  // namespace vmi::linux_objects
