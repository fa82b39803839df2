// linux.lsof (`handles`) against every readlink(/proc/PID/fd/N), fdinfo and stat the guest made.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "samples.hpp"
#include "support.hpp"

using namespace vmi;
namespace fs = std::filesystem;

namespace {

enum HandleColumn : int {
  kPid,
  kTid,
  kProcess,
  kFd,
  kPath,
  kDevice,
  kInode,
  kType,
  kMode,
  kChanged,
  kModified,
  kAccessed,
  kSize,
  kFlags,
  kPosition
};

// One line of truth/fds.tsv, with `ls -l`'s mode text made by Python's stat.filemode.
struct TruthDescriptor {
  std::map<std::string, std::string> fields;
  std::string mode_text;
};

std::map<std::pair<int, int>, TruthDescriptor> truth_descriptors(const test::Sample& sample) {
  const auto path = sample.dir / "truth" / "fds.tsv";
  REQUIRE_MESSAGE(fs::exists(path), "no truth/fds.tsv in ", sample.dir.string(),
                  ": rebuild the samples (TRUTH_VERSION 3)");
  // The mode text comes from Python's stat module, not from our own formatter.
  auto modes = test::run_command({"python3", "-c",
                                  "import csv, stat, sys\n"
                                  "for r in csv.DictReader(open(sys.argv[1]), delimiter='\\t'):\n"
                                  "    print(stat.filemode(int(r['mode'], 8)))\n",
                                  path.string()});
  REQUIRE_MESSAGE(modes.exit_code == 0, modes.err);
  std::istringstream mode_lines(modes.out);
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  std::vector<std::string> header;
  for (std::istringstream names(line); std::getline(names, line, '\t');) header.push_back(line);
  REQUIRE(header.size() == 13);
  std::map<std::pair<int, int>, TruthDescriptor> descriptors;
  while (std::getline(in, line)) {
    TruthDescriptor d;
    std::istringstream values(line);
    for (const auto& name : header) {
      std::string value;
      std::getline(values, value, '\t');
      d.fields[name] = value;
    }
    std::getline(mode_lines, d.mode_text);
    descriptors[{std::stoi(d.fields["pid"]), std::stoi(d.fields["fd"])}] = d;
  }
  return descriptors;
}

std::string type_of(const std::string& octal_mode) {
  switch (std::stoul(octal_mode, nullptr, 8) & 0170000) {
    case 0140000:
      return "SOCK";
    case 0120000:
      return "LNK";
    case 0100000:
      return "REG";
    case 060000:
      return "BLK";
    case 040000:
      return "DIR";
    case 020000:
      return "CHR";
    case 010000:
      return "FIFO";
    default:
      return "N/A";
  }
}

std::string cell_string(const Row& row, int column) {
  const Cell& cell = row.cells.at(static_cast<std::size_t>(column));
  if (const auto* absence = std::get_if<Absence>(&cell)) return *absence == Absence::unreadable ? "-" : "N/A";
  if (const auto* text = std::get_if<std::string>(&cell)) return *text;
  if (const auto* number = std::get_if<std::int64_t>(&cell)) return std::to_string(*number);
  if (const auto* number = std::get_if<std::uint64_t>(&cell)) return std::to_string(*number);
  return "?";
}

// `handles` lists exactly the descriptors the guest listed, each cell equal to what the guest
// read, stat'ed or formatted.
void check_handles_equal_proc(Session& session, const test::Sample& sample) {
  const auto truth = truth_descriptors(sample);
  auto table = vmi::run_plugin(session, "handles");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  std::set<std::pair<int, int>> listed;
  std::set<std::string> kinds;
  for (const Row& row : table->rows) {
    const int pid = static_cast<int>(test::cell_integer(row, kPid).value());
    const int fd = static_cast<int>(test::cell_integer(row, kFd).value());
    CAPTURE(pid);
    CAPTURE(fd);
    CHECK(listed.insert({pid, fd}).second);  // no descriptor twice: threads share their table
    CHECK(test::cell_integer(row, kTid) == pid);
    const auto it = truth.find({pid, fd});
    if (it == truth.end()) {
      FAIL_CHECK("not in the guest's /proc: ", cell_string(row, kPath));
      continue;
    }
    const auto& f = it->second.fields;
    CHECK(cell_string(row, kPath) == f.at("link"));
    CHECK(cell_string(row, kInode) == f.at("ino"));
    CHECK(cell_string(row, kDevice) == f.at("dev"));
    CHECK(cell_string(row, kMode) == it->second.mode_text);
    CHECK(cell_string(row, kType) == type_of(f.at("mode")));
    CHECK(cell_string(row, kSize) == f.at("size"));
    CHECK(cell_string(row, kFlags) == f.at("flags"));
    CHECK(cell_string(row, kPosition) == f.at("pos"));
    // A terminal's times move with console output between the guest's collection and the
    // snapshot (samples/README.md); every other file's are still.
    if (type_of(f.at("mode")) != "CHR") {
      CHECK(cell_string(row, kAccessed) == f.at("atime_ns"));
      CHECK(cell_string(row, kModified) == f.at("mtime_ns"));
      CHECK(cell_string(row, kChanged) == f.at("ctime_ns"));
    }
    const std::string& link = f.at("link");
    kinds.insert(link.substr(0, link.find_first_of(":[")));
    if (link.ends_with(" (deleted)")) kinds.insert("deleted");
  }
  for (const auto& [key, descriptor] : truth) {
    CAPTURE(key.first);
    CAPTURE(key.second);
    CHECK_MESSAGE(listed.contains(key), "missing: ", descriptor.fields.at("link"));
  }
  // What the workload opens is all there: files on disk, on a tmpfs and deleted, a pipe, sockets
  // and each kind of anonymous inode.
  for (const char* kind : {"pipe", "socket", "anon_inode", "deleted"}) CHECK_MESSAGE(kinds.contains(kind), kind);
}

}  // namespace

