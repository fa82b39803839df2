// psscan and pidhashtable: on every clean sample the carve finds every task /proc shows, each on
// the task list and in the pid table, and nothing else live but the CPUs' idle tasks; the pid
// table holds exactly /proc's tasks. On a synthetic kernel: a task unlinked from the list, an
// exited one, and candidates that break the carve's rules.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <tuple>

#include "samples.hpp"
#include "support.hpp"
#include "synthetic_session.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"

using namespace vmi;

namespace {

enum ScanColumn : int { kOffset, kPid, kTid, kPpid, kComm, kExitState, kInTaskList, kInPidTable };
enum PidColumn : int { kPidOffset, kPidPid, kPidTid, kPidPpid, kPidComm };

using TaskKey = std::tuple<std::int64_t, std::int64_t, std::string>;  // tid, tgid, comm (15 bytes)

std::set<TaskKey> truth_tasks(const test::Sample& sample) {
  std::set<TaskKey> tasks;
  // /proc shows a kernel thread's full name; task_struct.comm keeps its first 15 bytes.
  for (const test::TruthThread& thread : sample.threads)
    tasks.emplace(thread.tid, thread.tgid, thread.comm.substr(0, 15));
  REQUIRE(!tasks.empty());
  return tasks;
}

TaskKey key_of(const Row& row, int tid, int pid, int comm) {
  return {test::cell_integer(row, tid).value(), test::cell_integer(row, pid).value(),
          test::cell_text(row, comm).value()};
}

void check_psscan_finds_proc(Session& session, const test::Sample& sample) {
  const auto truth = truth_tasks(sample);
  auto table = run_plugin(session, "psscan");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  std::set<TaskKey> listed, hashed, found;
  std::size_t idle = 0;
  for (const Row& row : table->rows) {
    const TaskKey key = key_of(row, kTid, kPid, kComm);
    CAPTURE(std::get<0>(key));
    CAPTURE(std::get<2>(key));
    found.insert(key);
    const bool live = row.cells[kExitState] == Cell(std::string("TASK_RUNNING"));
    if (row.cells[kInTaskList] == Cell(true)) listed.insert(key);
    if (row.cells[kInPidTable] == Cell(true)) hashed.insert(key);
    if (std::get<0>(key) == 0) {
      ++idle;  // an idle task: on neither list (the boot CPU's, init_task, heads the task list)
      CHECK(row.cells[kInPidTable] == Cell(false));
    } else if (live) {
      // Nothing live is hidden on a clean guest.
      CHECK(row.cells[kInTaskList] == Cell(true));
      CHECK(row.cells[kInPidTable] == Cell(true));
    }
    // A process's parent as /proc names it.
    const test::TruthProcess* process = test::truth_process(sample, std::get<1>(key));
    if (std::get<0>(key) == std::get<1>(key) && process != nullptr)
      CHECK(test::cell_integer(row, kPpid) == process->ppid);
  }
  for (const TaskKey& task : truth) {
    CAPTURE(std::get<0>(task));
    CAPTURE(std::get<2>(task));
    CHECK(found.contains(task));
  }
  // The pid table holds exactly /proc's tasks; the task list them and init_task (pid 0).
  CHECK(hashed == truth);
  std::set<TaskKey> listed_without_idle;
  for (const TaskKey& task : listed)
    if (std::get<0>(task) != 0) listed_without_idle.insert(task);
  CHECK(listed_without_idle == truth);
  CHECK(listed.size() == truth.size() + 1);
  // One idle task per CPU the guest brought up.
  CHECK(idle >= test::guest_number(sample, "NPROC_ONLN"));
  MESSAGE(sample.name, ": ", table->rows.size(), " tasks carved, ", truth.size(), " in /proc, ", idle, " idle");
}

void check_pidhashtable_equals_proc(Session& session, const test::Sample& sample) {
  auto table = run_plugin(session, "pidhashtable");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  std::set<TaskKey> rows;
  std::pair<std::int64_t, std::int64_t> previous{-1, -1};
  for (const Row& row : table->rows) {
    const TaskKey key = key_of(row, kPidTid, kPidPid, kPidComm);
    rows.insert(key);
    const std::pair order{std::get<1>(key), std::get<0>(key)};
    CHECK(previous < order);  // Volatility 3's order: by process, then thread
    previous = order;
  }
  CHECK(rows == truth_tasks(sample));
}

}  // namespace

