// linux.lsmod (`modules`) against the guest's own /proc/modules and /sys/module/*/parameters.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "samples.hpp"
#include "support.hpp"

using namespace vmi;

namespace {

enum ModuleColumn : int {
  kOffset,
  kName,
  kCodeSize,
  kTaints,
  kArguments,
  kFileOutput,
  kSize,
  kBase,
  kState,
  kRefcount,
  kUsedBy
};

// A /proc/modules line as the kernel printed it: "brd 20480 0 - Live 0xffffffffc052e000 (E)".
struct ProcModule {
  std::string name, size, refcount, used_by, state, address, taints;
};

std::vector<ProcModule> proc_modules(const test::Sample& sample) {
  std::ifstream in(sample.dir / "truth" / "modules.txt");
  REQUIRE_MESSAGE(in, "no truth/modules.txt in ", sample.dir.string(), ": rebuild the samples (TRUTH_VERSION 3)");
  std::vector<ProcModule> modules;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    ProcModule module;
    fields >> module.name >> module.size >> module.refcount >> module.used_by >> module.state >> module.address;
    REQUIRE_MESSAGE(!fields.fail(), "bad /proc/modules line: ", line);
    fields >> module.taints;  // "(OE)", absent when the module has no taints
    if (!module.taints.empty()) module.taints = module.taints.substr(1, module.taints.size() - 2);
    modules.push_back(module);
  }
  return modules;
}

// Each module's "param=value" items from truth/module_params.tsv (/sys/module/NAME/parameters).
std::map<std::string, std::set<std::string>> sysfs_parameters(const test::Sample& sample) {
  std::ifstream in(sample.dir / "truth" / "module_params.tsv");
  REQUIRE(in);
  std::map<std::string, std::set<std::string>> parameters;
  std::string line;
  std::getline(in, line);
  REQUIRE(line == "module\tparam\tvalue");
  while (std::getline(in, line)) {
    const auto first = line.find('\t'), second = line.find('\t', first + 1);
    REQUIRE(second != std::string::npos);
    parameters[line.substr(0, first)].insert(line.substr(first + 1, second - first - 1) + "=" +
                                             line.substr(second + 1));
  }
  return parameters;
}

std::set<std::string> split_arguments(const std::string& text) {
  std::set<std::string> items;
  for (std::size_t at = 0; at < text.size();) {
    const auto end = std::min(text.find(", ", at), text.size());
    items.insert(text.substr(at, end - at));
    at = end + 2;
  }
  return items;
}

std::string hex_text(std::optional<std::uint64_t> value) { return value ? fmt::format("{:#018x}", *value) : "-"; }

// `modules` equals /proc/modules line for line (list order is /proc's), and Load Arguments
// equal the values sysfs shows.
void check_modules_equal_proc(Session& session, const test::Sample& sample) {
  const auto truth = proc_modules(sample);
  const auto parameters = sysfs_parameters(sample);
  auto table = vmi::run_plugin(session, "modules");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  REQUIRE(table->rows.size() == truth.size());
  std::set<std::string> names;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    const Row& row = table->rows[i];
    const ProcModule& expected = truth[i];
    CAPTURE(expected.name);
    names.insert(expected.name);
    CHECK(test::cell_text(row, kName) == expected.name);
    CHECK(std::to_string(test::cell_integer(row, kSize).value_or(-1)) == expected.size);
    CHECK(std::to_string(test::cell_integer(row, kRefcount).value_or(-1)) == expected.refcount);
    // /proc/modules: "a,b," or "-"; the column: "a,b" or empty.
    const std::string used_by = expected.used_by == "-" ? "" : expected.used_by.substr(0, expected.used_by.size() - 1);
    CHECK(test::cell_text(row, kUsedBy) == used_by);
    CHECK(test::cell_text(row, kState) == expected.state);
    CHECK(hex_text(test::cell_address(row, kBase)) == expected.address);
    CHECK(test::cell_text(row, kTaints) == expected.taints);
    const auto code_size = test::cell_address(row, kCodeSize);
    REQUIRE(code_size.has_value());
    CHECK(*code_size > 0);
    CHECK(*code_size <= std::stoull(expected.size));
    CHECK(test::cell_address(row, kOffset).value_or(0) >= 0xffff800000000000);
    const auto arguments = test::cell_text(row, kArguments);
    REQUIRE(arguments.has_value());
    const auto it = parameters.find(expected.name);
    CHECK(split_arguments(*arguments) == (it == parameters.end() ? std::set<std::string>{} : it->second));
    CHECK(row.cells[kFileOutput] == Cell(Absence::not_applicable));  // nothing dumped
  }
  // The workload loads brd with parameters and cpuid without.
  CHECK(names.contains("brd"));
  CHECK(names.contains("cpuid"));
  CHECK(parameters.at("brd") == std::set<std::string>{"max_part=1", "rd_nr=2", "rd_size=4096"});
}

// On a clean guest the three routes agree: hidden_modules shows nothing, and modxview shows each
// module of /proc/modules in procfs, sysfs and the scan, none suspicious.
void check_module_views_agree(Session& session, const test::Sample& sample) {
  const auto truth = proc_modules(sample);
  auto hidden = vmi::run_plugin(session, "hidden_modules");
  REQUIRE_MESSAGE(hidden.has_value(), test::error_text(hidden));
  CHECK(hidden->rows.empty());
  auto views = vmi::run_plugin(session, "modxview");
  REQUIRE_MESSAGE(views.has_value(), test::error_text(views));
  std::set<std::string> names;
  for (const Row& row : views->rows) {
    const std::string name = test::cell_text(row, 0).value_or("-");
    CAPTURE(name);
    names.insert(name);
    for (int view = 2; view <= 4; ++view) CHECK(row.cells[view] == Cell(true));
    CHECK(row.cells[6] == Cell(false));
  }
  std::set<std::string> expected;
  for (const ProcModule& module : truth) expected.insert(module.name);
  CHECK(names == expected);
}

}  // namespace

TEST_CASE("hidden_modules and modxview on every clean sample, raw and ELF: the list, sysfs and the scan agree") {
  test::for_each_sample_image(check_module_views_agree);
}

TEST_CASE("hidden_modules and modxview on every recovery kernel: the list, sysfs and the scan agree") {
  test::for_each_recovery_image(check_module_views_agree);
}

TEST_CASE("modules on every sample, raw and ELF, equals the guest's /proc/modules and module parameters") {
  test::for_each_sample_image(check_modules_equal_proc);
}

TEST_CASE("modules on every recovery kernel, with the profile recovered from the snapshot, equals /proc/modules") {
  test::for_each_recovery_image(check_modules_equal_proc);
}

TEST_CASE("modules, linux.lsmod and linux.lsmod.Lsmod are one plugin") {
  const auto samples = test::load_samples();
  auto session = test::open_sample(samples.front().dir / "memory.raw", test::profile_for(samples.front()));
  auto by_short = vmi::run_plugin(session, "modules");
  REQUIRE(by_short.has_value());
  for (const char* name : {"linux.lsmod", "linux.lsmod.Lsmod"}) {
    auto named = vmi::run_plugin(session, name);
    REQUIRE(named.has_value());
    REQUIRE(named->rows.size() == by_short->rows.size());
    for (std::size_t i = 0; i < named->rows.size(); ++i) CHECK(named->rows[i].cells == by_short->rows[i].cells);
  }
}
