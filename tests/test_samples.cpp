// Real snapshots (raw and ELF; 4- and 5-level paging; KASLR on) against the guest's own /proc.
#include <doctest/doctest.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/isf.hpp"
#include "vmi/session.hpp"
#include "vmi/vmlinux.hpp"

using namespace vmi;

namespace {

// The kernel's `info` facts by name; REQUIREs a detected kernel.
std::map<std::string, std::string> kernel_facts(Session& session) {
  auto kernel = session.kernel();
  REQUIRE_MESSAGE(kernel.has_value(), test::error_text(kernel));
  std::map<std::string, std::string> facts;
  for (const auto& [name, value] : (*kernel)->facts()) facts[name] = value;
  return facts;
}

const std::string& fact(const std::map<std::string, std::string>& facts, const std::string& name) {
  const auto it = facts.find(name);
  REQUIRE_MESSAGE(it != facts.end(), "info has no fact '", name, "'");
  return it->second;
}

// "0x1f" as a number; REQUIREs exactly that form.
std::uint64_t hex_number(const std::string& text) {
  std::uint64_t value = 0;
  const bool prefixed = text.starts_with("0x");
  const char* end = text.data() + text.size();
  const auto [stop, ec] = std::from_chars(text.data() + (prefixed ? 2 : 0), end, value, 16);
  const bool whole = prefixed && ec == std::errc() && stop == end && text.size() > 2;
  REQUIRE_MESSAGE(whole, "'", text, "' is not a hexadecimal number");
  return value;
}

const test::TruthProcess& process_named(const test::Sample& sample, const std::string& comm) {
  const auto it = std::find_if(sample.processes.begin(), sample.processes.end(),
                               [&](const test::TruthProcess& p) { return p.comm == comm; });
  REQUIRE_MESSAGE(it != sample.processes.end(), "sample ", sample.name, ": no process '", comm, "' in the truth");
  return *it;
}

}  // namespace

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

// Every fact `info` derives from the image against what the guest itself said: /proc/kallsyms
// (virtual _text, init_top_pgt), /proc/iomem's "Kernel code" (physical _text), /proc/kcore's
// program headers (KCORE_TEXT: _text and __pa_symbol(_text); KCORE_RAM: __va(p) - p, the direct
// map's base) and /proc/version. The link-time _text comes from the kernel's System.map.
TEST_CASE("info: _text, KASLR shifts, page-table root, direct map base and banner equal the guest's own") {
  constexpr std::uint64_t kStartKernelMap = 0xffffffff80000000;  // __START_KERNEL_map
  for (const auto& sample : test::load_samples()) {
    CAPTURE(sample.name);
    const std::uint64_t text = test::guest_number(sample, "KALLSYMS__text");
    const std::string& kernel_code = test::guest_fact(sample, "IOMEM_KERNEL_CODE");  // "0xstart-0xend"
    const std::uint64_t text_physical = hex_number(kernel_code.substr(0, kernel_code.find('-')));
    // Two views of the guest agree before they are used as truth.
    CHECK(test::guest_number(sample, "KCORE_TEXT_VADDR") == text);
    CHECK(test::guest_number(sample, "KCORE_TEXT_PADDR") == text_physical);
    const std::uint64_t linked_text = test::system_map_address(sample, "_text");
    const std::uint64_t virtual_shift = text - linked_text;
    // Where _text is against where the kernel was linked to load (unsigned: it may be below).
    const std::uint64_t physical_shift = text_physical - (linked_text - kStartKernelMap);
    // __pa_symbol(init_top_pgt): the kernel image is mapped linearly from _text.
    const std::uint64_t top_pgt = test::guest_number(sample, "KALLSYMS_init_top_pgt") - text + text_physical;
    const std::uint64_t direct_map = test::guest_number(sample, "KCORE_DIRECT_MAP_BASE");
    const auto profile = test::profile_for(sample);
    for (const char* format : {"memory.raw", "memory.elf"}) {
      CAPTURE(format);
      Session session = test::open_sample(sample.dir / format, profile);
      const auto facts = kernel_facts(session);
      const std::string& text_fact = fact(facts, "_text");  // "0x... (physical 0x...)"
      const auto physical = text_fact.find(" (physical ");
      REQUIRE(physical != std::string::npos);
      REQUIRE(text_fact.ends_with(")"));
      CHECK(hex_number(text_fact.substr(0, physical)) == text);
      CHECK(hex_number(text_fact.substr(physical + 11, text_fact.size() - physical - 12)) == text_physical);
      CHECK(hex_number(fact(facts, "KASLR virtual shift")) == virtual_shift);
      CHECK(hex_number(fact(facts, "KASLR physical shift")) == physical_shift);
      CHECK(hex_number(fact(facts, "page-table root (init_top_pgt)")) == top_pgt);
      CHECK(hex_number(fact(facts, "direct map base")) == direct_map);
      // linux_banner is /proc/version's text: the profile's banner must be this kernel's.
      CHECK(fact(facts, "banner") + "\n" == sample.version);
      CHECK(std::string((*session.kernel())->banner()) + "\n" == sample.version);
    }
  }
}

