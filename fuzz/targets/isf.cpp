// The ISF JSON loader, then every lookup and the writer over what it accepted.
#include <sstream>

#include "fuzz_support.hpp"
#include "vmi/isf.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto profile = vmi::parse_isf(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  if (!profile) return 0;
  const vmi::Profile& p = *profile;
  for (vmi::TypeId id = 0; id < p.types.size(); ++id) {
    (void)p.size_of(id);
    (void)p.aggregate_of(id);
  }
  for (const vmi::Aggregate& aggregate : p.aggregates) {
    std::string name(p.str(aggregate.name));
    (void)p.find_aggregate(name);
    for (const vmi::Member& member : p.members(aggregate)) {
      (void)p.find_field(aggregate, p.str(member.name));
      (void)p.field(name, p.str(member.name));
    }
  }
  for (const vmi::EnumType& e : p.enums) {
    (void)p.find_enum(p.str(e.name));
    (void)p.enumerators(e);
  }
  for (const vmi::Symbol& symbol : p.symbols) (void)p.symbol_address(p.str(symbol.name));
  for (const vmi::BaseType& base : p.base_types) (void)p.find_base_type(p.str(base.name));
  (void)p.banner();
  std::ostringstream out;
  if (vmi::write_isf(p, out)) (void)vmi::parse_isf(out.str(), "fuzz round trip");
  return 0;
}
