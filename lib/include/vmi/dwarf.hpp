// DWARF debug information (a debug vmlinux, e.g. Debian's linux-image-*-dbg), turned into
// ISF-shaped profile types with elfutils' libdw.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "vmi/expected.hpp"
#include "vmi/profile.hpp"

namespace vmi {

inline constexpr int kMaxDwarfTypeDepth = 64;                          // pointer/array/typedef chains
inline constexpr std::size_t kMaxDwarfMembers = std::size_t{1} << 23;  // added in all
inline constexpr std::size_t kMaxDwarfDieDepth = 256;                  // DIE nesting while walking

// A variable DWARF places at a fixed address (DW_OP_addr): globals, static locals and the
// per-CPU variables (whose "address" is their offset in the per-CPU area).
struct DwarfVariable {
  std::string name;
  std::uint64_t address = 0;
  TypeId type = kNoType;  // in the builder add_dwarf_types() filled
};

struct DwarfSummary {
  std::size_t compile_units = 0;
  std::size_t dies = 0;          // DIEs visited
  std::uint32_t aggregates = 0;  // user types added (incl. typedef-named copies, anonymous ones)
  std::uint32_t enums = 0;
  std::uint32_t base_types = 0;
  std::vector<DwarfVariable> variables;  // sorted by name, then address
};

// Adds the types of every compile unit in `elf`'s DWARF to `builder`, in the shape dwarf2json
// gives them and with the same conventions as add_btf_types() (so a BTF and a DWARF profile of
// one kernel agree, anonymous type names included):
//  - typedefs and qualifiers resolve away, except a typedef of a struct/union, which names a
//    user type of its own (spinlock_t); anonymous structs/unions/enums are "unnamed_<hash>",
//    unnamed members "unnamed_field_<n>" with anonymous = true;
//  - bitfields (DW_AT_data_bit_offset, or DWARF 2-4's DW_AT_bit_offset) become TypeKind::bitfield
//    at the byte holding their first bit; multi-dimensional arrays nest, flexible arrays count 0;
//  - base types "void" and "pointer" are added; an enum's base is dwarf2json's choice.
// When a name is defined more than once, the first complete definition is kept. Rust units are
// skipped, as dwarf2json does. Fails when the file has no DWARF or libdw cannot read it.
Expected<DwarfSummary> add_dwarf_types(const std::filesystem::path& elf, ProfileBuilder& builder);

}  // namespace vmi