// The guest recorded its boot wall time as CLOCK_REALTIME - CLOCK_BOOTTIME, from a CLOCK_REALTIME
// read between two CLOCK_BOOTTIME reads: the kernel's exact boot time (timekeeper offs_real -
// offs_boot) lies within BOOT_WALL_NS +- BOOT_WALL_NS_ERROR. /proc/stat's btime is that boot time's
// whole seconds, and a task's start_ticks is its start_boottime truncated to the 10 ms tick.
TEST_CASE("CREATION TIME is the guest's boot wall time plus the task's start ticks, to the tick; btime agrees") {
  constexpr std::int64_t kTickNs = 10'000'000;  // USER_HZ 100
  constexpr std::int64_t kSecondNs = 1'000'000'000;
  for (const auto& sample : test::load_samples()) {
    CAPTURE(sample.name);
    REQUIRE(test::guest_fact(sample, "CLK_TCK") == "100");
    const auto boot = static_cast<std::int64_t>(test::guest_number(sample, "BOOT_WALL_NS"));
    const auto error = static_cast<std::int64_t>(test::guest_number(sample, "BOOT_WALL_NS_ERROR"));
    const auto btime = static_cast<std::int64_t>(test::guest_number(sample, "PROC_STAT_BTIME"));
    MESSAGE(sample.name, ": boot wall time ", boot, " ns +- ", error, " ns, btime ", btime);
    // A looser measurement would let the tick comparison below pass by accident.
    REQUIRE(error < 1'000'000);
    // btime = getboottime64().tv_sec: the whole seconds of the same boot time.
    CHECK(btime >= (boot - error) / kSecondNs);
    CHECK(btime <= (boot + error) / kSecondNs);

    Session session = test::open_sample(sample.dir / "memory.raw", test::profile_for(sample));
    auto table = vmi::run_plugin(session, "pslist");
    REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
    REQUIRE(table->rows.size() == sample.processes.size());
    for (const Row& row : table->rows) {
      const auto pid = test::cell_integer(row, test::kPid);
      REQUIRE(pid.has_value());
      CAPTURE(*pid);
      const test::TruthProcess* truth = test::truth_process(sample, *pid);
      REQUIRE(truth != nullptr);
      const auto creation = test::cell_integer(row, test::kCreation);
      const auto start = test::cell_integer(row, test::kStart);
      REQUIRE(creation.has_value());
      REQUIRE(start.has_value());
      // The boot time the library read from the timekeeper is the guest's, to the guest's error.
      CHECK(*creation - *start >= boot - error);
      CHECK(*creation - *start <= boot + error);
      // Against the truth's ticks alone: start_boottime = CREATION TIME - boot time, and
      // start_ticks = start_boottime / 10 ms truncated (nsec_to_clock_t). The boot time is known
      // to +-error, so (CREATION TIME - boot time) truncated to the tick is start_ticks, or its
      // neighbour only when the value lies within `error` of a tick boundary: the check takes the
      // truncated ticks at both ends of that interval as the bounds.
      CHECK(truth->start_ticks >= (*creation - boot - error) / kTickNs);
      CHECK(truth->start_ticks <= (*creation - boot + error) / kTickNs);
    }
  }
}

