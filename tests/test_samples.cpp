// Real snapshots (raw and ELF; 4- and 5-level paging; KASLR on) against the guest's own /proc.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/isf.hpp"
#include "vmi/session.hpp"
#include "vmi/vmlinux.hpp"

using namespace vmi;

TEST_CASE("real samples exist: samples/build-samples.sh has been run") {
  const auto samples = test::load_samples();
  INFO("samples cache: ", test::samples_dir().string());
  REQUIRE(samples.size() >= 2);
  std::set<std::string> levels;
  for (const auto& sample : samples) levels.insert(sample.env.at("PAGING_LEVELS"));
  CHECK(levels == std::set<std::string>{"4", "5"});
}

TEST_CASE("pslist and pstree on every real sample equal the guest's own /proc view") {
  for (const auto& sample : test::load_samples()) {
    const auto profile = test::profile_for(sample);
    for (const char* format : {"memory.raw", "memory.elf"}) {
      CAPTURE(sample.name);
      CAPTURE(format);
      Session session = test::open_sample(sample.dir / format, profile);
      CHECK(session.image().format() == (std::string(format) == "memory.raw" ? "raw" : "elf-core"));
      auto kernel = session.kernel();
      REQUIRE_MESSAGE(kernel.has_value(), test::error_text(kernel));
      std::map<std::string, std::string> facts;
      for (const auto& [name, value] : (*kernel)->facts()) facts[name] = value;
      CHECK(facts.at("kernel release") == sample.release);
      CHECK(facts.at("paging") == (sample.env.at("PAGING_LEVELS") == "5" ? "x86-64 5-level (LA57)" : "x86-64 4-level"));
      CHECK(facts.at("KASLR virtual shift") != "0x0");
      test::check_pslist_equals_proc(session, sample);
      test::check_threads_equal_proc(session, sample);
      test::check_pstree_matches_parents(session, sample);
      CHECK(session.diagnostics().warnings().empty());
    }
  }
}

TEST_CASE("raw and ELF snapshots of one moment hold the same bytes at every physical address") {
  for (const auto& sample : test::load_samples()) {
    CAPTURE(sample.name);
    auto raw = open_image(sample.dir / "memory.raw");
    auto elf = open_image(sample.dir / "memory.elf");
    REQUIRE(raw.has_value());
    REQUIRE(elf.has_value());
    // The ELF core also holds the firmware ROM below 4 GiB, which pmemsave of RAM does not.
    REQUIRE((*raw)->ranges().size() == 1);
    CHECK((*elf)->ranges()[0] == (*raw)->ranges()[0]);
    CHECK(test::check_same_bytes(**elf, **raw) == std::stoull(sample.env.at("RAM_BYTES")));
  }
}
