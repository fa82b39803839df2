// Reads the samples cache (sample.env and the tab-separated ground truth) and checks a session's
// plugin output against that truth.
#include "samples.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <system_error>

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

constexpr char kRebuild[] = "rebuild the samples with samples/build-samples.sh";

// The rows of a truth table under its header line. REQUIREs the file, the header and `columns`
// cells in every row; the last column (a comm, which may hold tabs) takes any extra cells.
std::vector<std::vector<std::string>> read_tsv(const fs::path& path, const std::string& header, std::size_t columns) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.is_open(), "cannot read ", path.string(), ": ", kRebuild);
  std::string line;
  const bool has_header = static_cast<bool>(std::getline(in, line));
  REQUIRE_MESSAGE(has_header, path.string(), " is empty: ", kRebuild);
  REQUIRE_MESSAGE(line == header, path.string(), ": header '", line, "' is not '", header, "'");
  std::vector<std::vector<std::string>> rows;
  for (std::size_t number = 2; std::getline(in, line); ++number) {
    std::vector<std::string> cells;
    std::size_t start = 0;
    for (std::size_t tab = 0; cells.size() + 1 < columns && (tab = line.find('\t', start)) != std::string::npos;
         start = tab + 1)
      cells.push_back(line.substr(start, tab - start));
    cells.push_back(line.substr(start));
    REQUIRE_MESSAGE(cells.size() == columns, path.string(), ":", number, ": ", cells.size(), " cells, not ", columns,
                    ": '", line, "'");
    rows.push_back(std::move(cells));
  }
  REQUIRE_MESSAGE(!rows.empty(), path.string(), " has no rows: ", kRebuild);
  return rows;
}

// A whole number cell of a truth table; REQUIREs that it is one.
template <class T>
T number_cell(const std::string& cell, const fs::path& path) {
  T value{};
  const auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
  const bool whole = ec == std::errc() && end == cell.data() + cell.size() && !cell.empty();
  REQUIRE_MESSAGE(whole, path.string(), ": '", cell, "' is not a number");
  return value;
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

// KEY=value lines (shell-quoted values); REQUIREs the file.
std::map<std::string, std::string> read_env(const fs::path& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.is_open(), "cannot read ", path.string(), ": ", kRebuild);
  std::map<std::string, std::string> env;
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) env[line.substr(0, eq)] = shell_unquote(line.substr(eq + 1));
  }
  REQUIRE_MESSAGE(!env.empty(), path.string(), " has no KEY=value line: ", kRebuild);
  return env;
}

// A whole small file; REQUIREs that it exists and is not empty.
std::string read_text(const fs::path& path) {
  REQUIRE_MESSAGE(fs::exists(path), "cannot read ", path.string(), ": ", kRebuild);
  std::string text = read_file(path);
  REQUIRE_MESSAGE(!text.empty(), path.string(), " is empty: ", kRebuild);
  return text;
}

// Every sample named in `list_name` (one a line) under samples_dir(); REQUIREs at least one.
std::vector<Sample> load_sample_list(const std::string& list_name) {
  const fs::path list_path = samples_dir() / list_name;
  std::vector<Sample> samples;
  std::ifstream list(list_path);
  std::string name;
  while (std::getline(list, name)) {
    if (name.empty()) continue;
    Sample sample;
    sample.name = name;
    sample.dir = samples_dir() / name;
    sample.env = read_env(sample.dir / "sample.env");
    sample.guest = read_env(sample.dir / "truth/guest.env");
    const fs::path processes = sample.dir / "truth/processes.tsv";
    for (const auto& c : read_tsv(processes, "pid\tppid\tthreads\tuid\tgid\teuid\tegid\tstart_ticks\tcomm", 9)) {
      sample.processes.push_back({number_cell<int>(c[0], processes), number_cell<int>(c[1], processes),
                                  number_cell<int>(c[2], processes), number_cell<unsigned>(c[3], processes),
                                  number_cell<unsigned>(c[4], processes), number_cell<unsigned>(c[5], processes),
                                  number_cell<unsigned>(c[6], processes), number_cell<long long>(c[7], processes),
                                  c[8]});
    }
    const fs::path threads = sample.dir / "truth/threads.tsv";
    for (const auto& c : read_tsv(threads, "tid\ttgid\tcomm", 3))
      sample.threads.push_back({number_cell<int>(c[0], threads), number_cell<int>(c[1], threads), c[2]});
    sample.release = read_text(sample.dir / "truth/release.txt");
    sample.release = sample.release.substr(0, sample.release.find('\n'));
    sample.version = read_text(sample.dir / "truth/version.txt");
    samples.push_back(std::move(sample));
  }
  REQUIRE_MESSAGE(!samples.empty(), "no sample in ", list_path.string(), ": run samples/build-samples.sh");
  return samples;
}

}  // namespace

std::vector<Sample> load_samples() { return load_sample_list("samples.list"); }

std::vector<Sample> load_recovery_samples() { return load_sample_list("recovery-samples.list"); }

std::vector<Sample> load_lime_samples() { return load_sample_list("lime-samples.list"); }

