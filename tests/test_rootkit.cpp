// The rootkit sample: the pinned kernel with samples/rootkit/vmi_rootkit.c loaded, which unlinked
// one workload process from the task list, took itself off the module list and out of sysfs, and
// replaced sys_call_table[__NR_kill] and tcp4_seq_ops.show, and registered a keyboard notifier,
// logging each step with its addresses (truth/kmsg.txt). The cross-views find exactly what it did:
// pslist loses the process and psscan keeps it, lsmod loses the module and hidden_modules finds
// it, check_syscall, check_afinfo and keyboard_notifiers accuse exactly what it replaced or added.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/kernel.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"

using namespace vmi;

namespace {

// What the rootkit logged, read from its own printk lines in the guest's kernel log.
struct RootkitRecord {
  std::int64_t hidden_pid = -1;
  Addr hidden_task = 0;
  Addr syscall_table = 0;
  std::int64_t slot = -1;
  Addr hook = 0;
  Addr original = 0;
  Addr tcp4_seq_ops = 0;
  Addr tcp4_show_hook = 0;
  Addr notifier_block = 0;
  Addr notifier_call = 0;
  Addr module = 0;
};

RootkitRecord read_rootkit_record(const test::Sample& sample) {
  std::ifstream in(sample.dir / "truth" / "kmsg.txt");
  REQUIRE(in.good());
  static const std::regex hid(R"(vmi_rootkit: hid pid (\d+) task ([0-9a-f]+)$)");
  static const std::regex table(
      R"(vmi_rootkit: sys_call_table ([0-9a-f]+) slot (\d+) now ([0-9a-f]+) \(was ([0-9a-f]+)\)$)");
  static const std::regex show(R"(vmi_rootkit: tcp4_seq_ops ([0-9a-f]+) show now ([0-9a-f]+) \(was [0-9a-f]+\)$)");
  static const std::regex notifier(R"(vmi_rootkit: keyboard notifier ([0-9a-f]+) calls ([0-9a-f]+)$)");
  static const std::regex module(R"(vmi_rootkit: module ([0-9a-f]+) hides itself$)");
  const auto hex = [](const std::ssub_match& text) { return std::stoull(text.str(), nullptr, 16); };
  RootkitRecord record;
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, hid)) {
      record.hidden_pid = std::stoll(m[1].str());
      record.hidden_task = hex(m[2]);
    } else if (std::regex_search(line, m, table)) {
      record.syscall_table = hex(m[1]);
      record.slot = std::stoll(m[2].str());
      record.hook = hex(m[3]);
      record.original = hex(m[4]);
    } else if (std::regex_search(line, m, show)) {
      record.tcp4_seq_ops = hex(m[1]);
      record.tcp4_show_hook = hex(m[2]);
    } else if (std::regex_search(line, m, notifier)) {
      record.notifier_block = hex(m[1]);
      record.notifier_call = hex(m[2]);
    } else if (std::regex_search(line, m, module)) {
      record.module = hex(m[1]);
    }
  }
  REQUIRE_MESSAGE(record.hidden_task != 0, "the rootkit's log lines are not in truth/kmsg.txt");
  REQUIRE(record.syscall_table != 0);
  REQUIRE(record.tcp4_show_hook != 0);
  REQUIRE(record.notifier_call != 0);
  REQUIRE(record.module != 0);
  REQUIRE(record.hidden_pid == static_cast<std::int64_t>(test::guest_number(sample, "ROOTKIT_HIDDEN_PID")));
  return record;
}

// Each sample's record, read once: every image of the sample (raw, ELF) checks against it.
const RootkitRecord& rootkit_record(const test::Sample& sample) {
  static std::map<std::filesystem::path, RootkitRecord> records;
  auto found = records.find(sample.dir);
  if (found == records.end()) found = records.emplace(sample.dir, read_rootkit_record(sample)).first;
  return found->second;
}

Table run(Session& session, std::string_view plugin) {
  auto table = run_plugin(session, plugin);
  REQUIRE_MESSAGE(table.has_value(), plugin, ": ", test::error_text(table));
  return std::move(*table);
}

