// One way to assemble a Linux profile from types and a symbol list, whatever held them: a vmlinux
// file's BTF or DWARF (vmlinux_profile.cpp) or the snapshot itself (os/linux/profile_recovery.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "vmi/vmlinux.hpp"

namespace vmi {

// A variable whose type the debug information knows, at its link-time address.
struct TypedVariable {
  std::string name;
  std::uint64_t address = 0;
  TypeId type = kNoType;
};

struct LinuxProfileParts {
  // Adds the types to the builder; returns the variables it can type.
  std::function<Expected<std::vector<TypedVariable>>(ProfileBuilder&)> add_types;
  std::vector<MapSymbol> symbols;  // link-time addresses, one entry per name
  std::string banner;              // linux_banner's bytes; empty when unknown
  std::string producer;            // metadata "producer" name
  std::string build_id;            // the GNU build id in hex; empty when unknown
};

// The GNU build id (NT_GNU_BUILD_ID) in an ELF note area, in lower-case hex; empty when the
// notes hold none or are cut short.
std::string gnu_build_id(std::span<const std::byte> notes);

// Adds the types, then every symbol: typed when the debug information places a variable of that
// name at that symbol's address (static names repeat, so the name alone is not enough), void
// otherwise, as dwarf2json does for symbols it has no type for. Fills notes.symbols,
// notes.typed_symbols and notes.banner_bytes.
Expected<Profile> assemble_linux_profile(const LinuxProfileParts& parts, VmlinuxProfileNotes& notes);

}  // namespace vmi