std::vector<Sample> load_rootkit_samples() { return load_sample_list("rootkit-samples.list"); }

std::vector<Sample> load_vmexit_samples() { return load_sample_list("vmexit-samples.list"); }

const std::string& guest_fact(const Sample& sample, const std::string& key) {
  const auto it = sample.guest.find(key);
  REQUIRE_MESSAGE(it != sample.guest.end(), "sample ", sample.name, ": truth/guest.env has no ", key,
                  " (built before the guest recorded it?): ", kRebuild);
  return it->second;
}

std::uint64_t guest_number(const Sample& sample, const std::string& key) {
  const std::string& text = guest_fact(sample, key);
  const bool hexadecimal = text.starts_with("0x");
  const char* begin = text.data() + (hexadecimal ? 2 : 0);
  const char* end = text.data() + text.size();
  std::uint64_t value = 0;
  const auto [stop, ec] = std::from_chars(begin, end, value, hexadecimal ? 16 : 10);
  const bool whole = ec == std::errc() && stop == end && begin != end;
  REQUIRE_MESSAGE(whole, "sample ", sample.name, ": ", key, "='", text, "' in truth/guest.env is not a number");
  return value;
}

std::uint64_t system_map_address(const Sample& sample, std::string_view symbol) {
  const fs::path path = fs::path(sample.env.at("KERNEL_DIR")) / "System.map";
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.is_open(), "cannot read ", path.string(), ": ", kRebuild);
  for (std::string line; std::getline(in, line);) {
    // "ffffffff81000000 T _text"
    const auto first = line.find(' ');
    const auto second = first == std::string::npos ? first : line.find(' ', first + 1);
    if (second == std::string::npos || std::string_view(line).substr(second + 1) != symbol) continue;
    std::uint64_t value = 0;
    const auto [stop, ec] = std::from_chars(line.data(), line.data() + first, value, 16);
    const bool whole = ec == std::errc() && stop == line.data() + first;
    REQUIRE_MESSAGE(whole, path.string(), ": bad line '", line, "'");
    return value;
  }
  FAIL(path.string(), " has no symbol ", std::string(symbol));
  return 0;
}

namespace {

std::int64_t integer(const Row& row, int column) { return std::get<std::int64_t>(row.cells.at(column)); }
const std::string& text(const Row& row, int column) { return std::get<std::string>(row.cells.at(column)); }

template <class T>
std::optional<T> cell_value(const Row& row, int column) {
  if (column < 0 || static_cast<std::size_t>(column) >= row.cells.size()) return std::nullopt;
  if (const T* value = std::get_if<T>(&row.cells[static_cast<std::size_t>(column)])) return *value;
  return std::nullopt;
}

}  // namespace

std::optional<std::int64_t> cell_integer(const Row& row, int column) {
  if (auto value = cell_value<std::int64_t>(row, column)) return value;
  // Unsigned 64-bit fields (a start time) keep their type in the cell.
  if (auto value = cell_value<std::uint64_t>(row, column); value && *value <= INT64_MAX)
    return static_cast<std::int64_t>(*value);
  return std::nullopt;
}
std::optional<std::uint64_t> cell_address(const Row& row, int column) { return cell_value<std::uint64_t>(row, column); }
std::optional<std::string> cell_text(const Row& row, int column) { return cell_value<std::string>(row, column); }

std::vector<std::string> row_differences(const Row& row, const TruthProcess& truth) {
  std::vector<std::string> differences;
  auto compare = [&](const char* column, std::optional<std::int64_t> value, long long expected) {
    if (!value) {
      differences.push_back(std::string(column) + ": empty");
    } else if (*value != expected) {
      differences.push_back(std::string(column) + ": " + std::to_string(*value) + ", truth " +
                            std::to_string(expected));
    }
  };
  compare("PID", cell_integer(row, kPid), truth.pid);
  compare("PPID", cell_integer(row, kPpid), truth.ppid);
  compare("THREADS", cell_integer(row, kThreads), truth.threads);
  compare("UID", cell_integer(row, kUid), truth.uid);
  compare("GID", cell_integer(row, kGid), truth.gid);
  compare("EUID", cell_integer(row, kEuid), truth.euid);
  compare("EGID", cell_integer(row, kEgid), truth.egid);
  // /proc's start_ticks is start_boottime truncated to USER_HZ (100) ticks: nsec_to_clock_t.
  std::optional<std::int64_t> ticks;
  if (const auto start = cell_integer(row, kStart)) ticks = *start / 10'000'000;
  compare("START ticks", ticks, truth.start_ticks);
  const auto name = cell_text(row, kName);
  if (!name) {
    differences.push_back("NAME: empty");
  } else if (without_worker_desc(*name) != truth.comm) {
    differences.push_back("NAME: '" + *name + "', truth '" + truth.comm + "'");
  }
  return differences;
}

std::string joined(const std::vector<std::string>& items) {
  std::string text;
  for (const auto& item : items) text += (text.empty() ? "" : "; ") + item;
  return text;
}