TEST_CASE("pslist --pid lists exactly the named processes as /proc shows them; a bad list names the bad item") {
  for (const auto& sample : test::load_samples()) {
    CAPTURE(sample.name);
    const test::TruthProcess& a1 = process_named(sample, "vmi-wl-a1");  // four threads
    const test::TruthProcess& c1 = process_named(sample, "vmi-wl (c1) x");
    Session session = test::open_sample(sample.dir / "memory.raw", test::profile_for(sample));

    PluginArgs args;
    args.values["pid"] = "1," + std::to_string(a1.pid) + ",2," + std::to_string(c1.pid);
    auto table = vmi::run_plugin(session, "pslist", args);
    REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
    std::vector<std::int64_t> pids;
    for (const Row& row : table->rows) {
      const auto pid = test::cell_integer(row, test::kPid);
      REQUIRE(pid.has_value());
      CAPTURE(*pid);
      pids.push_back(*pid);
      const test::TruthProcess* truth = test::truth_process(sample, *pid);
      REQUIRE(truth != nullptr);
      const auto differences = test::row_differences(row, *truth);
      CHECK_MESSAGE(differences.empty(), test::joined(differences));
    }
    std::sort(pids.begin(), pids.end());
    std::vector<std::int64_t> wanted{1, 2, a1.pid, c1.pid};
    std::sort(wanted.begin(), wanted.end());
    CHECK(pids == wanted);

    // With --threads, the named process's threads: as /proc/<pid>/task lists them.
    args.values["pid"] = std::to_string(a1.pid);
    args.values["threads"] = "";
    table = vmi::run_plugin(session, "pslist", args);
    REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
    std::vector<std::pair<std::int64_t, std::string>> threads, truth_threads;
    for (const Row& row : table->rows) {
      CHECK(test::cell_integer(row, test::kPid) == std::optional<std::int64_t>(a1.pid));
      const auto tid = test::cell_integer(row, test::kTid);
      const auto name = test::cell_text(row, test::kName);
      REQUIRE(tid.has_value());
      REQUIRE(name.has_value());
      threads.emplace_back(*tid, *name);
    }
    for (const auto& thread : sample.threads) {
      if (thread.tgid == a1.pid) truth_threads.emplace_back(thread.tid, thread.comm);
    }
    std::sort(threads.begin(), threads.end());
    CHECK(truth_threads.size() == static_cast<std::size_t>(a1.threads));
    CHECK(threads == truth_threads);

    // A pid no process has: no rows, and no error.
    args.values.erase("threads");
    args.values["pid"] = "999999";
    table = vmi::run_plugin(session, "pslist", args);
    REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
    CHECK(table->rows.empty());

    // A list with an item that is not a number: an error quoting that item, not a partial table.
    args.values["pid"] = "1,x";
    auto bad = vmi::run_plugin(session, "pslist", args);
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().code == Errc::invalid_argument);
    CHECK(bad.error().message.find("'x'") != std::string::npos);
    CHECK(bad.error().message.find("'1'") == std::string::npos);
    CHECK(bad.error().message.find("pid") != std::string::npos);
  }
}

TEST_CASE("Session::run takes the short, OS-qualified and Volatility 3 names of a plugin alike") {
  const auto samples = test::load_samples();
  const auto& sample = samples.front();
  Session session = test::open_sample(sample.dir / "memory.raw", test::profile_for(sample));
  auto cells = [&](std::string_view name) {
    auto table = vmi::run_plugin(session, name);
    REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
    std::vector<std::vector<Cell>> rows;
    for (const Row& row : table->rows) rows.push_back(row.cells);
    return rows;
  };
  const auto by_short_name = cells("pslist");
  CHECK(by_short_name.size() == sample.processes.size());
  CHECK(cells("linux.pslist") == by_short_name);
  CHECK(cells("linux.pslist.PsList") == by_short_name);
  auto unknown = vmi::run_plugin(session, "mac.pslist");
  REQUIRE_FALSE(unknown.has_value());
  CHECK(unknown.error().message == "no plugin named 'mac.pslist'");
  auto other_os = vmi::run_plugin(session, "windows.pslist");
  REQUIRE_FALSE(other_os.has_value());
  CHECK(other_os.error().message == "plugin 'windows.pslist' needs a windows kernel, the image holds linux");
}
