// linux.mountinfo against /proc/PID/mountinfo of one process of each mount namespace, as the guest
// recorded them (truth/mountinfo.tsv, truth/mount_ns.tsv): line for line, namespace by namespace.
#include <doctest/doctest.h>

#include <fstream>
#include <map>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"

using namespace vmi;

namespace {

enum MountColumn : int {
  kNamespace,
  kId,
  kParent,
  kDevice,
  kRoot,
  kMountPoint,
  kOptions,
  kFields,
  kFsType,
  kSource,
  kSuperOptions,
  kPid
};

// Tab-separated rows of a truth file under its expected header.
std::vector<std::pair<std::string, std::string>> truth_pairs(const test::Sample& sample, const std::string& file,
                                                             const std::string& header) {
  std::ifstream in(sample.dir / "truth" / file);
  REQUIRE_MESSAGE(in.good(), "no truth/", file, " in ", sample.dir.string(),
                  ": rebuild the samples (VMI_SAMPLES_FORCE=1 bash samples/build-samples.sh)");
  std::string line;
  std::getline(in, line);
  REQUIRE(line == header);
  std::vector<std::pair<std::string, std::string>> rows;
  while (std::getline(in, line)) {
    const auto tab = line.find('\t');
    REQUIRE(tab != std::string::npos);
    rows.emplace_back(line.substr(0, tab), line.substr(tab + 1));
  }
  REQUIRE(!rows.empty());
  return rows;
}

// Our row as show_mountinfo() prints it.
std::string mountinfo_line(const Row& row) {
  auto text = [&](int column) { return test::cell_text(row, column).value_or("<unreadable>"); };
  auto number = [&](int column) {
    const auto value = test::cell_integer(row, column);
    return value ? std::to_string(*value) : std::string("<unreadable>");
  };
  const std::string fields = text(kFields);
  return number(kId) + " " + number(kParent) + " " + text(kDevice) + " " + text(kRoot) + " " + text(kMountPoint) + " " +
         text(kOptions) + (fields.empty() ? "" : " " + fields) + " - " + text(kFsType) + " " + text(kSource) + " " +
         text(kSuperOptions);
}

void check_mountinfo_equals_proc(Session& session, const test::Sample& sample) {
  std::map<std::string, std::vector<std::string>> expected;  // namespace -> lines
  for (const auto& [ns, line] : truth_pairs(sample, "mountinfo.tsv", "ns\tline")) expected[ns].push_back(line);
  std::map<std::string, std::string> namespace_of;  // pid -> namespace
  for (const auto& [pid, ns] : truth_pairs(sample, "mount_ns.tsv", "pid\tns")) namespace_of[pid] = ns;
  auto table = run_plugin(session, "mountinfo");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  std::map<std::string, std::vector<std::string>> listed;
  for (const Row& row : table->rows) {
    const std::string ns = std::to_string(test::cell_integer(row, kNamespace).value());
    listed[ns].push_back(mountinfo_line(row));
    // The paths are those the namespace's own process sees.
    CHECK(namespace_of[std::to_string(test::cell_integer(row, kPid).value())] == ns);
  }
  CHECK(listed.size() == expected.size());
  for (const auto& [ns, lines] : expected) {
    CAPTURE(ns);
    REQUIRE(listed.contains(ns));
    CHECK(listed.at(ns) == lines);
  }
  // The workload's own: a tmpfs, its bind mount, and c1's private tmpfs in a namespace of its own.
  std::size_t bind_mounts = 0, private_mounts = 0;
  for (const auto& [ns, lines] : listed) {
    for (const auto& line : lines) {
      bind_mounts += line.find(" /mnt/vmi-bind ") != std::string::npos;
      private_mounts += line.find(" /mnt/vmi-private ") != std::string::npos;
    }
  }
  CHECK(bind_mounts == 2);  // in the initial namespace and in c1's copy of it
  CHECK(private_mounts == 1);
}

}  // namespace

TEST_CASE("mountinfo on every sample, raw and ELF, equals each mount namespace's /proc/PID/mountinfo line for line") {
  test::for_each_sample_image(check_mountinfo_equals_proc);
}

TEST_CASE("mountinfo on every recovery sample (6.12: mounts in a tree) equals /proc/PID/mountinfo") {
  test::for_each_recovery_image(check_mountinfo_equals_proc);
}
