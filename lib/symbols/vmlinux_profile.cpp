// Builds a Linux profile from vmlinux: .BTF types, System.map or ELF symbols, linux_banner bytes.
//
// The ELF is read by a small bounds-checked ELF64 reader rather than LIEF 0.9: LIEF parses
// every relocation section up front, quadratically, and took over 11 minutes (without finishing)
// on Debian's 633 MB unstripped vmlinux from the -dbg package, with no option to skip that. We
// need only the section headers, .BTF, one section's bytes and the symbol table, read in place.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <unordered_map>

#include "symbols/linux_profile.hpp"
#include "vmi/dwarf.hpp"
#include "vmi/vmlinux.hpp"

namespace vmi {
namespace {

constexpr std::string_view kBannerSymbol = "linux_banner";

// ELF64 (the System V gABI); only what a kernel image needs.
constexpr char kElfMagic[] = {0x7f, 'E', 'L', 'F'};
constexpr std::size_t kElfHeaderSize = 64, kSectionHeaderSize = 64, kSymbolSize = 24;
constexpr std::uint32_t kShtSymtab = 2, kShtNobits = 8;
constexpr std::uint64_t kShfAlloc = 0x2, kShfCompressed = 0x800;
constexpr std::uint8_t kSttSection = 3, kSttFile = 4;
// Caps on counts and sizes read from the file.
constexpr std::uint32_t kMaxElfSections = 1u << 16;
constexpr std::uint64_t kMaxSectionNames = std::uint64_t{1} << 20;
constexpr std::uint64_t kMaxElfSymbols = std::uint64_t{1} << 22;
constexpr std::uint64_t kMaxSymbolNames = std::uint64_t{256} << 20;
constexpr std::uint64_t kMaxNotesBytes = 64u << 10;  // a vmlinux notes section is under 1 KiB

struct Section {
  std::string name;
  std::uint32_t name_offset = 0;  // in the section name table
  std::uint32_t type = 0;
  std::uint64_t flags = 0, address = 0, offset = 0, size = 0;
  std::uint32_t link = 0;
};

std::uint64_t le(const std::byte* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
  return v;
}

class ElfFile {
 public:
  static Expected<ElfFile> open(const std::filesystem::path& path) {
    ElfFile elf;
    elf.path_ = path.string();
    elf.in_.open(path, std::ios::binary);
    std::error_code ec;
    elf.size_ = std::filesystem::file_size(path, ec);
    if (!elf.in_ || ec) return make_error(Errc::io, elf.path_ + ": cannot open");
    const auto header = VMI_TRY(elf.read(0, kElfHeaderSize, "ELF header"));
    const std::byte* h = header.data();
    if (std::memcmp(h, kElfMagic, sizeof kElfMagic) != 0) {
      return make_error(Errc::bad_format, elf.path_ + ": not an ELF file");
    }
    if (std::to_integer<int>(h[4]) != 2) return make_error(Errc::unsupported, elf.path_ + ": not a 64-bit ELF");
    if (std::to_integer<int>(h[5]) != 1) return make_error(Errc::unsupported, elf.path_ + ": big-endian ELF");
    const std::uint64_t shoff = le(h + 0x28, 8);
    const std::uint64_t shentsize = le(h + 0x3a, 2);
    std::uint64_t shnum = le(h + 0x3c, 2);
    std::uint64_t shstrndx = le(h + 0x3e, 2);
    if (shoff == 0) return make_error(Errc::not_found, elf.path_ + ": no section headers");
    if (shentsize != kSectionHeaderSize) {
      return make_error(Errc::bad_format,
                        elf.path_ + ": section header size " + std::to_string(shentsize) + " at byte 0x3a");
    }
    // More than 0xff00 sections: the real count and name index sit in section header 0.
    const auto first = VMI_TRY(elf.read(shoff, kSectionHeaderSize, "section header 0"));
    if (shnum == 0) shnum = le(first.data() + 0x20, 8);
    if (shstrndx == 0xffff) shstrndx = le(first.data() + 0x28, 4);
    if (shnum > kMaxElfSections) {
      return make_error(Errc::limit_exceeded, elf.path_ + ": " + std::to_string(shnum) + " sections exceed cap of " +
                                                  std::to_string(kMaxElfSections));
    }
    if (shstrndx >= shnum) {
      return make_error(Errc::bad_format, elf.path_ + ": section names in section #" + std::to_string(shstrndx) +
                                              " of " + std::to_string(shnum));
    }
    const auto table = VMI_TRY(elf.read(shoff, shnum * kSectionHeaderSize, "section header table"));
    for (std::uint64_t i = 0; i < shnum; ++i) {
      const std::byte* sh = table.data() + i * kSectionHeaderSize;
      Section section;
      section.name_offset = static_cast<std::uint32_t>(le(sh, 4));
      section.type = static_cast<std::uint32_t>(le(sh + 4, 4));
      section.flags = le(sh + 8, 8);
      section.address = le(sh + 0x10, 8);
      section.offset = le(sh + 0x18, 8);
      section.size = le(sh + 0x20, 8);
      section.link = static_cast<std::uint32_t>(le(sh + 0x28, 4));
      elf.sections_.push_back(std::move(section));
    }
    const auto names = VMI_TRY(elf.contents(elf.sections_[shstrndx], kMaxSectionNames));
    for (Section& section : elf.sections_) section.name = string_at(names, section.name_offset);
    return elf;
  }

