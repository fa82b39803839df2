// linux.elfs: the ELF images in each process's memory, against the guest's /proc/PID/maps, and
// --dump against the workload's own executable (the file the sample script built and put in the
// guest's initramfs): every resident page of its read-only segments rebuilt byte for byte.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"

using namespace vmi;
namespace fs = std::filesystem;

namespace {

enum ElfColumn : int { kPid, kProcess, kStart, kEnd, kPath, kOutput, kType, kParses, kMissing };

std::int64_t pid_of(const test::Sample& sample, const std::string& comm) {
  for (const auto& p : sample.processes) {
    if (p.comm == comm) return p.pid;
  }
  FAIL("no process ", comm, " in the truth");
  return -1;  // not reached: FAIL throws
}

// The start of every area of `pid` in truth/maps.tsv, with its name.
std::map<std::uint64_t, std::string> truth_area_starts(const test::Sample& sample, std::int64_t pid) {
  std::ifstream in(sample.dir / "truth" / "maps.tsv");
  REQUIRE(in.good());
  std::map<std::uint64_t, std::string> starts;
  const std::string prefix = std::to_string(pid) + "\t";
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with(prefix)) continue;
    std::istringstream fields(line.substr(prefix.size()));
    std::string range, perms, offset, device, inode, name;
    fields >> range >> perms >> offset >> device >> inode;
    std::getline(fields, name);
    name.erase(0, name.find_first_not_of(' '));
    starts[std::stoull(range.substr(0, range.find('-')), nullptr, 16)] = name;
  }
  REQUIRE(!starts.empty());
  return starts;
}

struct LoadSegment {
  std::uint64_t offset, file_size;
  bool writable;
};

// The PT_LOAD segments of an ELF64 file, read here from its program headers.
std::vector<LoadSegment> load_segments(const std::string& file) {
  REQUIRE(file.size() >= 64);
  std::uint64_t phoff = 0;
  std::uint16_t phentsize = 0, phnum = 0;
  std::memcpy(&phoff, file.data() + 32, 8);
  std::memcpy(&phentsize, file.data() + 54, 2);
  std::memcpy(&phnum, file.data() + 56, 2);
  std::vector<LoadSegment> loads;
  for (std::uint16_t i = 0; i < phnum; ++i) {
    const char* entry = file.data() + phoff + std::size_t{i} * phentsize;
    std::uint32_t type = 0, flags = 0;
    std::uint64_t offset = 0, file_size = 0;
    std::memcpy(&type, entry, 4);
    std::memcpy(&flags, entry + 4, 4);
    std::memcpy(&offset, entry + 8, 8);
    std::memcpy(&file_size, entry + 32, 8);
    if (type == 1) loads.push_back({offset, file_size, (flags & 2) != 0});
  }
  REQUIRE(!loads.empty());
  return loads;
}

void check_workload_image_rebuilt(Session& session, const test::Sample& sample) {
  const auto collector = pid_of(sample, "vmi-wl-root");  // the collector: it ran the most of its code
  const auto areas = truth_area_starts(sample, collector);
  const auto out = test::scratch_dir("elfs-" + sample.name);
  PluginArgs args;
  args.values = {{"pid", std::to_string(collector)}, {"dump", out.string()}};
  auto table = run_plugin(session, "elfs", args);
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  // The executable's first area and the vDSO are ELF images; every row is an area /proc shows.
  std::map<std::string, const Row*> by_path;
  for (const Row& row : table->rows) {
    const auto start = test::cell_address(row, kStart).value();
    REQUIRE_MESSAGE(areas.contains(start), "no area at ", start, " in /proc/PID/maps");
    CHECK(test::cell_text(row, kPath) == areas.at(start));
    if (std::holds_alternative<Absence>(row.cells[kType])) {
      // A file area whose first page the snapshot lacks: unknown, and said to be.
      CHECK(row.cells[kParses] == Cell(Absence::unreadable));
      continue;
    }
    by_path[areas.at(start)] = &row;
  }
  REQUIRE(by_path.contains("/bin/vmi-workload"));
  REQUIRE(by_path.contains("[vdso]"));
  const Row& executable = *by_path.at("/bin/vmi-workload");
  CHECK(test::cell_text(executable, kType) == "EXEC");
  CHECK(test::cell_text(*by_path.at("[vdso]"), kType) == "DYN");
  for (const auto& [path, row] : by_path) {
    CAPTURE(path);
    REQUIRE(std::holds_alternative<bool>(row->cells[kParses]));
    CHECK(std::get<bool>(row->cells[kParses]));  // LIEF reads the rebuilt file back
  }
  // The rebuilt executable against the file the guest ran.
  const std::string original =
      test::read_file(test::samples_dir() / "initramfs" / sample.env.at("INITRAMFS_KEY") / "vmi-workload");
  const std::string rebuilt = test::read_file(out / test::cell_text(executable, kOutput).value());
  const auto missing = static_cast<std::size_t>(test::cell_integer(executable, kMissing).value());
  std::size_t equal_pages = 0, zero_pages = 0;
  for (const LoadSegment& segment : load_segments(original)) {
    if (segment.writable) continue;  // relocated and written at run time
    REQUIRE(rebuilt.size() >= segment.offset + segment.file_size);
    for (std::uint64_t at = segment.offset; at < segment.offset + segment.file_size;) {
      const std::uint64_t n = std::min<std::uint64_t>(4096 - at % 4096, segment.offset + segment.file_size - at);
      const std::string got = rebuilt.substr(at, n), want = original.substr(at, n);
      if (got == want) {
        ++equal_pages;
      } else {
        CHECK_MESSAGE(got == std::string(n, '\0'), "page at file offset ", at, " differs from the guest's file");
        ++zero_pages;
      }
      at += n;
    }
  }
  CHECK(equal_pages > 0);
  CHECK(zero_pages <= missing);
  MESSAGE(sample.name, ": ", equal_pages, " read-only pages equal the guest's file, ", missing, " pages missing");
}

}  // namespace

TEST_CASE(
    "elfs on every sample, raw and ELF, finds the workload's executable and vDSO; --dump rebuilds the executable") {
  test::for_each_sample_image(check_workload_image_rebuilt);
}
