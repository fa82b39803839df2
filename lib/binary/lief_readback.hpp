// Reading a rebuilt binary back with LIEF, through a module loaded on first use (lief_check.cpp).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "vmi/expected.hpp"

namespace vmi {

// Whether LIEF parses `bytes` as an ELF file; an error when the LIEF module cannot be loaded
// (it sits beside the library: libvmi-forensics-lief.so).
Expected<bool> lief_parses_elf(std::span<const std::uint8_t> bytes);

// A PE image's PDB 7.0 CodeView record (RSDS), as its debug directory holds it.
struct PdbRecord {
  std::array<std::uint8_t, 16> guid{};  // as stored: Data1..Data3 little-endian, then Data4
  std::uint32_t age = 0;
  std::string path;  // the PDB path the linker wrote ("ntkrnlmp.pdb")
};

// The RSDS record LIEF reads from the PE file `bytes`; nothing when LIEF rejects the file or the
// file has none; an error when the LIEF module cannot be loaded.
Expected<std::optional<PdbRecord>> lief_pe_codeview(std::span<const std::uint8_t> bytes);

}  // namespace vmi
