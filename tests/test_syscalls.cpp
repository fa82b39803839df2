// syscalls against the guest's own view: on the VMExit sample the workload parks known threads in
// known calls (samples/workload.c, proc_d) and the truth holds every user thread's
// /proc/PID/task/TID/syscall from the same stop as the snapshot (truth/syscalls.tsv). Every such
// thread is shown in exactly that call, with those registers, and the parked calls' arguments
// decoded: the FIFO's path, the pipe and socket behind the descriptors (truth/fds.tsv).
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "plugins/syscall_arguments.hpp"
#include "samples.hpp"
#include "support.hpp"
#include "synthetic_session.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"

using namespace vmi;

namespace {

// One line of /proc/PID/task/TID/syscall: "nr arg1 .. arg6 sp pc".
struct TruthCall {
  std::int64_t tid = 0, pid = 0, number = 0;
  std::array<std::uint64_t, 6> arguments{};
  std::uint64_t sp = 0, pc = 0;
};

std::vector<TruthCall> truth_calls(const test::Sample& sample) {
  std::ifstream in(sample.dir / "truth" / "syscalls.tsv");
  REQUIRE_MESSAGE(in.good(), "no truth/syscalls.tsv in ", sample.dir.string());
  std::string line;
  REQUIRE(std::getline(in, line));
  REQUIRE(line == "tid\tpid\tline");
  std::vector<TruthCall> calls;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    TruthCall call;
    std::string number;
    fields >> call.tid >> call.pid >> number;
    REQUIRE_MESSAGE(number != "running", "a thread was running when the truth was collected: ", line);
    call.number = std::stoll(number);
    REQUIRE_MESSAGE(call.number >= 0, "a thread outside a system call in the truth: ", line);
    for (auto& argument : call.arguments) {
      std::string text;
      fields >> text;
      argument = std::stoull(text, nullptr, 16);
    }
    std::string sp;
    std::string pc;
    fields >> sp >> pc;
    REQUIRE_MESSAGE(!pc.empty(), "short line in truth/syscalls.tsv: ", line);
    call.sp = std::stoull(sp, nullptr, 16);
    call.pc = std::stoull(pc, nullptr, 16);
    calls.push_back(call);
  }
  REQUIRE(!calls.empty());
  return calls;
}

// What readlink(/proc/PID/fd/FD) showed in the guest (truth/fds.tsv).
std::string truth_link(const test::Sample& sample, std::int64_t pid, std::uint64_t fd) {
  std::ifstream in(sample.dir / "truth" / "fds.tsv");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string p;
    std::string f;
    std::string link;
    std::getline(fields, p, '\t');
    std::getline(fields, f, '\t');
    std::getline(fields, link, '\t');
    if (p == std::to_string(pid) && f == std::to_string(fd)) return link;
  }
  FAIL("pid ", pid, " fd ", fd, " is not in truth/fds.tsv");
  return {};
}

std::int64_t tid_named(const test::Sample& sample, std::string_view comm) {
  for (const test::TruthThread& thread : sample.threads)
    if (thread.comm == comm) return thread.tid;
  FAIL("no thread ", comm, " in truth/threads.tsv");
  return -1;
}

// The x86-64 numbers of the calls the sample's tasks are in (asm/unistd_64.h).
const std::map<std::int64_t, std::string> kCallNames = {{0, "read"},       {7, "poll"},    {34, "pause"},
                                                        {35, "nanosleep"}, {43, "accept"}, {61, "wait4"},
                                                        {202, "futex"},    {257, "openat"}};

enum Column : int { kPid, kTid, kComm, kCpu, kNumber, kName, kArgs, kRdi, kRsi, kRdx, kR10, kR8, kR9, kRip, kRsp };

