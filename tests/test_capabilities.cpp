// linux.capabilities against every process's /proc/PID/status Cap* lines (truth/caps.tsv).
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"

using namespace vmi;

namespace {

enum CapColumn : int {
  kName,
  kTid,
  kPid,
  kPpid,
  kEuid,
  kInh,
  kPrm,
  kEff,
  kBnd,
  kAmb,
  kCapInh,
  kCapPrm,
  kCapEff,
  kCapBnd,
  kCapAmb
};

// pid -> CapInh, CapPrm, CapEff, CapBnd, CapAmb as /proc/PID/status printed them.
std::map<std::int64_t, std::vector<std::string>> truth_caps(const test::Sample& sample) {
  std::ifstream in(sample.dir / "truth" / "caps.tsv");
  REQUIRE_MESSAGE(in.good(), "no truth/caps.tsv in ", sample.dir.string(),
                  ": rebuild the samples (VMI_SAMPLES_FORCE=1 bash samples/build-samples.sh)");
  std::string line;
  std::getline(in, line);
  REQUIRE(line == "pid\tCapInh\tCapPrm\tCapEff\tCapBnd\tCapAmb");
  std::map<std::int64_t, std::vector<std::string>> caps;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::int64_t pid = 0;
    std::vector<std::string> sets(5);
    fields >> pid >> sets[0] >> sets[1] >> sets[2] >> sets[3] >> sets[4];
    caps[pid] = sets;
  }
  REQUIRE(!caps.empty());
  return caps;
}

void check_capabilities_equal_proc(Session& session, const test::Sample& sample) {
  const auto expected = truth_caps(sample);
  auto table = run_plugin(session, "capabilities");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  std::map<std::int64_t, const Row*> leaders;
  for (const Row& row : table->rows) {
    if (test::cell_integer(row, kTid) == test::cell_integer(row, kPid))
      leaders[test::cell_integer(row, kPid).value()] = &row;
  }
  for (const auto& [pid, sets] : expected) {
    CAPTURE(pid);
    REQUIRE(leaders.contains(pid));
    const Row& row = *leaders.at(pid);
    const std::vector<std::string> listed{
        test::cell_text(row, kCapInh).value_or("?"), test::cell_text(row, kCapPrm).value_or("?"),
        test::cell_text(row, kCapEff).value_or("?"), test::cell_text(row, kCapBnd).value_or("?"),
        test::cell_text(row, kCapAmb).value_or("?")};
    CHECK(listed == sets);
    // Names follow the masks: the full set of 41 capabilities is "all", none is "".
    for (int set = 0; set < 5; ++set) {
      const auto mask = std::stoull(sets[static_cast<std::size_t>(set)], nullptr, 16);
      const auto names = test::cell_text(row, kInh + set).value_or("?");
      if (mask == 0x1ffffffffff) CHECK(names == "all");
      if (mask == 0) CHECK(names.empty());
    }
  }
  // vmi-wl (c1) x: bounding set without sys_module, net_raw inheritable and ambient.
  for (const auto& process : sample.processes) {
    if (process.comm != "vmi-wl (c1) x") continue;
    const Row& row = *leaders.at(process.pid);
    CHECK(test::cell_text(row, kInh).value() == "net_raw");
    CHECK(test::cell_text(row, kAmb).value() == "net_raw");
    const auto bounding = test::cell_text(row, kBnd).value();
    CHECK(bounding.find("sys_module") == std::string::npos);
    CHECK(bounding.find("sys_rawio") != std::string::npos);
  }
}

}  // namespace

TEST_CASE(
    "capabilities on every sample, raw and ELF, equal /proc/PID/status's CapInh..CapAmb; names follow the masks") {
  test::for_each_sample_image(check_capabilities_equal_proc);
}

TEST_CASE("capabilities on every recovery sample equal /proc/PID/status") {
  test::for_each_recovery_image(check_capabilities_equal_proc);
}