  const Section* find(std::string_view name) const {
    for (const Section& section : sections_) {
      if (section.name == name) return &section;
    }
    return nullptr;
  }

  // The bytes of a section that has some in the file.
  Expected<std::vector<std::byte>> contents(const Section& section, std::uint64_t cap) {
    if (section.type == kShtNobits || (section.flags & kShfCompressed) != 0) {
      return make_error(Errc::unsupported, path_ + ": section '" + section.name + "' has no plain bytes in the file");
    }
    if (section.size > cap) {
      return make_error(Errc::limit_exceeded, path_ + ": section '" + section.name + "' of " +
                                                  std::to_string(section.size) + " bytes exceeds cap of " +
                                                  std::to_string(cap));
    }
    return read(section.offset, section.size, "section '" + section.name + "'");
  }

  // The NUL-terminated string at link address `address` (NUL included), at most `limit` bytes.
  Expected<std::string> string_at_address(std::uint64_t address, std::uint64_t limit) {
    for (const Section& s : sections_) {
      if ((s.flags & kShfAlloc) == 0 || s.type == kShtNobits || address < s.address || address - s.address >= s.size) {
        continue;
      }
      const std::uint64_t length = std::min(limit, s.size - (address - s.address));
      const auto bytes = VMI_TRY(read(s.offset + (address - s.address), length, "string in '" + s.name + "'"));
      const auto* text = reinterpret_cast<const char*>(bytes.data());
      const void* nul = std::memchr(text, '\0', bytes.size());
      return std::string(text, nul != nullptr ? static_cast<const char*>(nul) - text + 1 : bytes.size());
    }
    return std::string();
  }

  // Named symbols of SHT_SYMTAB, except file and section symbols; empty when stripped.
  Expected<std::vector<MapSymbol>> symbols(std::uint64_t* banner_size) {
    std::vector<MapSymbol> symbols;
    for (const Section& symtab : sections_) {
      if (symtab.type != kShtSymtab) continue;
      if (symtab.link >= sections_.size()) {
        return make_error(Errc::bad_format, path_ + ": symbol table links to section #" + std::to_string(symtab.link));
      }
      const auto table = VMI_TRY(contents(symtab, kMaxElfSymbols * kSymbolSize));
      const auto names = VMI_TRY(contents(sections_[symtab.link], kMaxSymbolNames));
      for (std::size_t at = 0; at + kSymbolSize <= table.size(); at += kSymbolSize) {
        const std::byte* sym = table.data() + at;
        const auto type = std::to_integer<std::uint8_t>(sym[4]) & 0xf;
        std::string name = string_at(names, le(sym, 4));
        if (name.empty() || name.size() > kMaxSymbolNameLength || type == kSttFile || type == kSttSection) continue;
        if (name == kBannerSymbol && le(sym + 0x10, 8) != 0) *banner_size = le(sym + 0x10, 8);
        symbols.push_back(MapSymbol{std::move(name), le(sym + 8, 8), '?'});
      }
    }
    return symbols;
  }

 private:
  // A string table entry; empty when the offset or its terminating NUL lies outside the table.
  static std::string string_at(const std::vector<std::byte>& table, std::uint64_t offset) {
    if (offset >= table.size()) return {};
    const auto* begin = reinterpret_cast<const char*>(table.data() + offset);
    const void* nul = std::memchr(begin, '\0', table.size() - offset);
    return nul == nullptr ? std::string() : std::string(begin, static_cast<const char*>(nul) - begin);
  }

  Expected<std::vector<std::byte>> read(std::uint64_t offset, std::uint64_t length, const std::string& what) {
    if (offset > size_ || length > size_ - offset) {
      return make_error(Errc::truncated, path_ + ": " + what + " [0x" + hex(offset) + ", +0x" + hex(length) +
                                             ") runs past end of file (0x" + hex(size_) + ")");
    }
    std::vector<std::byte> bytes(length);
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(offset));
    if (!in_.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(length))) {
      return make_error(Errc::io, path_ + ": cannot read " + what + " at byte 0x" + hex(offset));
    }
    return bytes;
  }
  static std::string hex(std::uint64_t value) {
    char buffer[20];
    std::snprintf(buffer, sizeof buffer, "%llx", static_cast<unsigned long long>(value));
    return buffer;
  }

  std::string path_;
  std::ifstream in_;
  std::uint64_t size_ = 0;
  std::vector<Section> sections_;
};

}  // namespace

