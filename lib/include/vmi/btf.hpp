// BPF Type Format (BTF): the kernel's own type description, turned into ISF-shaped profile types.
//
// BTF is untrusted input: besides a vmlinux's .BTF section it may be found inside a memory
// snapshot. Every count, offset and type reference is checked against the blob and a named cap;
// a malformed blob yields an Error naming the origin and the byte offset, never a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vmi/expected.hpp"
#include "vmi/profile.hpp"

namespace vmi {

// Caps on what a BTF blob may claim. Debian's 6.1 vmlinux has 100,750 types in 4.2 MiB.
inline constexpr std::size_t kMaxBtfBytes = std::size_t{256} << 20;
inline constexpr std::uint32_t kMaxBtfTypes = 1u << 21;
inline constexpr std::size_t kMaxBtfNameLength = 1024;               // the kernel's own limit is KSYM_NAME_LEN (512)
inline constexpr int kMaxBtfTypeDepth = 64;                          // pointer/array/typedef/modifier chains
inline constexpr std::size_t kMaxBtfMembers = std::size_t{1} << 22;  // added in all; Debian's 6.1 adds 55k

struct BtfOptions {
  std::uint32_t pointer_size = 8;  // BTF has no pointer width; x86-64 and arm64 use 8
};

// A variable BTF places in a data section (in vmlinux: the per-CPU variables).
struct BtfVariable {
  std::string name;
  std::string section;       // the DATASEC holding it, e.g. ".data..percpu"
  std::uint32_t offset = 0;  // from the start of that section
  TypeId type = kNoType;     // in the builder add_btf_types() filled
};

// What add_btf_types() added, for diagnostics and for typing symbols.
struct BtfSummary {
  std::uint32_t btf_types = 0;   // types in the blob, excluding the implicit void (#0)
  std::uint32_t aggregates = 0;  // user types added (incl. typedef-named copies, anonymous ones)
  std::uint32_t enums = 0;       // enums added
  std::uint32_t base_types = 0;  // base types added (incl. "void" and "pointer")
  // Names defined more than once with different layouts (file-local structs and enums that
  // share a name); the first definition is kept, the others dropped. Sorted, unique.
  std::vector<std::string> duplicates;
  // Sorted by name, then section and offset. Static variables of different files may share a
  // name: match a symbol by its address, not by name alone.
  std::vector<BtfVariable> variables;
};

// Adds the types of a BTF blob to `builder` in the shape dwarf2json gives the same kernel:
//  - typedefs, const/volatile/restrict and type tags are resolved away ({"kind":"base","name":"int"}
//    for a pid_t), except that a typedef naming a struct/union directly becomes a user type of its
//    own under the typedef's name (spinlock_t, kuid_t), as dwarf2json does;
//  - anonymous structs/unions/enums are named "unnamed_<16 hex digits>", a hash of their layout
//    (stable across builds and blobs); members without a name become "unnamed_field_<n>" (hex n)
//    with anonymous = true;
//  - bitfields become TypeKind::bitfield over their storage type, at the byte holding their first
//    bit, with bit_position = first bit % 8 (dwarf2json's convention);
//  - base types "void" (size 0) and "pointer" (options.pointer_size) are added too.
// One difference remains, from what BTF records: pahole stores `int a[2][3]` as `int a[6]`, so
// multi-dimensional arrays come out flattened (same offsets and sizes). Enums get dwarf2json's
// base: the first integer base type, by name, of their size and sign.
// Forward declarations add no user type; a declaration-only enum gets size 0 and base "void".
// When a name is defined twice the first complete definition is kept (and listed in the summary
// if the layouts differ). Call at most once per builder. Only little-endian, self-contained
// (not split) BTF is supported.
Expected<BtfSummary> add_btf_types(std::span<const std::byte> bytes, ProfileBuilder& builder, std::string_view origin,
                                   const BtfOptions& options = {});

}  // namespace vmi
