// The DWARF importer (libdw): add_dwarf_types on the input as an ELF file, then build() and lookups.
// add_dwarf_types takes a path, so the input is written to the memfd each run (no temp file on disk).
#include "vmi/dwarf.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static vmi_fuzz::InputFile input;
  vmi::ProfileBuilder builder;
  auto summary = vmi::add_dwarf_types(input.write(data, size), builder);
  if (!summary) return 0;
  auto profile = std::move(builder).build();
  if (!profile) return 0;
  for (const vmi::Aggregate& aggregate : profile->aggregates) {
    for (const vmi::Member& member : profile->members(aggregate)) {
      (void)profile->find_field(aggregate, profile->str(member.name));
      (void)profile->size_of(member.type);
    }
  }
  for (const vmi::EnumType& e : profile->enums) (void)profile->enumerators(e);
  for (const vmi::DwarfVariable& variable : summary->variables) {
    if (variable.type != vmi::kNoType && variable.type < profile->types.size()) (void)profile->size_of(variable.type);
  }
  return 0;
}
