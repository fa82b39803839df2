// linux.malfind against the guest's own /proc/PID/maps: the areas it flags are exactly those the
// guest shows as writable and executable, or executable with no file behind them (the vDSO
// aside) — on a clean guest, only the page of code the workload maps rwx in c1, whose bytes the
// workload wrote (a 64-byte nop sled).
#include <doctest/doctest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"

using namespace vmi;

namespace {

enum MalfindColumn : int { kPid, kProcess, kStart, kEnd, kPath, kProtection, kHexdump, kDisasm, kOutput, kReason };

using Area = std::tuple<std::int64_t, std::uint64_t, std::uint64_t>;  // pid, start, end

// The areas of truth/maps.tsv ("PID\tstart-end perms offset dev inode name") malfind's rule
// picks: rwx, or x with inode 0 (no file) other than the vDSO.
std::set<Area> suspicious_in_truth(const test::Sample& sample) {
  std::ifstream in(sample.dir / "truth" / "maps.tsv");
  REQUIRE(in.good());
  std::set<Area> areas;
  for (std::string line; std::getline(in, line);) {
    const auto tab = line.find('\t');
    if (tab == std::string::npos || line.compare(0, tab, "pid") == 0) continue;
    std::istringstream fields(line.substr(tab + 1));
    std::string range;
    std::string perms;
    std::string offset;
    std::string device;
    std::string inode;
    std::string name;
    fields >> range >> perms >> offset >> device >> inode;
    std::getline(fields, name);
    name.erase(0, name.find_first_not_of(' '));
    const bool executable = perms[2] == 'x';
    const bool writable = perms[1] == 'w';
    const bool no_file = inode == "0" && name != "[vdso]" && name != "[vsyscall]";
    if (!executable || (!writable && !no_file)) continue;
    const auto dash = range.find('-');
    areas.emplace(std::stoll(line.substr(0, tab)), std::stoull(range.substr(0, dash), nullptr, 16),
                  std::stoull(range.substr(dash + 1), nullptr, 16));
  }
  return areas;
}

void check_malfind_flags_the_guests_rwx_code(Session& session, const test::Sample& sample) {
  const auto truth = suspicious_in_truth(sample);
  auto table = run_plugin(session, "malfind");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  std::set<Area> flagged;
  for (const Row& row : table->rows) {
    flagged.emplace(test::cell_integer(row, kPid).value(), test::cell_address(row, kStart).value(),
                    test::cell_address(row, kEnd).value());
  }
  CHECK(flagged == truth);
  // c1's page: rwx, anonymous, the nop sled the workload wrote.
  std::int64_t c1 = -1;
  for (const auto& p : sample.processes) {
    if (p.comm.starts_with("vmi-wl (c1)")) c1 = p.pid;
  }
  REQUIRE(c1 > 0);
  std::size_t c1_pages = 0;
  for (const Row& row : table->rows) {
    if (test::cell_integer(row, kPid) != c1) continue;
    ++c1_pages;
    CHECK(test::cell_text(row, kProtection) == "rwx");
    CHECK(test::cell_text(row, kPath) == "");
    CHECK(test::cell_text(row, kReason) == "writable and executable");
    REQUIRE(std::holds_alternative<Code>(row.cells[kHexdump]));
    const Code& code = std::get<Code>(row.cells[kHexdump]);
    CHECK(code.address == test::cell_address(row, kStart));
    CHECK(code.bytes == std::vector<std::uint8_t>(64, 0x90));
    CHECK(row.cells[kDisasm] == row.cells[kHexdump]);
  }
  CHECK(c1_pages == 1);
}

}  // namespace

TEST_CASE("malfind on every sample, raw and ELF, flags exactly the guest's rwx and fileless executable areas") {
  test::for_each_sample_image(check_malfind_flags_the_guests_rwx_code);
}

TEST_CASE("malfind on the rootkit sample flags exactly the workload's rwx area") {
  test::for_each_rootkit_image(check_malfind_flags_the_guests_rwx_code);
}