TEST_CASE("psscan on every sample, raw and ELF, finds every task /proc shows, on the task list and in the pid table") {
  test::for_each_sample_image(check_psscan_finds_proc);
}

TEST_CASE("psscan on every recovery kernel finds every task /proc shows") {
  test::for_each_recovery_image(check_psscan_finds_proc);
}

TEST_CASE("pidhashtable on every sample and recovery kernel equals the guest's /proc tasks") {
  test::for_each_sample_image(check_pidhashtable_equals_proc);
  test::for_each_recovery_image(check_pidhashtable_equals_proc);
}

TEST_CASE("psscan gives the same tasks on one worker as on every core") {
  const auto samples = test::load_samples();
  Session session = test::open_sample(samples.front().dir / "memory.raw", test::profile_for(samples.front()));
  PluginArgs one;
  one.values["jobs"] = "1";
  auto single = run_plugin(session, "psscan", one);
  auto all = run_plugin(session, "psscan");
  REQUIRE(single.has_value());
  REQUIRE(all.has_value());
  CHECK(single->rows.size() == all->rows.size());
  for (std::size_t i = 0; i < std::min(single->rows.size(), all->rows.size()); ++i)
    CHECK(single->rows[i].cells == all->rows[i].cells);
  PluginArgs zero;
  zero.values["jobs"] = "0";
  CHECK_FALSE(run_plugin(session, "psscan", zero).has_value());
}

namespace {

using vmi_synthetic::SyntheticKernel;

constexpr std::uint32_t kPfExiting = 0x4;
constexpr std::uint64_t kListPoison1 = 0xdead000000000100ull, kListPoison2 = 0xdead000000000122ull;

// A user process: its mm is its active_mm (never read, only compared).
Addr add_process(SyntheticKernel& kernel, vmi_synthetic::TaskSpec spec) {
  const Addr task = kernel.add_task(std::move(spec));
  const Addr mm = kernel.allocate("mm_struct");
  kernel.set<std::uint64_t>(task, "task_struct", "mm", mm);
  kernel.set<std::uint64_t>(task, "task_struct", "active_mm", mm);
  return task;
}

const Row* scan_row(const Table& table, std::int64_t tid) {
  for (const Row& row : table.rows)
    if (test::cell_integer(row, kTid) == tid) return &row;
  return nullptr;
}

}  // namespace