void check_calls_equal_proc(Session& session, const test::Sample& sample) {
  auto table = run_plugin(session, "syscalls");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  std::map<std::int64_t, const Row*> by_tid;
  for (const Row& row : table->rows) {
    const auto tid = test::cell_integer(row, kTid);
    REQUIRE(tid.has_value());
    CHECK_MESSAGE(by_tid.emplace(*tid, &row).second, "thread ", *tid, " shown twice");
  }
  // Every user thread the guest listed; the collector, which the truth leaves out (it was reading
  // /proc then), may be shown too: at the stop it is in the poll that waits for the host's GO,
  // unless it was stopped on its way there, in user mode.
  const auto collector = static_cast<std::int64_t>(test::guest_number(sample, "COLLECTOR_PID"));
  std::set<std::int64_t> expected_tids;
  for (const TruthCall& call : truth_calls(sample)) {
    CAPTURE(call.tid);
    expected_tids.insert(call.tid);
    const auto found = by_tid.find(call.tid);
    REQUIRE_MESSAGE(found != by_tid.end(), "thread ", call.tid, " is in a system call but not shown");
    const Row& row = *found->second;
    CHECK(test::cell_integer(row, kPid) == call.pid);
    CHECK(test::cell_integer(row, kNumber) == call.number);
    REQUIRE_MESSAGE(kCallNames.contains(call.number), "the test does not know call ", call.number);
    CHECK(test::cell_text(row, kName) == kCallNames.at(call.number));
    const int registers[] = {kRdi, kRsi, kRdx, kR10, kR8, kR9};
    for (std::size_t i = 0; i < 6; ++i) CHECK(test::cell_address(row, registers[i]) == call.arguments[i]);
    CHECK(test::cell_address(row, kRsp) == call.sp);
    CHECK(test::cell_address(row, kRip) == call.pc);
  }
  std::set<std::int64_t> shown;
  for (const auto& [tid, row] : by_tid) shown.insert(tid);
  shown.erase(collector);
  CHECK(shown == expected_tids);

  // The parked calls, decoded as the workload made them.
  const auto args_of = [&](std::string_view comm) {
    return test::cell_text(*by_tid.at(tid_named(sample, comm)), kArgs);
  };
  const std::int64_t parker = test::cell_integer(*by_tid.at(tid_named(sample, "vmi-wl-d")), kPid).value();
  const std::uint64_t read_fd = test::cell_address(*by_tid.at(tid_named(sample, "d-read")), kRdi).value();
  const std::uint64_t accept_fd = test::cell_address(*by_tid.at(tid_named(sample, "d-accept")), kRdi).value();
  CHECK(args_of("d-fifo") == R"(AT_FDCWD, "/run/vmi/vmi-fifo", O_RDONLY|O_CLOEXEC)");
  CHECK(args_of("d-read").value_or("").starts_with(std::to_string(read_fd) + "<" + truth_link(sample, parker, read_fd) +
                                                   ">, 0x"));
  CHECK(truth_link(sample, parker, read_fd).starts_with("pipe:["));
  CHECK(args_of("d-read").value_or("").ends_with(", 64"));
  CHECK(args_of("d-accept")
            .value_or("")
            .starts_with(std::to_string(accept_fd) + "<" + truth_link(sample, parker, accept_fd) + ">, 0x"));
  CHECK(args_of("d-nanosleep") == "{tv_sec=86400, tv_nsec=5}, NULL");
  CHECK(args_of("d-futex").value_or("").find(", FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0") != std::string::npos);
  std::int64_t d1 = -1;
  for (const test::TruthProcess& process : sample.processes)
    if (process.comm == "vmi-wl-d1") d1 = process.pid;
  CHECK(args_of("vmi-wl-d").value_or("").starts_with(std::to_string(d1) + ", 0x"));
  CHECK(args_of("vmi-wl-d").value_or("").ends_with(", 0, NULL"));
}

void check_log_lines(Session& session, const test::Sample& sample) {
  auto log = run_plugin(session, "syscall_log");
  REQUIRE_MESSAGE(log.has_value(), test::error_text(log));
  const std::int64_t fifo = tid_named(sample, "d-fifo");
  std::int64_t parker = -1;
  for (const test::TruthThread& thread : sample.threads)
    if (thread.tid == fifo) parker = thread.tgid;
  const std::string expected = "d-fifo " + std::to_string(parker) + "/" + std::to_string(fifo) +
                               R"( openat(AT_FDCWD, "/run/vmi/vmi-fifo", O_RDONLY|O_CLOEXEC))";
  std::size_t found = 0;
  for (const Row& row : log->rows) found += test::cell_text(row, 0) == expected ? 1 : 0;
  CHECK_MESSAGE(found == 1, expected);
  const std::size_t parked = truth_calls(sample).size();  // and maybe the collector's (see above)
  CHECK(log->rows.size() >= parked);
  CHECK(log->rows.size() <= parked + 1);
}

