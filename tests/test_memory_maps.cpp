// linux.proc.maps against every process's /proc/PID/maps as the guest recorded it (truth/maps.tsv),
// line for line; --address and --dump against what the workload put in its areas.
#include <doctest/doctest.h>

#include <cstdio>
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

enum MapColumn : int { kPid, kProcess, kStart, kEnd, kFlags, kPgOff, kMajor, kMinor, kInode, kPath, kOutput, kPerms };

// A /proc/PID/maps line split as the kernel prints it: "start-end perms offset dev inode", then
// padding, then the name (which may hold spaces).
using MapsLine = std::vector<std::string>;

MapsLine split_proc_line(const std::string& line) {
  std::istringstream in(line);
  MapsLine fields(5);
  for (auto& field : fields) in >> field;
  std::string name;
  std::getline(in, name);
  name.erase(0, name.find_first_not_of(' '));
  fields.push_back(name);
  return fields;
}

// The truth: pid -> its /proc/PID/maps lines, in order.
std::map<std::int64_t, std::vector<MapsLine>> truth_maps(const test::Sample& sample) {
  const auto path = sample.dir / "truth" / "maps.tsv";
  REQUIRE_MESSAGE(fs::exists(path), "no truth/maps.tsv in ", sample.dir.string(),
                  ": rebuild the samples (VMI_SAMPLES_FORCE=1 bash samples/build-samples.sh)");
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  REQUIRE(line == "pid\tline");
  std::map<std::int64_t, std::vector<MapsLine>> maps;
  while (std::getline(in, line)) {
    const auto tab = line.find('\t');
    REQUIRE(tab != std::string::npos);
    maps[std::stoll(line.substr(0, tab))].push_back(split_proc_line(line.substr(tab + 1)));
  }
  REQUIRE(!maps.empty());
  return maps;
}

// Our row printed as show_map_vma() prints it.
MapsLine proc_line_of(const Row& row) {
  char range[64], offset[32], device[32];
  std::snprintf(range, sizeof range, "%08llx-%08llx",
                static_cast<unsigned long long>(test::cell_address(row, kStart).value()),
                static_cast<unsigned long long>(test::cell_address(row, kEnd).value()));
  std::snprintf(offset, sizeof offset, "%08llx",
                static_cast<unsigned long long>(test::cell_address(row, kPgOff).value_or(~0ull)));
  std::snprintf(device, sizeof device, "%02llx:%02llx",
                static_cast<unsigned long long>(test::cell_integer(row, kMajor).value_or(-1)),
                static_cast<unsigned long long>(test::cell_integer(row, kMinor).value_or(-1)));
  return {range,
          test::cell_text(row, kPerms).value(),
          offset,
          device,
          std::to_string(test::cell_integer(row, kInode).value_or(-1)),
          test::cell_text(row, kPath).value_or("<unreadable>")};
}

std::string text_of(const MapsLine& line) {
  std::string text;
  for (const auto& field : line) text += field + " ";
  return text;
}

void check_maps_equal_proc(Session& session, const test::Sample& sample) {
  const auto expected = truth_maps(sample);
  auto table = run_plugin(session, "maps");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  std::map<std::int64_t, std::vector<MapsLine>> listed;
  for (const Row& row : table->rows) {
    listed[test::cell_integer(row, kPid).value()].push_back(proc_line_of(row));
    CHECK(test::cell_text(row, kFlags).value() == test::cell_text(row, kPerms).value().substr(0, 3));
  }
  for (const auto& [pid, lines] : expected) {
    CAPTURE(pid);
    const auto it = listed.find(pid);
    REQUIRE_MESSAGE(it != listed.end(), "no areas listed for pid ", pid);
    CHECK(it->second.size() == lines.size());
    for (std::size_t i = 0; i < std::min(lines.size(), it->second.size()); ++i) {
      CHECK_MESSAGE(it->second[i] == lines[i], "line ", i, ": ", text_of(it->second[i]), " truth ", text_of(lines[i]));
    }
  }
  // Kernel threads have no areas; every process with memory is in the truth.
  for (const auto& [pid, lines] : listed) CHECK_MESSAGE(expected.contains(pid), "pid ", pid, " not in the truth");
}

// The one area of `pid` in the truth with these permissions (and this name, unless empty).
const MapsLine& truth_area(const std::map<std::int64_t, std::vector<MapsLine>>& maps, std::int64_t pid,
                           const std::string& perms, const std::string& name = {}) {
  const auto it = maps.find(pid);
  REQUIRE(it != maps.end());
  const MapsLine* found = nullptr;
  for (const auto& line : it->second) {
    if (line[1] != perms || (!name.empty() && line[5] != name)) continue;
    REQUIRE_MESSAGE(found == nullptr, "pid ", pid, " has two areas ", perms, " ", name);
    found = &line;
  }
  REQUIRE_MESSAGE(found != nullptr, "pid ", pid, " has no area ", perms, " ", name, " in the truth");
  return *found;
}

std::int64_t pid_of(const test::Sample& sample, const std::string& comm) {
  for (const auto& p : sample.processes) {
    if (p.comm == comm) return p.pid;
  }
  FAIL("no process ", comm, " in the truth");
  return -1;  // not reached: FAIL throws
}

}  // namespace

TEST_CASE("maps on every sample, raw and ELF, equals every process's /proc/PID/maps line for line") {
  test::for_each_sample_image(check_maps_equal_proc);
}

TEST_CASE("maps on every recovery sample (4.19-free 6.1 flavours and 6.12) equals /proc/PID/maps") {
  test::for_each_recovery_image(check_maps_equal_proc);
}

TEST_CASE("maps --address keeps the one area holding the address; --dump writes what the workload put there") {
  test::for_each_sample_image([](Session& session, const test::Sample& sample) {
    const auto maps = truth_maps(sample);
    const auto c1 = pid_of(sample, "vmi-wl (c1) x");
    const auto b = pid_of(sample, "vmi-wl-b");
    // c1's rwx page: 64 nops and a ret; b's shared page of /run/vmi/mapped.bin: 4096 'm'.
    const auto& rwx = truth_area(maps, c1, "rwxp");
    const auto& shared = truth_area(maps, b, "rw-s", "/run/vmi/mapped.bin");
    const auto out = test::scratch_dir("maps-dump-" + sample.name);
    for (const auto& [pid, area, content] :
         {std::tuple{c1, rwx, std::string(64, '\x90') + '\xc3'}, std::tuple{b, shared, std::string(4096, 'm')}}) {
      const std::string start = "0x" + area[0].substr(0, area[0].find('-'));
      PluginArgs args;
      args.values = {{"pid", std::to_string(pid)}, {"address", start}, {"dump", out.string()}};
      auto table = run_plugin(session, "maps", args);
      REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
      REQUIRE(table->rows.size() == 1);
      CHECK(proc_line_of(table->rows[0]) == area);
      const auto file = test::cell_text(table->rows[0], kOutput);
      REQUIRE(file.has_value());
      const std::string bytes = test::read_file(out / *file);
      const auto size = std::stoull(area[0].substr(area[0].find('-') + 1), nullptr, 16) -
                        std::stoull(area[0].substr(0, area[0].find('-')), nullptr, 16);
      CHECK(bytes.size() == size);
      CHECK(bytes.substr(0, content.size()) == content);
    }
  });
}