TEST_CASE("psscan finds a task unlinked from the task list and an exited one, and rejects what breaks its rules") {
  SyntheticKernel kernel(test::shipped_isf());
  const Addr init = add_process(kernel, {.pid = 1, .tgid = 1, .comm = "init"});
  kernel.add_to_pid_table(init, 1);
  const Addr hidden =
      add_process(kernel, {.pid = 200, .tgid = 200, .comm = "implant", .parent = init, .on_task_list = false});
  kernel.add_to_pid_table(hidden, 200);
  // Exited and reaped: unlinked with list_del's poison, its stack and mm released.
  const Addr exited = kernel.add_task({.pid = 300, .tgid = 300, .comm = "gone", .parent = init, .on_task_list = false});
  kernel.set<std::uint64_t>(exited, "task_struct", "tasks.next", kListPoison1);
  kernel.set<std::uint64_t>(exited, "task_struct", "tasks.prev", kListPoison2);
  kernel.set<std::uint32_t>(exited, "task_struct", "exit_state", 0x10);
  kernel.set<std::uint32_t>(exited, "task_struct", "flags", kPfExiting);
  kernel.set<std::uint64_t>(exited, "task_struct", "stack", 0);
  // Not tasks: a control character in comm; an mm that is not the active one; a user task with no mm.
  const Addr bad_comm = add_process(kernel, {.pid = 400, .tgid = 400, .comm = "bad\x01name", .parent = init});
  const Addr bad_mm = add_process(kernel, {.pid = 401, .tgid = 401, .comm = "badmm", .parent = init});
  kernel.set<std::uint64_t>(bad_mm, "task_struct", "active_mm", kernel.allocate("mm_struct"));
  kernel.add_task({.pid = 402, .tgid = 402, .comm = "nomm", .parent = init});
  (void)bad_comm;

  Session session = test::open_synthetic(kernel);
  auto table = run_plugin(session, "psscan");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  const Row* init_row = scan_row(*table, 1);
  const Row* hidden_row = scan_row(*table, 200);
  const Row* exited_row = scan_row(*table, 300);
  REQUIRE(init_row != nullptr);
  REQUIRE(hidden_row != nullptr);
  REQUIRE(exited_row != nullptr);
  CHECK(init_row->cells[kInTaskList] == Cell(true));
  CHECK(init_row->cells[kInPidTable] == Cell(true));
  CHECK(hidden_row->cells[kInTaskList] == Cell(false));
  CHECK(hidden_row->cells[kInPidTable] == Cell(true));
  CHECK(test::cell_integer(*hidden_row, kPpid) == 1);
  CHECK(test::cell_text(*hidden_row, kComm) == "implant");
  CHECK(test::cell_text(*hidden_row, kExitState) == "TASK_RUNNING");
  CHECK(test::cell_text(*exited_row, kExitState) == "EXIT_DEAD");
  CHECK(exited_row->cells[kInTaskList] == Cell(false));
  CHECK(exited_row->cells[kInPidTable] == Cell(false));
  CHECK(scan_row(*table, 400) == nullptr);
  CHECK(scan_row(*table, 401) == nullptr);
  CHECK(scan_row(*table, 402) == nullptr);
  // init_task (pid 0) and the three tasks above: nothing else.
  CHECK(table->rows.size() == 4);
  CHECK(session.diagnostics().warnings().empty());

  // pslist does not show the unlinked task; the pid table does.
  auto pslist = run_plugin(session, "pslist");
  REQUIRE(pslist.has_value());
  CHECK(std::ranges::none_of(pslist->rows, [](const Row& row) { return test::cell_integer(row, test::kPid) == 200; }));
  auto pids = run_plugin(session, "pidhashtable");
  REQUIRE_MESSAGE(pids.has_value(), test::error_text(pids));
  REQUIRE(pids->rows.size() == 2);
  CHECK(test::cell_integer(pids->rows[0], kPidTid) == 1);
  CHECK(test::cell_integer(pids->rows[1], kPidTid) == 200);
  CHECK(test::cell_address(pids->rows[1], kPidOffset) == hidden);
  CHECK(test::cell_text(pids->rows[1], kPidComm) == "implant");
}

TEST_CASE("pidhashtable skips a pid table node that is not where its parent says, with a warning naming it") {
  SyntheticKernel kernel(test::shipped_isf());
  const Addr init = add_process(kernel, {.pid = 1, .tgid = 1, .comm = "init"});
  kernel.add_to_pid_table(init, 1);
  const Addr far = add_process(kernel, {.pid = 100, .tgid = 100, .comm = "far", .parent = init});
  kernel.add_to_pid_table(far, 100);
  // pid 100's leaf node (slot 1 of the root) claims another parent.
  const Addr head = kernel.field_address(kernel.symbol("init_pid_ns"), "pid_namespace", "idr.idr_rt.xa_head");
  const Addr root = kernel.read<std::uint64_t>(head) - 2;
  const Addr leaf = kernel.read<std::uint64_t>(root + kernel.offset("xa_node", "slots") + 8) - 2;
  kernel.set<std::uint64_t>(leaf, "xa_node", "parent", leaf);
  Session session = test::open_synthetic(kernel);
  auto pids = run_plugin(session, "pidhashtable");
  REQUIRE_MESSAGE(pids.has_value(), test::error_text(pids));
  REQUIRE(pids->rows.size() == 1);
  CHECK(test::cell_integer(pids->rows[0], kPidTid) == 1);
  const auto& warnings = session.diagnostics().warnings();
  CHECK(std::ranges::any_of(
      warnings, [&](const std::string& w) { return w.find("pid table node " + hex(leaf)) != std::string::npos; }));
}