// A caller whose memory holds what `memory` maps, and descriptor 3 open as a pipe.
CallerView fake_caller(const std::map<std::uint64_t, std::string>& memory) {
  return CallerView{.string = [&memory](std::uint64_t address, std::size_t) -> std::optional<std::string> {
                      const auto found = memory.find(address);
                      if (found == memory.end()) return std::nullopt;
                      return found->second.substr(0, found->second.find('\0'));
                    },
                    .bytes =
                        [&memory](std::uint64_t address, std::span<std::byte> out) {
                          const auto found = memory.find(address);
                          if (found == memory.end() || found->second.size() < out.size()) return false;
                          std::memcpy(out.data(), found->second.data(), out.size());
                          return true;
                        },
                    .descriptor = [](std::int32_t fd) -> std::optional<std::string> {
                      if (fd == 3) return "pipe:[42]";
                      return std::nullopt;
                    }};
}

}  // namespace

TEST_CASE("syscalls shows every parked thread in the call and with the registers /proc showed, arguments decoded") {
  test::for_each_vmexit_image(check_calls_equal_proc);
}

TEST_CASE("syscall_log writes one line per call: COMM PID/TID name(arguments)") {
  test::for_each_vmexit_image(check_log_lines);
}

TEST_CASE("syscall arguments are decoded by kind: flags, modes, sockaddrs, and unreadable memory marked") {
  const std::string inet("\x02\x00\x1e\x61\x7f\x00\x00\x01\0\0\0\0\0\0\0\0", 16);
  const std::string unix_path("\x01\x00/run/sock\0", 12);
  const std::map<std::uint64_t, std::string> memory = {
      {0x1000, std::string("/etc/fstab\0", 11)}, {0x2000, inet}, {0x3000, unix_path}};
  const CallerView caller = fake_caller(memory);
  CHECK(decoded_arguments("openat", {0xffffff9c, 0x1000, 0, 0, 0, 0}, caller) == R"(AT_FDCWD, "/etc/fstab", O_RDONLY)");
  CHECK(decoded_arguments("openat", {3, 0x1000, 0101 | 02000000, 0644, 0, 0}, caller) ==
        R"(3<pipe:[42]>, "/etc/fstab", O_WRONLY|O_CREAT|O_CLOEXEC, 0644)");
  CHECK(decoded_arguments("open", {0x5000, 2, 0, 0, 0, 0}, caller) == "0x5000<unreadable>, O_RDWR");
  CHECK(decoded_arguments("connect", {4, 0x2000, 16, 0, 0, 0}, caller) ==
        R"(4, {sa_family=AF_INET, sin_port=htons(7777), sin_addr=inet_addr("127.0.0.1")}, 16)");
  CHECK(decoded_arguments("connect", {4, 0x3000, 12, 0, 0, 0}, caller) ==
        R"(4, {sa_family=AF_UNIX, sun_path="/run/sock"}, 12)");
  CHECK(decoded_arguments("wait4", {0xffffffff, 0, 1 | 0x40000000, 0, 0, 0}, caller) ==
        "-1, NULL, WNOHANG|__WALL, NULL");
  CHECK(decoded_arguments("kill", {42, 9, 0, 0, 0, 0}, caller) == "42, SIGKILL");
  CHECK(decoded_arguments("futex", {0x7000, 0x89, 1, 0, 0, 0xffffffff}, caller) ==
        "0x7000, FUTEX_WAIT_BITSET_PRIVATE, 1, NULL, NULL, 4294967295");
  CHECK(decoded_arguments("clock_nanosleep", {1, 1, 0x6000, 0, 0, 0}, caller) ==
        "CLOCK_MONOTONIC, 0x1, 0x6000<unreadable>, NULL");
  CHECK(decoded_arguments("no_such_call", {1, 2, 3, 4, 5, 6}, caller) == "0x1, 0x2, 0x3, 0x4, 0x5, 0x6");
}

