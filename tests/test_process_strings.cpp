// linux.psaux and linux.envars against the bytes of /proc/PID/cmdline and /proc/PID/environ the
// guest recorded, turned into text by Python (decode("utf-8", "backslashreplace")), not by us.
#include <doctest/doctest.h>

#include <map>
#include <random>
#include <set>
#include <sstream>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/image.hpp"
#include "vmi/linux.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"
#include "vmi/text.hpp"

using namespace vmi;

namespace {

std::string from_hex(const std::string& hex) {
  std::string bytes;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return bytes;
}

// Python's reading of truth/args.tsv: "A pid text" per process (its arguments joined as ps
// joins them) and "E pid key value" per environment variable, each text in hex (UTF-8).
struct ExpectedStrings {
  std::map<std::int64_t, std::string> arguments;
  std::map<std::int64_t, std::vector<std::pair<std::string, std::string>>> environment;
};

ExpectedStrings expected_strings(const test::Sample& sample) {
  const auto path = sample.dir / "truth" / "args.tsv";
  auto python = test::run_command({"python3", "-c",
                                   "import csv, sys\n"
                                   "h = lambda s: s.encode('utf-8').hex()\n"
                                   "d = lambda b: b.decode('utf-8', 'backslashreplace')\n"
                                   "for r in csv.DictReader(open(sys.argv[1]), delimiter='\\t'):\n"
                                   "    a = bytes.fromhex(r['cmdline_hex'])\n"
                                   "    a = a[:-1] if a.endswith(b'\\0') else a\n"
                                   "    print('A', r['pid'], h(d(a.replace(b'\\0', b' '))) or '-')\n"
                                   "    for e in bytes.fromhex(r['environ_hex']).split(b'\\0'):\n"
                                   "        if e:\n"
                                   "            k, _, v = e.partition(b'=')\n"
                                   "            print('E', r['pid'], h(d(k)) or '-', h(d(v)) or '-')\n",
                                   path.string()});
  REQUIRE_MESSAGE(python.exit_code == 0, python.err);
  ExpectedStrings expected;
  std::istringstream lines(python.out);
  for (std::string kind, pid, first, second; lines >> kind >> pid >> first;) {
    const auto text = [](const std::string& hex) { return hex == "-" ? std::string() : from_hex(hex); };
    if (kind == "A") {
      expected.arguments[std::stoll(pid)] = text(first);
    } else {
      lines >> second;
      expected.environment[std::stoll(pid)].emplace_back(text(first), text(second));
    }
  }
  REQUIRE(!expected.arguments.empty());
  return expected;
}

void check_psaux_equals_proc(Session& session, const test::Sample& sample) {
  const auto expected = expected_strings(sample);
  auto table = run_plugin(session, "psaux");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  std::set<std::int64_t> listed;
  bool escaped = false;
  for (const Row& row : table->rows) {
    const auto pid = test::cell_integer(row, 0).value();
    CAPTURE(pid);
    listed.insert(pid);
    const auto arguments = test::cell_text(row, 3);
    REQUIRE(arguments.has_value());
    const auto it = expected.arguments.find(pid);
    if (it != expected.arguments.end()) {
      CHECK(*arguments == it->second);
      escaped = escaped || arguments->find("\\xff") != std::string::npos;
      continue;
    }
    // No arguments: a kernel thread, shown as ps shows one, by its /proc name (a worker's
    // "+desc"/"-desc" changes from moment to moment: the truth drops it).
    const test::TruthProcess* truth = test::truth_process(sample, pid);
    REQUIRE(truth != nullptr);
    REQUIRE(arguments->size() >= 2);
    CHECK(arguments->front() == '[');
    CHECK(arguments->back() == ']');
    CHECK(test::without_worker_desc(arguments->substr(1, arguments->size() - 2)) == truth->comm);
  }
  for (const auto& process : sample.processes) CHECK_MESSAGE(listed.contains(process.pid), process.pid);
  CHECK(escaped);  // vmi-wl (c1) x's argument that is not UTF-8
}

void check_envars_equal_proc(Session& session, const test::Sample& sample) {
  const auto expected = expected_strings(sample);
  auto table = run_plugin(session, "envars");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  std::map<std::int64_t, std::vector<std::pair<std::string, std::string>>> listed;
  for (const Row& row : table->rows) {
    listed[test::cell_integer(row, 0).value()].emplace_back(test::cell_text(row, 3).value_or("?"),
                                                            test::cell_text(row, 4).value_or("?"));
  }
  CHECK(listed == expected.environment);
  bool escaped = false;
  for (const auto& [pid, variables] : listed) {
    for (const auto& variable : variables) escaped = escaped || variable.second.find("\\xfe") != std::string::npos;
  }
  CHECK(escaped);  // vmi-wl (c1) x's value that is not UTF-8
}

}  // namespace

TEST_CASE("psaux on every sample, raw and ELF, equals /proc/PID/cmdline as ps joins it; kernel threads in brackets") {
  test::for_each_sample_image(check_psaux_equals_proc);
}

