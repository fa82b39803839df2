// Linux profiles built straight from a kernel image: types from vmlinux's .BTF section, symbols
// from System.map (or the ELF symbol table), the banner from linux_banner's bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vmi/btf.hpp"
#include "vmi/dwarf.hpp"
#include "vmi/expected.hpp"
#include "vmi/profile.hpp"

namespace vmi {

// Caps on what a System.map may hold. Debian's 6.1 map has ~94k lines in 3.9 MiB.
inline constexpr std::uintmax_t kMaxSystemMapBytes = std::uintmax_t{256} << 20;
inline constexpr std::size_t kMaxSystemMapSymbols = std::size_t{1} << 22;
inline constexpr std::size_t kMaxSystemMapBadLines = 64;  // more than this: not a System.map
inline constexpr std::size_t kMaxSymbolNameLength = 512;  // the kernel's KSYM_NAME_LEN
inline constexpr std::size_t kMaxBannerBytes = 1024;      // linux_banner is ~200 bytes

struct MapSymbol {
  std::string name;
  std::uint64_t address = 0;
  char type = '?';  // nm's letter: T t D d B b R r A V W ...
};

struct SystemMap {
  // One entry per name, in order of first appearance. A name listed twice (static symbols of
  // different files) keeps its last line's address, as dwarf2json does.
  std::vector<MapSymbol> symbols;
  std::size_t malformed_lines = 0;  // skipped
  std::size_t duplicate_names = 0;  // lines that overrode an earlier one
};

// Parses System.map text: "<hex address> <type letter> <name>" per line, every type letter
// (absolute 'A' symbols included); /proc/kallsyms's trailing "[module]" column is accepted.
// Malformed lines are skipped and counted; more than kMaxSystemMapBadLines of them, or no symbol
// at all (Debian's linux-image packages ship a one-line placeholder), is an Error.
Expected<SystemMap> parse_system_map(std::string_view text, std::string_view origin);
Expected<SystemMap> load_system_map(const std::filesystem::path& path);

// What build_profile_from_vmlinux() found, for diagnostics.
struct VmlinuxProfileNotes {
  std::string type_source;  // "BTF" or "DWARF"
  BtfSummary btf;           // its `variables` are the per-CPU variables BTF types
  DwarfSummary dwarf;
  std::string symbol_source;  // "System.map" or "ELF symbol table"
  std::size_t symbols = 0;
  std::size_t typed_symbols = 0;  // symbols typed from BTF/DWARF; the rest get void, as in dwarf2json
  std::size_t malformed_map_lines = 0;
  std::size_t duplicate_symbols = 0;
  std::size_t banner_bytes = 0;  // linux_banner's bytes incl. "\n\0"; 0 when not found
};

// Where a vmlinux profile's types come from: DWARF when the file has it (a debug vmlinux such as
// Debian's linux-image-*-dbg; the same result dwarf2json gives), else the .BTF section.
enum class VmlinuxTypes { automatic, btf, dwarf };

// Builds a Linux profile from an uncompressed vmlinux ELF (extract it from vmlinuz first) with
// .BTF (CONFIG_DEBUG_INFO_BTF) or DWARF. Symbols come from `system_map` when given, else from
// the ELF symbol table; Debian's vmlinux has none, so the map is the usual case for BTF (the
// debug vmlinux has one). Producer "vmi-forensics btf" or "vmi-forensics dwarf", format "6.2.0",
// os "linux", base type "pointer" of 8 bytes.
// Fails when the file is not a readable ELF, lacks the types asked for, the types or map are
// malformed, or there are no symbols. A missing linux_banner is not an error (the profile's
// banner() is then empty).
Expected<Profile> build_profile_from_vmlinux(const std::filesystem::path& vmlinux,
                                             const std::optional<std::filesystem::path>& system_map,
                                             VmlinuxProfileNotes* notes = nullptr,
                                             VmlinuxTypes types = VmlinuxTypes::automatic);

}  // namespace vmi
