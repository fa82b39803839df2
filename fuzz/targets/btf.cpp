// The BTF parser: a blob's types into a ProfileBuilder, then build() and a few lookups.
#include "vmi/btf.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  vmi::ProfileBuilder builder;
  auto summary = vmi::add_btf_types(vmi_fuzz::bytes_of(data, size), builder, "fuzz");
  if (!summary) return 0;
  auto profile = std::move(builder).build();
  if (!profile) return 0;
  for (const vmi::Aggregate& aggregate : profile->aggregates) {
    for (const vmi::Member& member : profile->members(aggregate)) {
      (void)profile->find_field(aggregate, profile->str(member.name));
      (void)profile->size_of(member.type);
    }
  }
  for (const vmi::BtfVariable& variable : summary->variables) {
    if (variable.type != vmi::kNoType && variable.type < profile->types.size()) (void)profile->size_of(variable.type);
  }
  return 0;
}
