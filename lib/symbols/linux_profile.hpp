// One way to assemble a Linux profile from BTF types and a symbol list, whatever held them: a
// vmlinux file (vmlinux_profile.cpp) or the snapshot itself (os/linux/profile_recovery.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vmi/vmlinux.hpp"

namespace vmi {

struct LinuxProfileParts {
  std::span<const std::byte> btf;
  std::string btf_origin;          // names the blob in errors: "vmlinux .BTF", "snapshot BTF at 0x..."
  std::vector<MapSymbol> symbols;  // link-time addresses, one entry per name
  std::string banner;              // linux_banner's bytes; empty when unknown
  std::string producer;            // metadata "producer" name
  // The link-time address of a BTF DATASEC (".data..percpu"), to type the variables it lists.
  std::function<std::optional<std::uint64_t>(std::string_view section)> section_address;
};

// Adds the BTF types, then every symbol: typed when BTF places a variable of that name at that
// symbol's address, void otherwise (as dwarf2json does for symbols without debug information).
// Fills notes->btf, ->symbols, ->typed_symbols and ->banner_bytes.
Expected<Profile> assemble_linux_profile(const LinuxProfileParts& parts, VmlinuxProfileNotes& notes);

}  // namespace vmi