// The rows a check accuses: those whose `column` is true.
std::vector<Row> accused_rows(const Table& table, int column) {
  std::vector<Row> accused;
  std::ranges::copy_if(table.rows, std::back_inserter(accused),
                       [&](const Row& row) { return row.cells[column] == Cell(true); });
  return accused;
}

enum ScanColumn : int { kScanOffset, kScanPid, kScanTid, kScanPpid, kScanComm, kScanExit, kInTaskList, kInPidTable };

void check_hidden_process(Session& session, const test::Sample& sample) {
  const RootkitRecord& record = rootkit_record(sample);
  // pslist walks the task list: every process /proc shows but the hidden one.
  std::set<std::int64_t> truth;
  for (const test::TruthProcess& process : sample.processes) truth.insert(process.pid);
  REQUIRE(truth.contains(record.hidden_pid));  // /proc lists it: procfs reads the pid table
  std::set<std::int64_t> listed;
  for (const Row& row : run(session, "pslist").rows) listed.insert(test::cell_integer(row, test::kPid).value());
  std::set<std::int64_t> expected = truth;
  expected.erase(record.hidden_pid);
  CHECK(listed == expected);

  // psscan carves it where the rootkit said the task is, off the list and still in the pid table;
  // every other live task is on both.
  auto kernel = session.kernel();
  REQUIRE(kernel.has_value());
  const auto physical = (*kernel)->kernel_layer().translate(record.hidden_task);
  REQUIRE_MESSAGE(physical.has_value(), test::error_text(physical));
  std::size_t hidden_rows = 0;
  for (const Row& row : run(session, "psscan").rows) {
    const std::int64_t tid = test::cell_integer(row, kScanTid).value();
    const bool live = row.cells[kScanExit] == Cell(std::string("TASK_RUNNING"));
    CAPTURE(tid);
    if (tid == record.hidden_pid) {
      ++hidden_rows;
      CHECK(test::cell_address(row, kScanOffset) == physical->physical);
      CHECK(test::cell_integer(row, kScanPid) == record.hidden_pid);
      CHECK(test::cell_text(row, kScanComm) == test::guest_fact(sample, "ROOTKIT_HIDDEN_COMM"));
      CHECK(row.cells[kInTaskList] == Cell(false));
      CHECK(row.cells[kInPidTable] == Cell(true));
    } else if (tid != 0 && live) {
      CHECK(row.cells[kInTaskList] == Cell(true));
      CHECK(row.cells[kInPidTable] == Cell(true));
    }
  }
  CHECK(hidden_rows == 1);
}

enum ModuleColumn : int { kModuleOffset, kModuleName };
enum ViewColumn : int { kViewName, kViewAddress, kInProcfs, kInSysfs, kInScan, kViewTaints, kSuspicious };

void check_hidden_module(Session& session, const test::Sample& sample) {
  const RootkitRecord& record = rootkit_record(sample);
  // lsmod walks the module list: the modules /proc/modules shows, not the rootkit.
  std::set<std::string> listed;
  for (const Row& row : run(session, "linux.lsmod").rows) listed.insert(test::cell_text(row, kModuleName).value());
  CHECK(!listed.contains("vmi_rootkit"));
  CHECK(listed == std::set<std::string>{"brd", "cpuid"});  // SAMPLE_MODULES in build-samples.sh

  const Table hidden = run(session, "hidden_modules");
  REQUIRE(hidden.rows.size() == 1);
  CHECK(test::cell_address(hidden.rows[0], kModuleOffset) == record.module);
  CHECK(test::cell_text(hidden.rows[0], kModuleName) == "vmi_rootkit");

  std::size_t suspicious = 0;
  for (const Row& row : run(session, "modxview").rows) {
    const bool is_rootkit = test::cell_address(row, kViewAddress) == record.module;
    CAPTURE(test::cell_text(row, kViewName).value_or("?"));
    CHECK(row.cells[kInProcfs] == Cell(!is_rootkit));
    CHECK(row.cells[kInSysfs] == Cell(!is_rootkit));
    CHECK(row.cells[kInScan] == Cell(true));
    CHECK(row.cells[kSuspicious] == Cell(is_rootkit));
    suspicious += is_rootkit ? 1 : 0;
  }
  CHECK(suspicious == 1);
}