TEST_CASE("handles on every sample, raw and ELF, equals every readlink of /proc/PID/fd/N the guest made") {
  test::for_each_sample_image(check_handles_equal_proc);
}

TEST_CASE("handles on every recovery kernel, with the profile recovered from the snapshot, equals /proc/PID/fd") {
  test::for_each_recovery_image(check_handles_equal_proc);
}

TEST_CASE("handles --pid lists one process; --threads repeats a shared table for each thread") {
  const auto samples = test::load_samples();
  const auto& sample = samples.front();
  auto session = test::open_sample(sample.dir / "memory.raw", test::profile_for(sample));
  const auto truth = truth_descriptors(sample);
  // vmi-wl-b: five threads sharing one table of the files the workload opened.
  const test::TruthProcess* b = nullptr;
  for (const auto& p : sample.processes) {
    if (p.comm == "vmi-wl-b") b = &p;
  }
  REQUIRE(b != nullptr);
  std::size_t truth_fds = 0;
  for (const auto& [key, descriptor] : truth) truth_fds += key.first == b->pid ? 1 : 0;
  REQUIRE(truth_fds > 0);

  PluginArgs args;
  args.values["pid"] = std::to_string(b->pid);
  auto one = vmi::run_plugin(session, "handles", args);
  REQUIRE(one.has_value());
  CHECK(one->rows.size() == truth_fds);
  args.values["threads"] = "";
  auto threads = vmi::run_plugin(session, "linux.lsof.Lsof", args);
  REQUIRE(threads.has_value());
  CHECK(threads->rows.size() == truth_fds * static_cast<std::size_t>(b->threads));
  std::set<std::int64_t> tids;
  for (const Row& row : threads->rows) tids.insert(test::cell_integer(row, kTid).value());
  CHECK(tids.size() == static_cast<std::size_t>(b->threads));
}
