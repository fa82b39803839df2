// Real snapshots (raw and ELF; 4- and 5-level paging; KASLR on) against the guest's own /proc.
#include <doctest/doctest.h>

#include <algorithm>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/isf.hpp"
#include "vmi/session.hpp"
#include "vmi/vmlinux.hpp"

using namespace vmi;

namespace {

// Column positions of the shared task columns (plugins/linux_task_rows.hpp).
enum TaskColumn { kOffset, kPid, kTid, kPpid, kComm, kName, kThreads, kUid, kGid, kEuid, kEgid, kStart, kCreation };

// The truth drops a workqueue worker's "-desc"/"+desc" suffix, which changes whenever the worker
// runs (samples/workload.c); compare NAME the same way.
std::string without_worker_desc(const std::string& name) {
  if (!name.starts_with("kworker/")) return name;
  return name.substr(0, name.find_first_of("-+", 8));
}

std::int64_t integer(const Row& row, int column) { return std::get<std::int64_t>(row.cells.at(column)); }
const std::string& text(const Row& row, int column) { return std::get<std::string>(row.cells.at(column)); }

// The profile the samples are read with: the shipped dwarf2json ISF for the pinned build;
// for a fallback kernel (pinned package unavailable) one built from its vmlinux BTF.
std::filesystem::path profile_for(const test::Sample& sample) {
  if (sample.env.at("PINNED") == "1") return test::shipped_profile();
  const auto path = test::scratch_dir("btf-" + sample.name) / "btf.json";
  const auto kernel = std::filesystem::path(sample.env.at("KERNEL_DIR"));
  auto profile = build_profile_from_vmlinux(kernel / "vmlinux", kernel / "System.map");
  REQUIRE_MESSAGE(profile.has_value(), profile.error().message);
  REQUIRE(save_isf_file(*profile, path).has_value());
  return path;
}

Session open_sample(const std::filesystem::path& image, const std::filesystem::path& profile) {
  SessionOptions options;
  options.profile_paths = {profile};
  options.cache = CacheOptions{true, test::scratch_dir("samples-cache-" + image.parent_path().filename().string()) };
  auto session = Session::open(image, options);
  REQUIRE_MESSAGE(session.has_value(), session.error().message);
  return std::move(*session);
}

void check_pslist_equals_proc(Session& session, const test::Sample& sample) {
  auto table = session.run("pslist");
  REQUIRE_MESSAGE(table.has_value(), table.error().message);
  std::vector<test::TruthProcess> seen;
  for (const Row& row : table->rows) {
    const long long start_ticks = integer(row, kStart) / 10'000'000;  // USER_HZ = 100
    seen.push_back({static_cast<int>(integer(row, kPid)), static_cast<int>(integer(row, kPpid)), static_cast<int>(integer(row, kThreads)),
                    static_cast<unsigned>(integer(row, kUid)), static_cast<unsigned>(integer(row, kGid)),
                    static_cast<unsigned>(integer(row, kEuid)), static_cast<unsigned>(integer(row, kEgid)), start_ticks,
                    without_worker_desc(text(row, kName))});
    CHECK(integer(row, kPid) == integer(row, kTid));
    // COMM is the kernel's 16-byte field; /proc's name starts with it.
    CHECK(text(row, kName).starts_with(text(row, kComm)));
    CHECK(text(row, kComm).size() <= 15);
  }
  std::sort(seen.begin(), seen.end(), [](const auto& a, const auto& b) { return a.pid < b.pid; });
  REQUIRE(seen.size() == sample.processes.size());
  for (std::size_t i = 0; i < seen.size(); ++i) {
    INFO("pid ", sample.processes[i].pid, " (", sample.processes[i].comm, ")");
    CHECK(seen[i].key() == sample.processes[i].key());
    CHECK(seen[i].start_ticks == sample.processes[i].start_ticks);
  }
}

void check_threads_equal_proc(Session& session, const test::Sample& sample) {
  PluginArgs args;
  args.values["threads"] = "";
  auto table = session.run("pslist", args);
  REQUIRE_MESSAGE(table.has_value(), table.error().message);
  std::vector<std::tuple<int, int, std::string>> seen, truth;
  for (const Row& row : table->rows) seen.emplace_back(integer(row, kTid), integer(row, kPid), without_worker_desc(text(row, kName)));
  for (const auto& t : sample.threads) truth.emplace_back(t.tid, t.tgid, t.comm);
  std::sort(seen.begin(), seen.end());
  CHECK(seen == truth);
}

void check_pstree_matches_parents(Session& session, const test::Sample& sample) {
  auto table = session.run("pstree");
  REQUIRE_MESSAGE(table.has_value(), table.error().message);
  REQUIRE(table->tree);
  REQUIRE(table->rows.size() == sample.processes.size());
  std::map<int, int> parent_of;
  for (const auto& p : sample.processes) parent_of[p.pid] = p.ppid;
  std::vector<std::int64_t> ancestry;  // pid at each depth along the current path
  std::set<int> pids;
  for (const Row& row : table->rows) {
    const int pid = static_cast<int>(integer(row, kPid));
    pids.insert(pid);
    REQUIRE(row.depth <= ancestry.size());
    ancestry.resize(row.depth);
    INFO("pid ", pid, " at depth ", row.depth);
    if (row.depth == 0) {
      CHECK(parent_of.at(pid) == 0);  // roots are children of the idle task: init and kthreadd
    } else {
      CHECK(ancestry.back() == parent_of.at(pid));
    }
    CHECK(integer(row, kPpid) == parent_of.at(pid));
    ancestry.push_back(pid);
  }
  CHECK(pids.size() == sample.processes.size());
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
    const auto profile = profile_for(sample);
    for (const char* format : {"memory.raw", "memory.elf"}) {
      CAPTURE(sample.name);
      CAPTURE(format);
      Session session = open_sample(sample.dir / format, profile);
      CHECK(session.image().format() == (std::string(format) == "memory.raw" ? "raw" : "elf-core"));
      auto kernel = session.kernel();
      REQUIRE_MESSAGE(kernel.has_value(), kernel.error().message);
      std::map<std::string, std::string> facts;
      for (const auto& [name, value] : (*kernel)->facts()) facts[name] = value;
      CHECK(facts.at("kernel release") == sample.release);
      CHECK(facts.at("paging") == (sample.env.at("PAGING_LEVELS") == "5" ? "x86-64 5-level (LA57)" : "x86-64 4-level"));
      CHECK(facts.at("KASLR virtual shift") != "0x0");
      check_pslist_equals_proc(session, sample);
      check_threads_equal_proc(session, sample);
      check_pstree_matches_parents(session, sample);
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
    std::uint64_t compared = 0;
    std::vector<std::byte> a(1 << 20), b(1 << 20);
    // The ELF core also holds the firmware ROM below 4 GiB, which pmemsave of RAM does not.
    REQUIRE((*raw)->ranges().size() == 1);
    CHECK((*elf)->ranges()[0] == (*raw)->ranges()[0]);
    for (const Range& range : (*raw)->ranges()) {
      for (Addr at = range.begin; at < range.end; at += a.size()) {
        const std::size_t size = static_cast<std::size_t>(std::min<std::uint64_t>(a.size(), range.end - at));
        REQUIRE(read_exact(**elf, at, std::span(a).first(size)).has_value());
        REQUIRE(read_exact(**raw, at, std::span(b).first(size)).has_value());
        REQUIRE(std::equal(a.begin(), a.begin() + size, b.begin()));
        compared += size;
      }
    }
    CHECK(compared == std::stoull(sample.env.at("RAM_BYTES")));
  }
}
