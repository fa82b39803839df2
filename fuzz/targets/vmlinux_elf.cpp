// Our ELF64 reader for vmlinux files: build_profile_from_vmlinux on the input, types from .BTF,
// symbols from the ELF symbol table, the banner from linux_banner's bytes in its section. It takes
// a path, so the input is written to the memfd each run (no temp file on disk).
#include <optional>

#include "fuzz_support.hpp"
#include "vmi/vmlinux.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static vmi_fuzz::InputFile input;
  vmi::VmlinuxProfileNotes notes;
  // BTF even when the input has .debug_info: DWARF is libdw's and has the dwarf target.
  auto profile = vmi::build_profile_from_vmlinux(input.write(data, size), std::nullopt, &notes, vmi::VmlinuxTypes::btf);
  if (!profile) return 0;
  (void)profile->banner();
  for (const vmi::Symbol& symbol : profile->symbols) {
    (void)profile->symbol_address(profile->str(symbol.name));
    if (symbol.type != vmi::kNoType) (void)profile->size_of(symbol.type);
  }
  for (const vmi::Aggregate& aggregate : profile->aggregates) {
    for (const vmi::Member& member : profile->members(aggregate)) {
      (void)profile->find_field(aggregate, profile->str(member.name));
    }
  }
  return 0;
}
