// Assembles a Linux profile from types and symbols (see linux_profile.hpp).
#include "symbols/linux_profile.hpp"

#include <unordered_map>

namespace vmi {

Expected<Profile> assemble_linux_profile(const LinuxProfileParts& parts, VmlinuxProfileNotes& notes) {
  constexpr std::string_view kBannerSymbol = "linux_banner";
  ProfileBuilder builder;
  builder.set_producer(parts.producer);
  builder.set_format_version("6.2.0");
  builder.set_os("linux");
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

}  // namespace vmi