TEST_CASE("syscalls reads the registers at the top of each task's stack; a frame it cannot trust is marked, named") {
  vmi_synthetic::SyntheticKernel kernel(test::shipped_isf());
  constexpr Addr kThreadSize = 16384;
  // A task's kernel stack: THREAD_SIZE bytes, THREAD_SIZE aligned, its pt_regs at the very top.
  const auto stack_of = [&](Addr task) {
    const Addr stack = (kernel.allocate(2 * kThreadSize) + kThreadSize - 1) & ~(kThreadSize - 1);
    kernel.set<std::uint64_t>(task, "task_struct", "stack", stack);
    return stack + kThreadSize - kernel.size_of("pt_regs");
  };
  const auto put_regs = [&](Addr regs, std::uint64_t cs) {
    kernel.set<std::uint64_t>(regs, "pt_regs", "orig_ax", 0);  // read
    kernel.set<std::uint64_t>(regs, "pt_regs", "di", 3);
    kernel.set<std::uint64_t>(regs, "pt_regs", "si", 0x1000);
    kernel.set<std::uint64_t>(regs, "pt_regs", "dx", 64);
    kernel.set<std::uint64_t>(regs, "pt_regs", "ip", 0x401000);
    kernel.set<std::uint64_t>(regs, "pt_regs", "sp", 0x7ffc0000);
    kernel.set<std::uint16_t>(regs, "pt_regs", "cs", static_cast<std::uint16_t>(cs));
  };
  const Addr reader = kernel.add_task({.pid = 500, .tgid = 500, .comm = "reader"});
  put_regs(stack_of(reader), 0x33);
  const Addr forged = kernel.add_task({.pid = 501, .tgid = 501, .comm = "forged"});
  const Addr forged_regs = stack_of(forged);
  put_regs(forged_regs, 0x10);  // a kernel selector: no user entry saved this frame
  const Addr stackless = kernel.add_task({.pid = 502, .tgid = 502, .comm = "stackless"});  // stack not mapped
  Session session = test::open_synthetic(kernel);
  auto table = run_plugin(session, "syscalls");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  std::map<std::int64_t, const Row*> by_pid;
  for (const Row& row : table->rows) by_pid[test::cell_integer(row, kPid).value()] = &row;
  REQUIRE(by_pid.contains(500));
  CHECK(test::cell_integer(*by_pid[500], kNumber) == 0);
  CHECK(test::cell_address(*by_pid[500], kRdi) == 3);
  CHECK(test::cell_address(*by_pid[500], kRip) == 0x401000);
  CHECK(test::cell_address(*by_pid[500], kRsp) == 0x7ffc0000);
  CHECK(test::cell_text(*by_pid[500], kArgs) == "3, 0x1000, 64");  // fd 3 is open nowhere: no <...>
  for (const std::int64_t pid : {501, 502}) {
    CAPTURE(pid);
    REQUIRE(by_pid.contains(pid));
    CHECK(by_pid[pid]->cells[kNumber] == Cell(Absence::unreadable));
    CHECK(by_pid[pid]->cells[kArgs] == Cell(Absence::unreadable));
    CHECK(by_pid[pid]->cells[kRip] == Cell(Absence::unreadable));
  }
  const auto warned = [&](const std::string& text) {
    return std::ranges::any_of(session.diagnostics().warnings(),
                               [&](const std::string& warning) { return warning.find(text) != std::string::npos; });
  };
  CHECK_MESSAGE(warned("task " + hex(forged) + " (pid 501): field 'stack's pt_regs.cs' at " +
                       hex(forged_regs + kernel.offset("pt_regs", "cs")) + " holds 0x10"),
                test::joined(session.diagnostics().warnings()));
  CHECK_MESSAGE(warned("task " + hex(stackless) + " (pid 502): field 'stack's pt_regs' at "),
                test::joined(session.diagnostics().warnings()));
}
