// Reads the samples cache (sample.env and the tab-separated ground truth) and checks a session's
// plugin output against that truth.
#include "samples.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "support.hpp"
#include "vmi/isf.hpp"
#include "vmi/vmlinux.hpp"

namespace vmi::test {

namespace fs = std::filesystem;

fs::path samples_dir() {
  if (const char* dir = std::getenv("VMI_SAMPLES_DIR"); dir != nullptr && *dir != '\0') return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0')
    return fs::path(xdg) / "vmi-forensics/samples";
  return fs::path(std::getenv("HOME")) / ".cache/vmi-forensics/samples";
}

namespace {

std::vector<std::vector<std::string>> read_tsv(const fs::path& path) {
  std::vector<std::vector<std::string>> rows;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::size_t start = 0;
    for (std::size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1)
      cells.push_back(line.substr(start, tab - start));
    cells.push_back(line.substr(start));
    rows.push_back(std::move(cells));
  }
  return rows;
}

// A value as qemu_snapshot.py writes it with shlex.quote: '...' and "..." parts, the rest literal.
std::string shell_unquote(const std::string& value) {
  std::string out;
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\'' || value[i] == '"') {
      const auto close = value.find(value[i], i + 1);
      if (close == std::string::npos) return out + value.substr(i);
      out += value.substr(i + 1, close - i - 1);
      i = close;
    } else {
      out += value[i];
    }
  }
  return out;
}

// Every sample named in `list_name` (one a line) under samples_dir().
std::vector<Sample> load_sample_list(const std::string& list_name) {
  std::vector<Sample> samples;
  std::ifstream list(samples_dir() / list_name);
  std::string name;
  while (std::getline(list, name)) {
    if (name.empty()) continue;
    Sample sample;
    sample.name = name;
    sample.dir = samples_dir() / name;
    std::ifstream env(sample.dir / "sample.env");
    for (std::string line; std::getline(env, line);) {
      const auto eq = line.find('=');
      if (eq != std::string::npos) sample.env[line.substr(0, eq)] = line.substr(eq + 1);
    }
    std::ifstream guest(sample.dir / "truth/guest.env");
    for (std::string line; std::getline(guest, line);) {
      const auto eq = line.find('=');
      if (eq != std::string::npos) sample.guest[line.substr(0, eq)] = shell_unquote(line.substr(eq + 1));
    }
    for (const auto& c : read_tsv(sample.dir / "truth/processes.tsv")) {
      if (c.size() < 9) continue;
      sample.processes.push_back({std::stoi(c[0]), std::stoi(c[1]), std::stoi(c[2]),
                                  static_cast<unsigned>(std::stoul(c[3])), static_cast<unsigned>(std::stoul(c[4])),
                                  static_cast<unsigned>(std::stoul(c[5])), static_cast<unsigned>(std::stoul(c[6])),
                                  std::stoll(c[7]), c[8]});
    }
    for (const auto& c : read_tsv(sample.dir / "truth/threads.tsv")) {
      if (c.size() >= 3) sample.threads.push_back({std::stoi(c[0]), std::stoi(c[1]), c[2]});
    }
    std::ifstream release(sample.dir / "truth/release.txt");
    std::getline(release, sample.release);
    samples.push_back(std::move(sample));
  }
  return samples;
}

}  // namespace

std::vector<Sample> load_samples() { return load_sample_list("samples.list"); }

std::vector<Sample> load_recovery_samples() { return load_sample_list("recovery-samples.list"); }

std::vector<Sample> load_lime_samples() { return load_sample_list("lime-samples.list"); }

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

}  // namespace

