// Assembles a Linux profile from types and symbols (see linux_profile.hpp).
#include "symbols/linux_profile.hpp"

#include <cstring>
#include <unordered_map>

namespace vmi {

Expected<Profile> assemble_linux_profile(const LinuxProfileParts& parts, VmlinuxProfileNotes& notes) {
  constexpr std::string_view kBannerSymbol = "linux_banner";
  ProfileBuilder builder;
  builder.set_producer(parts.producer);
  builder.set_format_version("6.2.0");
  builder.set_os("linux");
  builder.set_build_id(parts.build_id);
  const std::vector<TypedVariable> variables = VMI_TRY(parts.add_types(builder));

  std::unordered_map<std::string_view, std::uint64_t> addresses;
  for (const MapSymbol& symbol : parts.symbols) addresses.emplace(symbol.name, symbol.address);
  std::unordered_map<std::string_view, TypeId> typed;
  for (const TypedVariable& variable : variables) {
    auto address = addresses.find(variable.name);
    if (address != addresses.end() && address->second == variable.address) typed.emplace(variable.name, variable.type);
  }
  const TypeId void_type = builder.add_type(TypeKind::base, "void");
  for (const MapSymbol& symbol : parts.symbols) {
    auto it = typed.find(symbol.name);
    const bool is_banner = symbol.name == kBannerSymbol;
    builder.add_symbol(symbol.name, symbol.address, it != typed.end() ? it->second : void_type,
                       is_banner ? std::string_view(parts.banner) : std::string_view());
  }
  notes.typed_symbols = typed.size();
  notes.symbols = parts.symbols.size();
  notes.banner_bytes = parts.banner.size();
  return std::move(builder).build();
}

std::string gnu_build_id(std::span<const std::byte> notes) {
  constexpr std::uint32_t kNtGnuBuildId = 3;
  static constexpr char kDigits[] = "0123456789abcdef";
  std::size_t at = 0;
  while (at + 12 <= notes.size()) {
    std::uint32_t namesz = 0;
    std::uint32_t descsz = 0;
    std::uint32_t type = 0;
    std::memcpy(&namesz, notes.data() + at, 4);
    std::memcpy(&descsz, notes.data() + at + 4, 4);
    std::memcpy(&type, notes.data() + at + 8, 4);
    const std::uint64_t name_at = at + 12;
    const std::uint64_t desc_at = name_at + ((std::uint64_t{namesz} + 3) & ~3ull);
    const std::uint64_t next = desc_at + ((std::uint64_t{descsz} + 3) & ~3ull);
    if (next > notes.size()) break;
    if (type == kNtGnuBuildId && namesz == 4 && std::memcmp(notes.data() + name_at, "GNU", 4) == 0) {
      std::string hex;
      for (std::byte b : notes.subspan(desc_at, descsz)) {
        hex += kDigits[std::to_integer<unsigned>(b) >> 4];
        hex += kDigits[std::to_integer<unsigned>(b) & 15];
      }
      return hex;
    }
    at = next;
  }
  return {};
}

}  // namespace vmi
