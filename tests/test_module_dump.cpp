// linux.lsmod --dump: each module rebuilt from memory as an ELF file, against the guest's own view
// and the module's file. Its symbols are exactly the module's lines of the guest's /proc/kallsyms
// (name and address); its sections are the .ko's loaded ones (SHF_ALLOC, less what the loader
// frees or drops); every read-only section the loader does not relocate equals the .ko byte for
// byte. The .ko is the file the sample script took from Debian's package and loaded in the guest.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "elf_file.hpp"
#include "samples.hpp"
#include "support.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"

using namespace vmi;
using namespace vmi::test::elf;

namespace {

enum ModuleColumn : int { kName = 1, kOutput = 5, kParses = 11, kMissing = 12 };

// The module's lines of the guest's /proc/kallsyms: "ffffffffc03fb000 t cpuid_device_destroy\t[cpuid]".
std::multiset<std::pair<std::uint64_t, std::string>> kallsyms_of(const test::Sample& sample,
                                                                 const std::string& module) {
  std::ifstream in(sample.dir / "truth" / "kallsyms");
  REQUIRE(in.good());
  std::multiset<std::pair<std::uint64_t, std::string>> symbols;
  const std::string tag = "\t[" + module + "]";
  for (std::string line; std::getline(in, line);) {
    if (!line.ends_with(tag)) continue;
    std::istringstream fields(line.substr(0, line.size() - tag.size()));
    std::string address;
    std::string type;
    std::string name;
    fields >> address >> type >> name;
    symbols.emplace(std::stoull(address, nullptr, 16), name);
  }
  return symbols;
}

// The sections the loader keeps for the module's life: allocated and not empty, less the init
// sections (freed after init), and .modinfo, __versions and the per-CPU template, whose
// SHF_ALLOC the loader clears (kernel/module/main.c).
// A section the loader rewrites in place without a relocation: unwind_module_init() sorts the
// ORC table by address (arch/x86/kernel/unwind_orc.c).
bool rewritten_at_load(const ElfSection& s) { return s.name == ".orc_unwind"; }

bool kept_by_loader(const ElfSection& s) {
  return (s.flags & kAlloc) != 0 && s.size > 0 && !s.name.starts_with(".init") && s.name != ".modinfo" &&
         s.name != "__versions" && s.name != ".data..percpu";
}

void check_modules_rebuilt(Session& session, const test::Sample& sample) {
  const auto out = test::scratch_dir("module-dump-" + sample.name);
  PluginArgs args;
  args.values = {{"dump", out.string()}};
  auto table = run_plugin(session, "modules", args);
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  std::set<std::string> names;
  for (const Row& row : table->rows) {
    const std::string name = test::cell_text(row, kName).value();
    CAPTURE(name);
    names.insert(name);
    REQUIRE(std::holds_alternative<bool>(row.cells[kParses]));
    CHECK(std::get<bool>(row.cells[kParses]));      // LIEF reads the rebuilt file back
    CHECK(test::cell_integer(row, kMissing) == 0);  // module memory is kernel memory: all resident
    const std::string dumped = test::read_file(out / test::cell_text(row, kOutput).value());
    const auto dumped_sections = elf_sections(dumped);
    CHECK(elf_symbols(dumped, dumped_sections) == kallsyms_of(sample, name));

    const std::string original =
        test::read_file(test::samples_dir() / "kernels" / sample.env.at("KERNEL_RELEASE") / "modules" / (name + ".ko"));
    const auto original_sections = elf_sections(original);
    std::set<std::string> relocated;  // sections a relocation section applies to
    for (const ElfSection& s : original_sections) {
      if (s.type == kRela || s.type == kRel) relocated.insert(original_sections.at(s.info).name);
    }
    std::set<std::string> kept;
    std::set<std::string> rebuilt;
    for (const ElfSection& s : original_sections) {
      if (kept_by_loader(s)) kept.insert(s.name);
    }
    for (const ElfSection& s : dumped_sections) {
      if ((s.flags & kAlloc) != 0) rebuilt.insert(s.name);
    }
    CHECK(rebuilt == kept);
    std::size_t compared = 0;
    for (const ElfSection& s : original_sections) {
      if (!kept_by_loader(s) || (s.flags & kWrite) != 0 || relocated.contains(s.name) || rewritten_at_load(s)) continue;
      CAPTURE(s.name);
      const auto copy = std::ranges::find(dumped_sections, s.name, &ElfSection::name);
      REQUIRE(copy != dumped_sections.end());
      REQUIRE(copy->size >= s.size);
      CHECK(dumped.compare(copy->offset, s.size, original, s.offset, s.size) == 0);
      ++compared;
    }
    CHECK(compared > 0);
    MESSAGE(sample.name, " ", name, ": ", compared, " read-only unrelocated sections equal the .ko");
  }
  // The workload loads these two.
  CHECK(names.contains("brd"));
  CHECK(names.contains("cpuid"));
}

}  // namespace

TEST_CASE("modules --dump on every sample, raw and ELF, rebuilds each module: kallsyms' symbols, the .ko's bytes") {
  test::for_each_sample_image(check_modules_rebuilt);
}
