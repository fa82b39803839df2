// x86-64's system calls: the ABI's numbering, and the kernel's dispatch tables (sys_call_table,
// ia32_sys_call_table) as the running kernel holds them. Shared by check_syscall and syscalls.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "vmi/kernel.hpp"

namespace vmi::linux_objects {

// At most this many slots are read from a table (x86-64 has fewer than 500 system calls).
inline constexpr std::uint64_t kMaxSyscallTableEntries = 1024;

// The entry point's name for an x86-64 system call number ("openat", as in __x64_sys_openat),
// from linux-libc-dev's asm/unistd_64.h; nothing for a number the ABI does not define.
std::optional<std::string_view> x86_64_syscall_name(std::int64_t number);

// The slots of a dispatch table: its symbol's extent (to the next symbol) in 8-byte pointers,
// capped at kMaxSyscallTableEntries; nothing when the symbol or its extent is unknown.
std::optional<std::uint64_t> syscall_table_slots(const Kernel& kernel, std::string_view table);

}  // namespace vmi::linux_objects
