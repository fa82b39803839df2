// Kernel addresses as symbol+offset, as the kernel's own %pS prints them.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "vmi/kernel.hpp"

namespace vmi {

struct KernelSymbol {
  std::string name;
  std::uint64_t offset = 0;  // from the symbol's start
  std::string text() const;  // "default_idle+0x1b"
};

// The profile symbol at or below `address` (a run-time address, KASLR shift applied) inside the
// kernel image, _text up to _end; nothing for addresses outside it (modules, the direct map) or
// a profile without _text and _end. The address index is built once per kernel.
std::optional<KernelSymbol> kernel_symbol_at(const Kernel& kernel, Addr address);

// The bytes from a symbol of the kernel image to the next symbol above it: a function's or an
// array's extent, padding included, as no profile keeps sizes. Nothing when the profile lacks the
// symbol or the _text.._end range.
std::optional<std::uint64_t> kernel_symbol_extent(const Kernel& kernel, std::string_view name);

}  // namespace vmi
