// System.map parsing.
#include "fuzz_support.hpp"
#include "vmi/vmlinux.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto map = vmi::parse_system_map(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  if (map) {
    for (const vmi::MapSymbol& symbol : map->symbols) (void)symbol.name.size();
  }
  return 0;
}
