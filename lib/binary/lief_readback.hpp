// Reading a rebuilt binary back with LIEF, through a module loaded on first use (lief_check.cpp).
#pragma once

#include <cstdint>
#include <span>

#include "vmi/expected.hpp"

namespace vmi {

// Whether LIEF parses `bytes` as an ELF file; an error when the LIEF module cannot be loaded
// (it sits beside the library: libvmi-forensics-lief.so).
Expected<bool> lief_parses_elf(std::span<const std::uint8_t> bytes);

}  // namespace vmi