const TruthProcess* truth_process(const Sample& sample, std::int64_t pid) {
  const auto it = std::lower_bound(sample.processes.begin(), sample.processes.end(), pid,
                                   [](const TruthProcess& p, std::int64_t value) { return p.pid < value; });
  return it != sample.processes.end() && it->pid == pid ? &*it : nullptr;
}

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
  // One cache per sample for the whole run, emptied the first time only: later sessions load the
  // profile's binary form instead of parsing the ISF again.
  static std::map<std::string, std::filesystem::path> caches;
  const std::string name = "samples-cache-" + image.parent_path().filename().string();
  auto cache = caches.find(name);
  if (cache == caches.end()) cache = caches.emplace(name, scratch_dir(name)).first;
  options.cache = CacheOptions{true, cache->second};
  auto session = Session::open(image, options);
  REQUIRE_MESSAGE(session.has_value(), test::error_text(session));
  return std::move(*session);
}

std::string without_worker_desc(const std::string& name) {
  static const std::regex worker_with_desc(R"((kworker/u?[0-9]+:[0-9]+H?)[-+].*)");
  std::smatch match;
  if (std::regex_match(name, match, worker_with_desc)) return match[1];
  return name;
}

namespace {

void for_each_image(const std::vector<Sample>& samples, const std::function<void(Session&, const Sample&)>& check) {
  for (const auto& sample : samples) {
    const auto profile = profile_for(sample);
    for (const char* format : {"memory.raw", "memory.elf"}) {
      CAPTURE(sample.name);
      CAPTURE(format);
      Session session = open_sample(sample.dir / format, profile);
      check(session, sample);
      CHECK_MESSAGE(session.diagnostics().warnings().empty(), joined(session.diagnostics().warnings()));
    }
  }
}

}  // namespace

void for_each_sample_image(const std::function<void(Session&, const Sample&)>& check) {
  for_each_image(load_samples(), check);
}

void for_each_rootkit_image(const std::function<void(Session&, const Sample&)>& check) {
  for_each_image(load_rootkit_samples(), check);
}

void for_each_vmexit_image(const std::function<void(Session&, const Sample&)>& check) {
  for_each_image(load_vmexit_samples(), check);
}

void for_each_recovery_image(const std::function<void(Session&, const Sample&)>& check) {
  static const std::filesystem::path no_profiles = scratch_dir("recovery-images-no-profiles");
  for (const auto& sample : load_recovery_samples()) {
    const auto cache = scratch_dir("recovery-images-" + sample.name);
    for (const char* format : {"memory.raw", "memory.elf"}) {
      CAPTURE(sample.name);
      CAPTURE(format);
      SessionOptions options;
      options.profile_paths = {no_profiles};
      options.cache = CacheOptions{true, cache};
      auto session = Session::open(sample.dir / format, options);
      REQUIRE_MESSAGE(session.has_value(), test::error_text(session));
      check(*session, sample);
      CHECK_MESSAGE(session->diagnostics().warnings().empty(), joined(session->diagnostics().warnings()));
    }
  }
}

void check_pslist_equals_proc(Session& session, const Sample& sample) {
  auto table = vmi::run_plugin(session, "pslist");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  std::vector<std::int64_t> pids, truth_pids;
  for (const Row& row : table->rows) {
    const auto pid = cell_integer(row, kPid);
    REQUIRE(pid.has_value());
    INFO("pid ", *pid);
    pids.push_back(*pid);
    CHECK(cell_integer(row, kTid) == pid);
    const TruthProcess* truth = truth_process(sample, *pid);
    CHECK_MESSAGE(truth != nullptr, "not a process of the guest's /proc");
    if (truth != nullptr) {
      const auto differences = row_differences(row, *truth);
      CHECK_MESSAGE(differences.empty(), truth->comm, ": ", joined(differences));
    }
    // COMM is the kernel's 16-byte field; /proc's name starts with it.
    const auto comm = cell_text(row, kComm);
    const auto name = cell_text(row, kName);
    REQUIRE(comm.has_value());
    REQUIRE(name.has_value());
    CHECK(name->starts_with(*comm));
    CHECK(comm->size() <= 15);
  }
  for (const auto& process : sample.processes) truth_pids.push_back(process.pid);
  std::sort(pids.begin(), pids.end());
  CHECK(pids.size() == truth_pids.size());
  CHECK(pids == truth_pids);
}

void check_threads_equal_proc(Session& session, const Sample& sample) {
  PluginArgs args;
  args.values["threads"] = "";
  auto table = vmi::run_plugin(session, "pslist", args);
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  std::vector<std::tuple<int, int, std::string>> seen, truth;
  for (const Row& row : table->rows)
    seen.emplace_back(integer(row, kTid), integer(row, kPid), without_worker_desc(text(row, kName)));
  for (const auto& t : sample.threads) truth.emplace_back(t.tid, t.tgid, t.comm);
  std::sort(seen.begin(), seen.end());
  CHECK(seen == truth);
}

void check_pstree_matches_parents(Session& session, const Sample& sample) {
  auto table = vmi::run_plugin(session, "pstree");
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
