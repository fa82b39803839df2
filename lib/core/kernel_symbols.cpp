// The kernel image's symbols sorted by address, built once per kernel, for address lookups.
#include "vmi/kernel_symbols.hpp"

#include <algorithm>
#include <cstdio>

namespace vmi {

namespace {

struct AddressIndex {
  Addr text = 0, end = 0;                               // link-time bounds of the image
  std::vector<std::pair<Addr, std::uint32_t>> symbols;  // link-time address, index into profile.symbols

  static Expected<AddressIndex> bind(const Profile& profile) {
    AddressIndex index;
    const auto text = profile.symbol_address("_text");
    const auto end = profile.symbol_address("_end");
    if (!text || !end || *end <= *text) return make_error(Errc::not_found, "profile has no _text.._end range");
    index.text = *text;
    index.end = *end;
    for (std::uint32_t i = 0; i < profile.symbols.size(); ++i) {
      const Addr address = profile.symbols[i].address;
      if (address >= index.text && address < index.end) index.symbols.emplace_back(address, i);
    }
    std::ranges::sort(index.symbols);
    return index;
  }
};

}  // namespace

std::string KernelSymbol::text() const {
  char offset_text[24];
  std::snprintf(offset_text, sizeof offset_text, "+0x%llx", static_cast<unsigned long long>(offset));
  return name + offset_text;
}

std::optional<KernelSymbol> kernel_symbol_at(const Kernel& kernel, Addr address) {
  const auto& bound = kernel.layout<AddressIndex>();
  const auto text = kernel.symbol("_text");
  if (!bound || !text) return std::nullopt;
  const Addr shift = *text - bound->text;
  const Addr linked = address - shift;
  if (linked < bound->text || linked >= bound->end) return std::nullopt;
  // The last symbol at or below the address; of several at one address, the first by name.
  auto after = std::ranges::upper_bound(bound->symbols, std::pair<Addr, std::uint32_t>{linked, UINT32_MAX});
  if (after == bound->symbols.begin()) return std::nullopt;
  const Addr start = std::prev(after)->first;
  auto first = std::ranges::lower_bound(bound->symbols, std::pair<Addr, std::uint32_t>{start, 0});
  const Profile& profile = kernel.profile();
  return KernelSymbol{std::string(profile.str(profile.symbols[first->second].name)), linked - start};
}

std::optional<std::uint64_t> kernel_symbol_extent(const Kernel& kernel, std::string_view name) {
  const auto& bound = kernel.layout<AddressIndex>();
  const auto address = kernel.profile().symbol_address(name);
  if (!bound || !address || *address < bound->text || *address >= bound->end) return std::nullopt;
  auto next = std::ranges::upper_bound(bound->symbols, std::pair<Addr, std::uint32_t>{*address, UINT32_MAX});
  const Addr end = next == bound->symbols.end() ? bound->end : next->first;
  return end - *address;
}

}  // namespace vmi