// The profile the samples are read with: the shipped dwarf2json ISF for the pinned build;
// for a fallback kernel (pinned package unavailable) one built from its vmlinux BTF.
std::filesystem::path profile_for(const Sample& sample) {
  // Recovery samples (PROFILE_SHIPPED=0) are other kernels: never the shipped profile.
  const auto shipped = sample.env.find("PROFILE_SHIPPED");
  if (sample.env.at("PINNED") == "1" && (shipped == sample.env.end() || shipped->second != "0"))
    return shipped_profile();
  const auto path = scratch_dir("btf-" + sample.name) / "btf.json";
  const auto kernel = std::filesystem::path(sample.env.at("KERNEL_DIR"));
  auto profile = build_profile_from_vmlinux(kernel / "vmlinux", kernel / "System.map");
  REQUIRE_MESSAGE(profile.has_value(), test::error_text(profile));
  REQUIRE(save_isf_file(*profile, path).has_value());
  return path;
}

const Profile& debug_vmlinux_profile(const Sample& sample) {
  static std::map<fs::path, Profile> built;
  const fs::path path = fs::path(sample.env.at("KERNEL_DIR")) / "vmlinux.dbg";
  if (auto it = built.find(path); it != built.end()) return it->second;
  REQUIRE_MESSAGE(fs::exists(path), "samples/build-samples.sh extracts " << path << " from linux-image-*-dbg");
  auto profile = build_profile_from_vmlinux(path, std::nullopt, nullptr, VmlinuxTypes::dwarf);
  REQUIRE_MESSAGE(profile.has_value(), test::error_text(profile));
  return built.emplace(path, std::move(*profile)).first->second;
}

Session open_sample(const std::filesystem::path& image, const std::filesystem::path& profile) {
  SessionOptions options;
  options.profile_paths = {profile};
  options.cache = CacheOptions{true, scratch_dir("samples-cache-" + image.parent_path().filename().string())};
  auto session = Session::open(image, options);
  REQUIRE_MESSAGE(session.has_value(), test::error_text(session));
  return std::move(*session);
}

void check_pslist_equals_proc(Session& session, const Sample& sample) {
  auto table = session.run("pslist");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  std::vector<TruthProcess> seen;
  for (const Row& row : table->rows) {
    const long long start_ticks = integer(row, kStart) / 10'000'000;  // USER_HZ = 100
    seen.push_back({static_cast<int>(integer(row, kPid)), static_cast<int>(integer(row, kPpid)),
                    static_cast<int>(integer(row, kThreads)), static_cast<unsigned>(integer(row, kUid)),
                    static_cast<unsigned>(integer(row, kGid)), static_cast<unsigned>(integer(row, kEuid)),
                    static_cast<unsigned>(integer(row, kEgid)), start_ticks, without_worker_desc(text(row, kName))});
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

void check_threads_equal_proc(Session& session, const Sample& sample) {
  PluginArgs args;
  args.values["threads"] = "";
  auto table = session.run("pslist", args);
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  std::vector<std::tuple<int, int, std::string>> seen, truth;
  for (const Row& row : table->rows)
    seen.emplace_back(integer(row, kTid), integer(row, kPid), without_worker_desc(text(row, kName)));
  for (const auto& t : sample.threads) truth.emplace_back(t.tid, t.tgid, t.comm);
  std::sort(seen.begin(), seen.end());
  CHECK(seen == truth);
}

void check_pstree_matches_parents(Session& session, const Sample& sample) {
  auto table = session.run("pstree");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
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

std::uint64_t check_same_bytes(const PhysicalImage& image, const PhysicalImage& reference) {
  std::vector<std::byte> a(1 << 20), b(1 << 20);
  std::uint64_t compared = 0;
  for (const Range& range : reference.ranges()) {
    for (Addr at = range.begin; at < range.end; at += a.size()) {
      CAPTURE(at);
      const auto size = static_cast<std::size_t>(std::min<std::uint64_t>(a.size(), range.end - at));
      REQUIRE(read_exact(image, at, std::span(a).first(size)).has_value());
      REQUIRE(read_exact(reference, at, std::span(b).first(size)).has_value());
      REQUIRE(std::equal(a.begin(), a.begin() + size, b.begin()));
      compared += size;
    }
  }
  return compared;
}

}  // namespace vmi::test