TEST_CASE("envars on every sample equals /proc/PID/environ, variable by variable") {
  test::for_each_sample_image(check_envars_equal_proc);
}

TEST_CASE("psaux and envars on every recovery kernel equal /proc/PID/cmdline and environ") {
  test::for_each_recovery_image([](Session& session, const test::Sample& sample) {
    check_psaux_equals_proc(session, sample);
    check_envars_equal_proc(session, sample);
  });
}

TEST_CASE("a process whose argument page is not in the snapshot shows '-' and a warning naming it, the others theirs") {
  const auto samples = test::load_samples();
  const auto& sample = samples.front();
  const auto expected = expected_strings(sample);
  auto opened = open_image(sample.dir / "memory.raw");
  REQUIRE(opened.has_value());
  std::shared_ptr<const Layer> image(std::move(*opened));
  // Where vmi-wl-b's arguments are, found through the intact image first.
  Addr hole = 0;
  std::int64_t victim = 0;
  {
    Session session = test::open_sample(sample.dir / "memory.raw", test::profile_for(sample));
    const Kernel& kernel = **session.kernel();
    auto tasks = linux_objects::list_tasks(kernel, false, session.diagnostics());
    REQUIRE(tasks.has_value());
    for (const auto& task : *tasks) {
      if (task.comm != "vmi-wl-b") continue;
      const auto layout = linux_objects::memory_layout(kernel, task, session.diagnostics());
      const auto& mm = std::get<linux_objects::MemoryLayout>(layout.value());
      const auto at = linux_objects::address_space(kernel, mm)->translate(mm.arg_start);
      REQUIRE(at.has_value());
      hole = at->physical & ~Addr{0xfff};
      victim = task.tgid;
    }
  }
  REQUIRE(victim != 0);
  SessionOptions options;
  options.profile_paths = {test::profile_for(sample)};
  options.cache = CacheOptions{true, test::scratch_dir("process-strings-hole")};
  Session session =
      Session::over_layer(std::make_shared<test::MaskedLayer>(image, std::vector<Range>{{hole, hole + 0x1000}},
                                                              test::MaskedLayer::Mask::hole),
                          options);
  auto table = run_plugin(session, "psaux");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  std::size_t intact = 0;
  for (const Row& row : table->rows) {
    const auto pid = test::cell_integer(row, 0).value();
    if (pid == victim) {
      CHECK(row.cells.at(3) == Cell{Absence::unreadable});
    } else if (expected.arguments.contains(pid)) {
      // Processes forked from one parent share its argument page until they write to it.
      const auto arguments = test::cell_text(row, 3);
      if (arguments) ++intact;
      if (arguments) CHECK(*arguments == expected.arguments.at(pid));
    }
  }
  CHECK(intact > 0);
  const auto& warnings = session.diagnostics().warnings();
  CHECK(std::ranges::any_of(warnings, [&](const std::string& w) {
    return w.find("(pid " + std::to_string(victim) + "): arguments at ") != std::string::npos &&
           w.find("are not all in the snapshot") != std::string::npos;
  }));
}

TEST_CASE("escaped text equals Python's decode('utf-8', 'backslashreplace') on random and edge-case bytes") {
  std::mt19937 random(20261202);
  std::vector<std::string> inputs = {"plain",
                                     "caf\xc3\xa9",
                                     "\xff\xfe",
                                     "\xe2\x82",
                                     "\xe2\x82\xe2\x82\xac",
                                     "\xed\xa0\x80",  // a surrogate, not allowed in UTF-8
                                     "\xf4\x90\x80\x80",
                                     "\xc0\xaf",
                                     "\xf0\x9f\x98\x80",
                                     std::string(1, '\0')};
  for (int i = 0; i < 2000; ++i) {
    std::string bytes(random() % 12, '\0');
    // Mostly high bytes, so lead and continuation bytes meet often.
    for (char& byte : bytes) byte = static_cast<char>(random() % 4 == 0 ? random() % 0x80 : 0x80 + random() % 0x80);
    inputs.push_back(bytes);
  }
  std::string hex_lines;
  for (const auto& bytes : inputs) {
    for (unsigned char byte : bytes)
      hex_lines += "0123456789abcdef"[byte >> 4], hex_lines += "0123456789abcdef"[byte & 15];
    hex_lines += "\n";
  }
  const auto input = test::scratch_dir("escaped-text") / "inputs.hex";
  test::write_file(input, hex_lines);
  auto python = test::run_command({"python3", "-c",
                                   "import sys\n"
                                   "for line in open(sys.argv[1]):\n"
                                   "    print(bytes.fromhex(line.strip()).decode('utf-8', 'backslashreplace')"
                                   ".encode('utf-8').hex() or '-')\n",
                                   input.string()});
  REQUIRE_MESSAGE(python.exit_code == 0, python.err);
  std::istringstream lines(python.out);
  for (const auto& bytes : inputs) {
    std::string expected;
    REQUIRE(std::getline(lines, expected));
    CAPTURE(escaped_text(bytes));
    CHECK(escaped_text(bytes) == (expected == "-" ? std::string() : from_hex(expected)));
  }
}
