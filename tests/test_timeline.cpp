// timeline and timeline_body against the guest's own view: every process /proc shows, started when
// its start ticks say (boot wall time + start_ticks, to the tick), every open file with the
// access, modification and change times its inode had in the guest (truth/fds.tsv), earliest
// first; the bodyfile carries the same times in whole seconds.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"

using namespace vmi;

namespace {

enum Column : int { kPlugin, kDescription, kCreated, kModified, kAccessed, kChanged };

struct FileTimes {
  std::int64_t accessed = 0, modified = 0, changed = 0;
  bool character_device = false;
};

// (pid, fd) -> the inode times /proc/PID/fd/N's stat gave (truth/fds.tsv: atime_ns, mtime_ns, ctime_ns).
std::map<std::pair<std::int64_t, std::int64_t>, FileTimes> truth_file_times(const test::Sample& sample) {
  std::ifstream in(sample.dir / "truth" / "fds.tsv");
  REQUIRE(in.good());
  std::string line;
  std::getline(in, line);
  std::map<std::pair<std::int64_t, std::int64_t>, FileTimes> times;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::istringstream cells(line);
    for (std::string cell; std::getline(cells, cell, '\t');) fields.push_back(cell);
    REQUIRE(fields.size() >= 13);
    const std::size_t n = fields.size();      // the link may hold a tab: the times are the last three
    constexpr unsigned kFormat = 0170000;     // S_IFMT
    constexpr unsigned kCharacter = 0020000;  // S_IFCHR
    const bool character = fields[n - 5] != "?" && (std::stoul(fields[n - 5], nullptr, 8) & kFormat) == kCharacter;
    times[{std::stoll(fields[0]), std::stoll(fields[1])}] = {std::stoll(fields[n - 3]), std::stoll(fields[n - 2]),
                                                             std::stoll(fields[n - 1]), character};
  }
  return times;
}

std::optional<std::int64_t> earliest(const Row& row) {
  std::optional<std::int64_t> first;
  for (const int column : {kCreated, kModified, kAccessed, kChanged}) {
    const auto time = test::cell_integer(row, column);
    if (time && (!first || *time < *first)) first = time;
  }
  return first;
}

void check_timeline(Session& session, const test::Sample& sample) {
  constexpr std::int64_t kTickNs = 10'000'000;
  const auto boot = static_cast<std::int64_t>(test::guest_number(sample, "BOOT_WALL_NS"));
  const auto error = static_cast<std::int64_t>(test::guest_number(sample, "BOOT_WALL_NS_ERROR"));
  auto table = run_plugin(session, "timeline");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  const std::regex process(R"(^PID (\d+) .* started( \(PPID \d+\))?$)");
  const std::regex file(R"(^PID (\d+) .* fd (\d+) .*$)");
  std::set<std::int64_t> started;
  std::map<std::pair<std::int64_t, std::int64_t>, FileTimes> files;
  std::optional<std::int64_t> previous;
  for (const Row& row : table->rows) {
    const std::string description = test::cell_text(row, kDescription).value_or("");
    CAPTURE(description);
    const auto first = earliest(row);
    REQUIRE(first.has_value());  // every event here has a time
    if (previous) CHECK(*previous <= *first);
    previous = first;
    std::smatch match;
    if (test::cell_text(row, kPlugin) == "pslist") {
      REQUIRE(std::regex_match(description, match, process));
      const std::int64_t pid = std::stoll(match[1]);
      started.insert(pid);
      const test::TruthProcess* truth = test::truth_process(sample, pid);
      REQUIRE(truth != nullptr);
      const std::int64_t created = test::cell_integer(row, kCreated).value();
      CHECK(truth->start_ticks >= (created - boot - error) / kTickNs);
      CHECK(truth->start_ticks <= (created - boot + error) / kTickNs);
    } else {
      REQUIRE(test::cell_text(row, kPlugin) == "lsof");
      REQUIRE(std::regex_match(description, match, file));
      files[{std::stoll(match[1]), std::stoll(match[2])}] = {test::cell_integer(row, kAccessed).value(),
                                                             test::cell_integer(row, kModified).value(),
                                                             test::cell_integer(row, kChanged).value()};
    }
  }
  std::set<std::int64_t> truth_pids;
  for (const test::TruthProcess& p : sample.processes) truth_pids.insert(p.pid);
  CHECK(started == truth_pids);
  const auto truth_files = truth_file_times(sample);
  CHECK(files.size() == truth_files.size());
  for (const auto& entry : truth_files) {
    const auto& key = entry.first;
    const FileTimes& times = entry.second;
    CAPTURE(key.first);
    CAPTURE(key.second);
    REQUIRE(files.contains(key));
    // Console I/O moves a character device's atime and mtime after the truth was read (as
    // comparable_files in samples/qemu_snapshot.py knows); its ctime stays.
    if (!times.character_device) {
      CHECK(files[key].accessed == times.accessed);
      CHECK(files[key].modified == times.modified);
    }
    CHECK(files[key].changed == times.changed);
  }

  // The bodyfile: the same events in the same order, times in whole seconds.
  auto body = run_plugin(session, "timeline_body");
  REQUIRE_MESSAGE(body.has_value(), test::error_text(body));
  REQUIRE(body->rows.size() == table->rows.size());
  for (std::size_t i = 0; i < table->rows.size(); ++i) {
    const std::string line = test::cell_text(body->rows[i], 0).value_or("");
    CAPTURE(line);
    std::vector<std::string> fields;
    std::istringstream cells(line);
    for (std::string cell; std::getline(cells, cell, '|');) fields.push_back(cell);
    REQUIRE(fields.size() == 11);
    const Row& row = table->rows[i];
    CHECK(fields[1] == *test::cell_text(row, kPlugin) + " - " + *test::cell_text(row, kDescription));
    const auto whole = [&](int column) {
      const auto time = test::cell_integer(row, column);
      return std::to_string(time ? *time / 1'000'000'000 : 0);
    };
    CHECK(fields[7] == whole(kAccessed));
    CHECK(fields[8] == whole(kModified));
    CHECK(fields[9] == whole(kChanged));
    CHECK(fields[10] == whole(kCreated));
  }
}

}  // namespace

TEST_CASE("timeline holds every process's start and every open file's times as the guest had them, earliest first") {
  test::for_each_sample_image(check_timeline);
}