Expected<Profile> build_profile_from_vmlinux(const std::filesystem::path& vmlinux,
                                             const std::optional<std::filesystem::path>& system_map,
                                             VmlinuxProfileNotes* notes, VmlinuxTypes types) {
  VmlinuxProfileNotes local;
  VmlinuxProfileNotes& out = notes != nullptr ? *notes : local;
  if (std::error_code ec; !std::filesystem::is_regular_file(vmlinux, ec)) {
    return make_error(Errc::io, vmlinux.string() + ": not a readable file");
  }

  std::vector<MapSymbol> symbols;
  std::optional<std::uint64_t> banner_address;
  if (system_map) {
    SystemMap map = VMI_TRY(load_system_map(*system_map));
    out.symbol_source = "System.map";
    out.malformed_map_lines = map.malformed_lines;
    out.duplicate_symbols = map.duplicate_names;
    symbols = std::move(map.symbols);
    for (const MapSymbol& symbol : symbols) {
      if (symbol.name == kBannerSymbol) banner_address = symbol.address;
    }
  }
  ElfFile elf = VMI_TRY(ElfFile::open(vmlinux));
  const Section* btf_section = elf.find(".BTF");
  const bool has_dwarf = elf.find(".debug_info") != nullptr;
  if (types == VmlinuxTypes::automatic) types = has_dwarf ? VmlinuxTypes::dwarf : VmlinuxTypes::btf;
  if (types == VmlinuxTypes::btf && btf_section == nullptr) {
    return make_error(
        Errc::not_found,
        vmlinux.string() + (has_dwarf ? ": no .BTF section"
                                      : ": no .BTF section and no DWARF (.debug_info): a kernel built without "
                                        "CONFIG_DEBUG_INFO_BTF needs its debug vmlinux (Debian: linux-image-*-dbg)"));
  }
  if (types == VmlinuxTypes::dwarf && !has_dwarf) {
    return make_error(Errc::not_found,
                      vmlinux.string() + ": no DWARF (.debug_info); Debian ships it in linux-image-*-dbg");
  }
  std::uint64_t banner_size = kMaxBannerBytes;
  if (!system_map) {
    out.symbol_source = "ELF symbol table";
    auto elf_symbols = VMI_TRY(elf.symbols(&banner_size));
    if (elf_symbols.empty()) {
      return make_error(Errc::not_found, vmlinux.string() + ": no ELF symbol table (stripped); pass its System.map");
    }
    // The symbol table repeats local names; keep the last, as the System.map reader does.
    std::unordered_map<std::string, std::size_t> index;
    for (MapSymbol& symbol : elf_symbols) {
      if (symbol.name == kBannerSymbol) banner_address = symbol.address;
      auto [it, inserted] = index.try_emplace(symbol.name, symbols.size());
      if (inserted) {
        symbols.push_back(std::move(symbol));
      } else {
        symbols[it->second] = std::move(symbol);
        out.duplicate_symbols++;
      }
    }
  }
  std::string banner;
  if (banner_address) {
    banner = VMI_TRY(elf.string_at_address(*banner_address, std::min<std::uint64_t>(banner_size, kMaxBannerBytes)));
  }

  LinuxProfileParts parts;
  if (types == VmlinuxTypes::btf) {
    out.type_source = "BTF";
    parts.producer = "vmi-forensics btf";
    parts.add_types = [&](ProfileBuilder& builder) -> Expected<std::vector<TypedVariable>> {
      const auto btf = VMI_TRY(elf.contents(*btf_section, kMaxBtfBytes));
      out.btf = VMI_TRY(add_btf_types(btf, builder, vmlinux.string() + " .BTF"));
      // BTF places its variables (the per-CPU ones) by section offset.
      std::vector<TypedVariable> variables;
      for (const BtfVariable& variable : out.btf.variables) {
        if (const Section* section = elf.find(variable.section)) {
          variables.push_back(TypedVariable{variable.name, section->address + variable.offset, variable.type});
        }
      }
      return variables;
    };
  } else {
    out.type_source = "DWARF";
    parts.producer = "vmi-forensics dwarf";
    parts.add_types = [&](ProfileBuilder& builder) -> Expected<std::vector<TypedVariable>> {
      out.dwarf = VMI_TRY(add_dwarf_types(vmlinux, builder));
      std::vector<TypedVariable> variables;
      variables.reserve(out.dwarf.variables.size());
      for (DwarfVariable& variable : out.dwarf.variables) {
        variables.push_back(TypedVariable{std::move(variable.name), variable.address, variable.type});
      }
      return variables;
    };
  }
  parts.symbols = std::move(symbols);
  parts.banner = std::move(banner);
  // The build id names this exact build (the kernel carries the same note in memory).
  for (const char* name : {".notes", ".note.gnu.build-id"}) {
    const Section* notes = elf.find(name);
    if (notes == nullptr) continue;
    if (const auto bytes = elf.contents(*notes, kMaxNotesBytes)) parts.build_id = gnu_build_id(*bytes);
    if (!parts.build_id.empty()) break;
  }
  return assemble_linux_profile(parts, out);
}

}  // namespace vmi