enum SyscallColumn : int { kTableAddress, kTableName, kIndex, kHandler, kSymbol, kModule, kExpected, kHooked };

void check_replaced_syscall(Session& session, const test::Sample& sample) {
  const RootkitRecord& record = rootkit_record(sample);
  const auto hooked = accused_rows(run(session, "check_syscall"), kHooked);
  REQUIRE(hooked.size() == 1);
  CHECK(test::cell_text(hooked[0], kTableName) == "64bit");
  CHECK(test::cell_address(hooked[0], kTableAddress) == record.syscall_table);
  CHECK(test::cell_integer(hooked[0], kIndex) == record.slot);
  CHECK(test::cell_address(hooked[0], kHandler) == record.hook);
  CHECK(test::cell_text(hooked[0], kExpected) == "__x64_sys_kill");
}

enum AfinfoColumn : int { kAfinfoTable, kAfinfoMember, kAfinfoHandler, kAfinfoModule, kAfinfoSymbol, kAfinfoHooked };
enum NotifierColumn : int { kNotifierAddress, kNotifierModule, kNotifierSymbol, kNotifierHooked, kNotifierBlock };

void check_replaced_handlers(Session& session, const test::Sample& sample) {
  const RootkitRecord& record = rootkit_record(sample);
  const auto afinfo = accused_rows(run(session, "check_afinfo"), kAfinfoHooked);
  REQUIRE(afinfo.size() == 1);
  CHECK(test::cell_text(afinfo[0], kAfinfoTable) == "tcp4_seq_ops");
  CHECK(test::cell_text(afinfo[0], kAfinfoMember) == "show");
  CHECK(test::cell_address(afinfo[0], kAfinfoHandler) == record.tcp4_show_hook);

  const auto notifiers = accused_rows(run(session, "keyboard_notifiers"), kNotifierHooked);
  REQUIRE(notifiers.size() == 1);
  CHECK(test::cell_address(notifiers[0], kNotifierAddress) == record.notifier_call);
  CHECK(test::cell_text(notifiers[0], kNotifierBlock) == hex(record.notifier_block));
}

// What the rootkit did not touch stays clean on its sample too: no check cries wolf.
void check_untouched_checks_stay_clean(Session& session, const test::Sample& /*sample*/) {
  for (const char* plugin : {"check_idt", "tty_check", "check_creds"}) {
    CAPTURE(plugin);
    const Table table = run(session, plugin);
    const auto accused = std::ranges::find_if(
        table.columns, [](const Column& column) { return column.name == "Hooked" || column.name == "Suspicious"; });
    REQUIRE(accused != table.columns.end());
    const auto column = static_cast<int>(accused - table.columns.begin());
    for (const Row& row : table.rows) CHECK(row.cells[column] == Cell(false));  // unreadable counts against it
  }
}

}  // namespace

TEST_CASE("on the rootkit sample pslist does not show the hidden process and psscan finds it off the list") {
  test::for_each_rootkit_image(check_hidden_process);
}

TEST_CASE("on the rootkit sample lsmod does not show the rootkit and hidden_modules and modxview find it") {
  test::for_each_rootkit_image(check_hidden_module);
}

TEST_CASE("on the rootkit sample check_syscall accuses exactly the slot the rootkit replaced") {
  test::for_each_rootkit_image(check_replaced_syscall);
}

TEST_CASE("on the rootkit sample check_afinfo and keyboard_notifiers accuse exactly the handlers it planted") {
  test::for_each_rootkit_image(check_replaced_handlers);
}

TEST_CASE("on the rootkit sample the checks of what it did not touch accuse nothing") {
  test::for_each_rootkit_image(check_untouched_checks_stay_clean);
}
