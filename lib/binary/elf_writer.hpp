// Writes a relocatable x86-64 ELF file (ET_REL) from sections and symbols, the form a kernel module
// has on disk, so that readelf, objdump and disassemblers read a module rebuilt from memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace vmi::elf {

inline constexpr std::uint32_t kProgbits = 1, kNote = 7;              // SHT_PROGBITS, SHT_NOTE
inline constexpr std::uint64_t kWrite = 1, kAlloc = 2, kExecute = 4;  // SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR
inline constexpr std::uint16_t kAbsolute = 0xfff1;                    // SHN_ABS

struct Section {
  std::string name;
  std::uint32_t type = kProgbits;
  std::uint64_t flags = kAlloc;
  std::uint64_t address = 0;  // where it was loaded: disassemblers then show the run-time addresses
  std::span<const std::byte> bytes;
};

struct Symbol {
  std::string name;
  std::uint8_t info = 0, other = 0;  // st_info (binding << 4 | type), st_other
  std::uint16_t section = 0;         // 1-based index into the sections given, or kAbsolute
  std::uint64_t value = 0;           // offset in its section, or the address for kAbsolute
  std::uint64_t size = 0;
};

// The file: ELF header, the sections' bytes, .symtab (local symbols first, as the format requires),
// .strtab, .shstrtab, then the section header table.
std::vector<std::uint8_t> write_relocatable(std::span<const Section> sections, std::span<const Symbol> symbols);

}  // namespace vmi::elf
