// States a clean guest never shows, on kernels laid out from the shipped Debian 6.1 profile by the
// synthetic-kernel builder (fuzz/targets/synthetic_kernel.hpp, shared with the fuzz targets):
// tasks unlinked from the task list, fields whose memory is missing, a hooked system-call table.
// Every expected value is the one written into the image, not one read back through the program.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>

#include "elf_file.hpp"
#include "samples.hpp"
#include "support.hpp"
#include "synthetic_kernel.hpp"
#include "synthetic_session.hpp"
#include "vmi/isf.hpp"
#include "vmi/kernel.hpp"
#include "vmi/linux.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"

using namespace vmi;
using vmi::test::open_synthetic;
using vmi::test::shipped_isf;
using vmi_synthetic::SyntheticKernel;

namespace {

const Row* row_with_pid(const Table& table, std::int64_t pid) {
  for (const Row& row : table.rows) {
    if (test::cell_integer(row, test::kPid) == pid) return &row;
  }
  return nullptr;
}

bool has_warning(Session& session, std::string_view text) {
  const auto& warnings = session.diagnostics().warnings();
  return std::ranges::any_of(warnings, [&](const std::string& w) { return w.find(text) != std::string::npos; });
}

// init (1) with two children, as the tests below start from.
struct ThreeTasks {
  SyntheticKernel kernel{shipped_isf()};
  Addr init = kernel.add_task({.pid = 1, .tgid = 1, .comm = "init", .start_boottime_ns = 1'000'000});
  Addr sshd = kernel.add_task({.pid = 100,
                               .tgid = 100,
                               .comm = "sshd",
                               .parent = init,
                               .uid = 0,
                               .gid = 0,
                               .start_boottime_ns = 5'000'000'000});
  Addr shell = kernel.add_task({.pid = 200,
                                .tgid = 200,
                                .comm = "bash",
                                .parent = sshd,
                                .uid = 1000,
                                .gid = 1001,
                                .start_boottime_ns = 7'000'000'000});
};

}  // namespace

TEST_CASE("pslist on a synthetic kernel laid out from the shipped 6.1 profile shows exactly the tasks written") {
  ThreeTasks t;
  Session session = open_synthetic(t.kernel);
  auto table = run_plugin(session, "pslist");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  REQUIRE(table->rows.size() == 3);
  const Row* shell = row_with_pid(*table, 200);
  REQUIRE(shell != nullptr);
  CHECK(test::cell_address(*shell, test::kOffset) == t.shell);
  CHECK(test::cell_integer(*shell, test::kPpid) == 100);
  CHECK(test::cell_text(*shell, test::kComm) == "bash");
  CHECK(test::cell_integer(*shell, test::kThreads) == 1);
  CHECK(test::cell_integer(*shell, test::kUid) == 1000);
  CHECK(test::cell_integer(*shell, test::kGid) == 1001);
  CHECK(test::cell_integer(*row_with_pid(*table, 1), test::kPpid) == 0);  // init's parent is swapper
  CHECK(session.diagnostics().warnings().empty());
}

TEST_CASE(
    "a task unlinked from the task list is missing from pslist and pstree, and its children's PPID still names it") {
  ThreeTasks t;
  // Direct kernel-object manipulation: sshd is taken off init_task.tasks but keeps running, and
  // its child still points at it. The task list is the only view pslist has.
  t.kernel.list_del(t.kernel.field_address(t.sshd, "task_struct", "tasks"), SyntheticKernel::Unlink::list_del_rcu);
  Session session = open_synthetic(t.kernel);
  auto table = run_plugin(session, "pslist");
  REQUIRE(table.has_value());
  CHECK(table->rows.size() == 2);
  CHECK(row_with_pid(*table, 100) == nullptr);
  const Row* shell = row_with_pid(*table, 200);
  REQUIRE(shell != nullptr);
  CHECK(test::cell_integer(*shell, test::kPpid) == 100);  // a parent nobody lists: the tell-tale
  CHECK(session.diagnostics().warnings().empty());
  auto tree = run_plugin(session, "pstree");
  REQUIRE(tree.has_value());
  CHECK(tree->rows.size() == 2);
}

TEST_CASE("a task whose credentials page is missing shows its ids as unreadable, with a warning naming the field") {
  ThreeTasks t;
  const Addr cred = t.kernel.read<std::uint64_t>(t.kernel.field_address(t.shell, "task_struct", "real_cred"));
  const Addr uid_at = t.kernel.field_address(cred, "cred", "uid");
  t.kernel.unmap(uid_at);
  Session session = open_synthetic(t.kernel);
  auto table = run_plugin(session, "pslist");
  REQUIRE(table.has_value());
  const Row* shell = row_with_pid(*table, 200);
  REQUIRE(shell != nullptr);
  for (int column : {test::kUid, test::kGid, test::kEuid, test::kEgid})
    CHECK(shell->cells.at(column) == Cell{Absence::unreadable});
  CHECK(test::cell_integer(*shell, test::kPpid) == 100);  // the rest of the row is still read
  CHECK(has_warning(session, "task " + hex(t.shell) + " (pid 200): field 'cred.uid' at " + hex(uid_at)));
  const Row* sshd = row_with_pid(*table, 100);
  REQUIRE(sshd != nullptr);
  CHECK(test::cell_integer(*sshd, test::kUid) == 0);  // its neighbours' credentials are intact
}

TEST_CASE("a task whose first page is missing is skipped with a warning, and the walk stops at its links") {
  ThreeTasks t;
  t.kernel.add_task({.pid = 300, .tgid = 300, .comm = "cron", .parent = t.init});
  // pid and the tasks links share the task_struct's first page in this build.
  const Addr links = t.kernel.field_address(t.shell, "task_struct", "tasks");
  const bool same_page = links >> 12 == t.kernel.field_address(t.shell, "task_struct", "pid") >> 12;
  REQUIRE(same_page);
  t.kernel.unmap(links);
  Session session = open_synthetic(t.kernel);
  auto table = run_plugin(session, "pslist");
  REQUIRE(table.has_value());
  CHECK(row_with_pid(*table, 1) != nullptr);
  CHECK(row_with_pid(*table, 100) != nullptr);
  CHECK(row_with_pid(*table, 200) == nullptr);
  CHECK(row_with_pid(*table, 300) == nullptr);  // beyond the broken link: a partial list, said so
  CHECK(has_warning(session, "task at " + hex(t.shell) + ": "));
  CHECK(has_warning(session, "task list: list at "));
  CHECK(has_warning(session, "link at " + hex(links) + " is unreadable"));
}

TEST_CASE("check_syscall accuses a slot pointing outside known code and a slot holding another call's entry") {
  // A rootkit's hooks: open's slot points into memory outside the kernel image, and read's slot
  // holds write's entry point (kernel text, but not the function the slot dispatches to).
  SyntheticKernel kernel(shipped_isf());
  const Addr table = kernel.symbol("sys_call_table");
  const Addr hook = kernel.allocate(64);
  kernel.put<std::uint64_t>(table, kernel.symbol("__x64_sys_write"));       // read
  kernel.put<std::uint64_t>(table + 8, kernel.symbol("__x64_sys_write"));   // write
  kernel.put<std::uint64_t>(table + 16, hook);                              // open
  kernel.put<std::uint64_t>(table + 24, kernel.symbol("__x64_sys_close"));  // close
  Session session = open_synthetic(kernel);
  auto rows = run_plugin(session, "check_syscall");
  REQUIRE_MESSAGE(rows.has_value(), test::error_text(rows));
  std::vector<const Row*> slots;
  for (const Row& row : rows->rows) {
    if (test::cell_text(row, 1) == "64bit") slots.push_back(&row);
  }
  REQUIRE(slots.size() == 4);  // the zero slots after the last handler are the table's padding
  enum { kHandler = 3, kSymbol = 4, kModule = 5, kExpected = 6, kHooked = 7 };
  CHECK(test::cell_text(*slots[0], kSymbol) == "__x64_sys_write+0x0");
  CHECK(test::cell_text(*slots[0], kExpected) == "__x64_sys_read");
  CHECK(slots[0]->cells[kHooked] == Cell(true));
  CHECK(slots[1]->cells[kHooked] == Cell(false));
  CHECK(test::cell_address(*slots[2], kHandler) == hook);
  CHECK(slots[2]->cells[kModule] == Cell(Absence::unreadable));  // no known code holds it
  CHECK(slots[2]->cells[kHooked] == Cell(true));
  CHECK(slots[3]->cells[kHooked] == Cell(false));
}

TEST_CASE("check_idt accuses a gate whose handler lies outside known code, and only that gate") {
  SyntheticKernel kernel(shipped_isf());
  const Addr idt = kernel.symbol("idt_table");
  const Addr hook = kernel.allocate(64);
  // An interrupt gate (type 0xe, present) for `handler` at vector `vector`.
  auto gate = [&](std::size_t vector, Addr handler) {
    const Addr at = idt + vector * 16;
    kernel.put<std::uint16_t>(at, static_cast<std::uint16_t>(handler));
    kernel.put<std::uint16_t>(at + 2, 0x10);  // __KERNEL_CS
    kernel.put<std::uint16_t>(at + 4, 0x8e00);
    kernel.put<std::uint16_t>(at + 6, static_cast<std::uint16_t>(handler >> 16));
    kernel.put<std::uint32_t>(at + 8, static_cast<std::uint32_t>(handler >> 32));
  };
  gate(3, kernel.symbol("asm_exc_int3"));
  gate(14, hook);
  Session session = open_synthetic(kernel);
  auto rows = run_plugin(session, "check_idt");
  REQUIRE_MESSAGE(rows.has_value(), test::error_text(rows));
  REQUIRE(rows->rows.size() == 256);
  enum { kAddress = 1, kModule = 2, kSymbol = 3, kPresent = 4, kHooked = 5 };
  for (std::size_t vector = 0; vector < 256; ++vector) {
    CAPTURE(vector);
    const Row& row = rows->rows[vector];
    CHECK(row.cells[kHooked] == Cell(vector == 14));
    CHECK(row.cells[kPresent] == Cell(vector == 3 || vector == 14));
  }
  CHECK(test::cell_text(rows->rows[3], kSymbol) == "asm_exc_int3+0x0");
  CHECK(test::cell_text(rows->rows[3], kModule) == "__kernel__");
  CHECK(test::cell_address(rows->rows[14], kAddress) == hook);
  CHECK(rows->rows[0].cells[kAddress] == Cell(Absence::not_applicable));
}

TEST_CASE("sessions sharing a profile catalog load the profile once and keep their own kernels and warnings") {
  ThreeTasks clean;
  ThreeTasks damaged;
  damaged.kernel.unmap(damaged.kernel.field_address(damaged.shell, "task_struct", "real_cred"));
  Session first = open_synthetic(clean.kernel);
  Session second = open_synthetic(damaged.kernel);
  CHECK(&(*first.kernel())->profile() == &(*second.kernel())->profile());
  CHECK(&first.profiles() == &second.profiles());
  REQUIRE(run_plugin(first, "pslist").has_value());
  REQUIRE(run_plugin(second, "pslist").has_value());
  CHECK(first.diagnostics().warnings().empty());
  CHECK_FALSE(second.diagnostics().warnings().empty());
}

TEST_CASE(
    "netstat and handles on a synthetic kernel show the TCP sockets written there; a socket whose struct sock page is "
    "missing stays listed, unreadable, with a warning") {
  ThreeTasks t;
  t.kernel.add_file_table(t.sshd);
  // 10.0.0.5:22 <- 10.0.0.9:51000, addresses in network byte order as the kernel keeps them.
  const Addr connection = t.kernel.add_socket_file({.inode = 1234,
                                                    .local_address = 0x0500000a,
                                                    .remote_address = 0x0900000a,
                                                    .local_port = 22,
                                                    .remote_port = 51000});
  Addr listener_sock = 0;
  const Addr listener =
      t.kernel.add_socket_file({.state = 10, .inode = 1235, .local_port = 22}, &listener_sock);  // TCP_LISTEN
  t.kernel.install(t.sshd, 3, connection);
  t.kernel.install(t.sshd, 4, listener);
  {
    Session session = open_synthetic(t.kernel);
    auto sockets = run_plugin(session, "netstat");
    REQUIRE_MESSAGE(sockets.has_value(), test::error_text(sockets));
    REQUIRE(sockets->rows.size() == 2);
    auto cell = [&](std::size_t row, std::size_t column) {
      return std::visit(
          [](const auto& value) -> std::string {
            using T = std::decay_t<decltype(value)>;
            if constexpr (std::is_same_v<T, std::string>) return value;
            if constexpr (std::is_same_v<T, std::int64_t> || std::is_same_v<T, std::uint64_t>)
              return std::to_string(value);
            if constexpr (std::is_same_v<T, Absence>) return value == Absence::unreadable ? "-" : "N/A";
            return "?";
          },
          sockets->rows[row].cells.at(column));
    };
    // NetNS, Process Name, PID, TID, FD, Sock Offset, Family, Type, Proto, Source Addr, Source Port,
    // Destination Addr, Destination Port, State, Filter, Inode
    const std::vector<std::string> expected = {"4026531840", "sshd",        "100", "100",      "3",  "",
                                               "AF_INET",    "STREAM",      "TCP", "10.0.0.5", "22", "10.0.0.9",
                                               "51000",      "ESTABLISHED", "N/A", "1234"};
    for (std::size_t c = 0; c < expected.size(); ++c) {
      if (c == 5) continue;  // the offset: the builder's allocation
      CAPTURE(c);
      CHECK(cell(0, c) == expected[c]);
    }
    CHECK(cell(1, 9) == "0.0.0.0");
    CHECK(cell(1, 13) == "LISTEN");
    CHECK(session.diagnostics().warnings().empty());
    auto handles = run_plugin(session, "handles");
    REQUIRE(handles.has_value());
    REQUIRE(handles->rows.size() == 2);
    CHECK(test::cell_text(handles->rows[0], 4) == "socket:[1234]");
  }
  t.kernel.unmap(listener_sock);
  Session session = open_synthetic(t.kernel);
  auto sockets = run_plugin(session, "netstat");
  REQUIRE(sockets.has_value());
  REQUIRE(sockets->rows.size() == 2);
  const Row& unreadable = sockets->rows[1];
  CHECK(test::cell_integer(unreadable, 4) == 4);
  for (std::size_t c : {0u, 5u, 6u, 7u, 8u, 9u, 10u, 11u, 12u, 13u, 14u})
    CHECK(unreadable.cells.at(c) == Cell{Absence::unreadable});
  CHECK(test::cell_integer(unreadable, 15) == 1235);  // the inode lives with the socket, not the sock
  CHECK(has_warning(session, "task " + hex(t.sshd) + " (pid 100) fd 4: field 'sock.skc_family' at "));
}

TEST_CASE("netstat names a BPF program attached to a socket: classic or extended, and its length") {
  ThreeTasks t;
  t.kernel.add_file_table(t.sshd);
  // A packet sniffer's socket with tcpdump's 4-instruction classic filter, and one with an eBPF
  // program of 12 instructions.
  t.kernel.install(
      t.sshd, 3,
      t.kernel.add_socket_file({.type = 2, .protocol = 17, .state = 7, .inode = 77, .filter_instructions = 4}));
  t.kernel.install(
      t.sshd, 4,
      t.kernel.add_socket_file(
          {.type = 2, .protocol = 17, .state = 7, .inode = 78, .filter_instructions = 12, .classic_filter = false}));
  Session session = open_synthetic(t.kernel);
  auto sockets = run_plugin(session, "netstat");
  REQUIRE_MESSAGE(sockets.has_value(), test::error_text(sockets));
  REQUIRE(sockets->rows.size() == 2);
  constexpr int kFilter = 14;
  CHECK(test::cell_text(sockets->rows[0], kFilter)
            .value_or("")
            .starts_with("bpf_filter_type=cBPF,bpf_instructions=4,bpf_prog=0x"));
  CHECK(test::cell_text(sockets->rows[1], kFilter)
            .value_or("")
            .starts_with("bpf_filter_type=eBPF,bpf_instructions=12,bpf_prog=0x"));
  CHECK(test::cell_text(sockets->rows[0], 8) == "UDP");
  CHECK(test::cell_text(sockets->rows[0], 13) == "CLOSE");
  CHECK(session.diagnostics().warnings().empty());
}

TEST_CASE("maps walks a maple leaf in address order and skips, with a warning, an area that belongs to another mm") {
  ThreeTasks t;
  std::vector<Addr> areas;
  t.kernel.add_memory(t.shell,
                      {{.start = 0x400000, .end = 0x401000, .flags = 0x5},     // r-x
                       {.start = 0x600000, .end = 0x603000, .flags = 0x3},     // rw-
                       {.start = 0x700000, .end = 0x701000, .mm = 0xdead000},  // someone else's
                       {.start = 0x7ff000, .end = 0x800000, .flags = 0x8b}},   // rw-s
                      &areas);
  Session session = open_synthetic(t.kernel);
  auto table = run_plugin(session, "maps");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  REQUIRE(table->rows.size() == 3);
  constexpr int kStart = 2, kEnd = 3, kFlags = 4, kPath = 9, kPerms = 11;
  const std::pair<Addr, Addr> expected[] = {{0x400000, 0x401000}, {0x600000, 0x603000}, {0x7ff000, 0x800000}};
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(test::cell_integer(table->rows[i], 0) == 200);
    CHECK(test::cell_address(table->rows[i], kStart) == expected[i].first);
    CHECK(test::cell_address(table->rows[i], kEnd) == expected[i].second);
    CHECK(test::cell_text(table->rows[i], kPath) == "");  // anonymous memory
  }
  CHECK(test::cell_text(table->rows[0], kFlags) == "r-x");
  CHECK(test::cell_text(table->rows[2], kPerms) == "rw-s");
  CHECK(has_warning(session, "vm_area_struct' at " + hex(areas[2])));
}

TEST_CASE("kmsg reads the records written into the printk ring; a record whose text block is not its own is skipped") {
  ThreeTasks t;
  const Addr descs =
      t.kernel.add_log({{.text = "first line", .facility = 0, .level = 6, .timestamp_ns = 1'500'000},
                        {.text = "second line", .facility = 1, .level = 3, .timestamp_ns = 2'000'001'000},
                        {.text = "third line", .level = 4, .timestamp_ns = 3'000'000'000}});
  SUBCASE("every record") {
    Session session = open_synthetic(t.kernel);
    auto table = run_plugin(session, "dmesg");
    REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
    REQUIRE(table->rows.size() == 3);
    CHECK(test::cell_text(table->rows[0], 0) == "kern");
    CHECK(test::cell_text(table->rows[0], 1) == "info");
    CHECK(test::cell_text(table->rows[0], 2) == "0.001500");
    CHECK(test::cell_text(table->rows[0], 4) == "first line");
    CHECK(test::cell_text(table->rows[1], 0) == "user");
    CHECK(test::cell_text(table->rows[1], 1) == "err");
    CHECK(test::cell_text(table->rows[1], 2) == "2.000001");
    CHECK(test::cell_text(table->rows[1], 3) == "Task(1)");
    CHECK(test::cell_integer(table->rows[2], 5) == 2);
    CHECK(session.diagnostics().warnings().empty());
  }
  SUBCASE("the second record's block says it belongs to another id") {
    const Addr begin = t.kernel.read<std::uint64_t>(
        t.kernel.field_address(descs + t.kernel.size_of("prb_desc"), "prb_desc", "text_blk_lpos.begin"));
    const Addr data = t.kernel.read<std::uint64_t>(t.kernel.field_address(
        t.kernel.read<std::uint64_t>(t.kernel.symbol("prb")), "printk_ringbuffer", "text_data_ring.data"));
    t.kernel.put<std::uint64_t>(data + begin, 7);
    Session session = open_synthetic(t.kernel);
    auto table = run_plugin(session, "dmesg");
    REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
    REQUIRE(table->rows.size() == 2);
    CHECK(test::cell_text(table->rows[1], 4) == "third line");
    CHECK(has_warning(session, "record 1 skipped"));
  }
  SUBCASE("the first record's text_len claims more than its block holds") {
    const Addr infos = t.kernel.read<std::uint64_t>(t.kernel.field_address(
        t.kernel.read<std::uint64_t>(t.kernel.symbol("prb")), "printk_ringbuffer", "desc_ring.infos"));
    t.kernel.set<std::uint16_t>(infos, "printk_info", "text_len", 4000);
    Session session = open_synthetic(t.kernel);
    auto table = run_plugin(session, "dmesg");
    REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
    REQUIRE(table->rows.size() == 3);
    // The block is "first line" padded to 8 bytes: the text is cut at the block's end, and said to be.
    CHECK(test::cell_text(table->rows[0], 4).value().starts_with("first line"));
    CHECK(test::cell_text(table->rows[0], 4).value().size() <= 16);
    CHECK(has_warning(session, "field 'printk_info.text_len' at " +
                                   hex(t.kernel.field_address(infos, "printk_info", "text_len")) +
                                   " is 4000 but the record's text block holds"));
  }
}

TEST_CASE("capabilities show the sets written into a task's credentials, by name and as /proc prints them") {
  ThreeTasks t;
  const Addr cred = t.kernel.read<std::uint64_t>(t.kernel.field_address(t.shell, "task_struct", "real_cred"));
  t.kernel.set<std::uint64_t>(cred, "cred", "cap_effective", (1u << 13) | 1u);  // net_raw, chown
  t.kernel.set<std::uint64_t>(cred, "cred", "cap_bset", 0x1ffffffffffull);      // all 41
  Session session = open_synthetic(t.kernel);
  auto table = run_plugin(session, "capabilities");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  const Row* shell = nullptr;
  for (const Row& row : table->rows)
    if (test::cell_integer(row, 1) == 200) shell = &row;
  REQUIRE(shell != nullptr);
  CHECK(test::cell_text(*shell, 7) == "chown, net_raw");
  CHECK(test::cell_text(*shell, 8) == "all");
  CHECK(test::cell_text(*shell, 5) == "");
  CHECK(test::cell_text(*shell, 12) == "0000000000002001");
  CHECK(session.diagnostics().warnings().empty());
}

TEST_CASE("an inode time too large for nanoseconds since the epoch is unreadable with a warning, not a wrapped value") {
  ThreeTasks t;
  t.kernel.add_file_table(t.sshd);
  Addr sock = 0;
  const Addr file = t.kernel.add_socket_file({.inode = 77}, &sock);
  t.kernel.install(t.sshd, 3, file);
  const Addr inode = t.kernel.read<std::uint64_t>(t.kernel.field_address(file, "file", "f_inode"));
  // 6.1's inode keeps i_atime as a timespec64: seconds far past what int64 nanoseconds hold.
  t.kernel.set<std::int64_t>(inode, "inode", "i_atime.tv_sec", 0x7200000000000000);
  Session session = open_synthetic(t.kernel);
  auto table = run_plugin(session, "handles");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  REQUIRE(table->rows.size() == 1);
  constexpr int kChanged = 9, kAccessed = 11;
  CHECK(std::get<Absence>(table->rows[0].cells[kAccessed]) == Absence::unreadable);
  CHECK(std::holds_alternative<std::int64_t>(table->rows[0].cells[kChanged]));
  CHECK(has_warning(session, "not a time"));
}

TEST_CASE("modules --dump rebuilds the sections and symbols written into a module; a missing page is counted, named") {
  ThreeTasks t;
  using namespace test::elf;
  const std::string code(0x1800, '\x90');  // two pages of text
  const std::string strings("hello\0world\0", 12);
  std::vector<Addr> at;
  const Addr module = t.kernel.add_module({.name = "rootkit",
                                           .sections = {{".text", code, 0}, {".rodata.str1.1", strings, 1}},
                                           .symbols = {{"hide_task", 0, 0x10}, {"greeting", 1, 6, 0x01}}},
                                          &at);
  const auto out = test::scratch_dir("synthetic-module-dump");
  PluginArgs args;
  args.values = {{"dump", out.string()}};
  enum { kName = 1, kOutput = 5, kParses = 11, kMissing = 12 };
  SUBCASE("every page present: the file holds what was written, at the addresses it was written to") {
    Session session = open_synthetic(t.kernel);
    auto table = run_plugin(session, "modules", args);
    REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
    REQUIRE(table->rows.size() == 1);
    const Row& row = table->rows[0];
    CHECK(test::cell_text(row, kName) == "rootkit");
    CHECK(test::cell_text(row, kOutput) == "kernel_module.rootkit." + hex(module) + ".elf");
    CHECK(row.cells[kParses] == Cell(true));
    CHECK(test::cell_integer(row, kMissing) == 0);
    const std::string file = test::read_file(out / ("kernel_module.rootkit." + hex(module) + ".elf"));
    const auto sections = elf_sections(file);
    const auto text = std::ranges::find(sections, ".text", &ElfSection::name);
    const auto rodata = std::ranges::find(sections, ".rodata.str1.1", &ElfSection::name);
    REQUIRE(text != sections.end());
    REQUIRE(rodata != sections.end());
    CHECK(text->address == at[0]);
    CHECK(rodata->address == at[1]);
    CHECK(file.compare(text->offset, code.size(), code) == 0);
    CHECK(file.compare(rodata->offset, strings.size(), strings) == 0);
    CHECK(elf_symbols(file, sections) ==
          std::multiset<std::pair<std::uint64_t, std::string>>{{at[0] + 0x10, "hide_task"}, {at[1] + 6, "greeting"}});
    CHECK(session.diagnostics().warnings().empty());
  }
  SUBCASE("the second page of .text is not in the snapshot: zeros, counted, and its address named") {
    t.kernel.unmap(at[0] + 0x1000);
    Session session = open_synthetic(t.kernel);
    auto table = run_plugin(session, "modules", args);
    REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
    REQUIRE(table->rows.size() == 1);
    CHECK(test::cell_integer(table->rows[0], kMissing) == 1);
    CHECK(table->rows[0].cells[kParses] == Cell(true));
    CHECK(has_warning(session, "module " + hex(module) +
                                   " (rootkit): 1 pages of its sections are not in the snapshot "
                                   "and are written as zeros: " +
                                   hex(at[0] + 0x1000)));
    const std::string file = test::read_file(out / ("kernel_module.rootkit." + hex(module) + ".elf"));
    const auto sections = elf_sections(file);
    const auto text = std::ranges::find(sections, ".text", &ElfSection::name);
    REQUIRE(text != sections.end());
    CHECK(file.compare(text->offset, 0x1000, code, 0, 0x1000) == 0);
    CHECK(file.compare(text->offset + 0x1000, 0x800, std::string(0x800, '\0')) == 0);
  }
  SUBCASE("a section table that is unreadable leaves the module listed and says why it was not rebuilt") {
    t.kernel.unmap(t.kernel.read<std::uint64_t>(t.kernel.field_address(module, "module", "sect_attrs")));
    Session session = open_synthetic(t.kernel);
    auto table = run_plugin(session, "modules", args);
    REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
    REQUIRE(table->rows.size() == 1);
    CHECK(table->rows[0].cells[kOutput] == Cell(Absence::unreadable));
    CHECK(has_warning(session, "(rootkit): not rebuilt"));
  }
}

TEST_CASE("malfind flags executable memory with no file, and rwx memory whose page is missing, with a warning") {
  ThreeTasks t;
  t.kernel.add_memory(t.shell, {{.start = 0x400000, .end = 0x401000, .flags = 0x5},    // r-x, no file
                                {.start = 0x600000, .end = 0x601000, .flags = 0x7},    // rwx, page missing
                                {.start = 0x700000, .end = 0x702000, .flags = 0x3}});  // rw-: not code
  const Addr code = t.kernel.map_user_page(0x400000);
  const std::string shellcode = "\x48\x31\xc0\xc3";  // xor rax, rax; ret
  t.kernel.write(code, shellcode.data(), shellcode.size());
  Session session = open_synthetic(t.kernel);
  auto table = run_plugin(session, "malfind");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  REQUIRE(table->rows.size() == 2);
  enum { kPid = 0, kStart = 2, kProtection = 5, kHexdump = 6, kReason = 9 };
  const Row& fileless = table->rows[0];
  CHECK(test::cell_integer(fileless, kPid) == 200);
  CHECK(test::cell_address(fileless, kStart) == 0x400000);
  CHECK(test::cell_text(fileless, kProtection) == "r-x");
  CHECK(test::cell_text(fileless, kReason) == "executable with no file behind it");
  std::vector<std::uint8_t> expected(64, 0);
  std::memcpy(expected.data(), shellcode.data(), shellcode.size());
  CHECK(fileless.cells[kHexdump] == Cell(Code{0x400000, expected}));
  const Row& rwx = table->rows[1];
  CHECK(test::cell_address(rwx, kStart) == 0x600000);
  CHECK(test::cell_text(rwx, kReason) == "writable and executable");
  CHECK(rwx.cells[kHexdump] == Cell(Absence::unreadable));
  CHECK(has_warning(session, "pid 200 area 0x600000-0x601000: its first page is not in the snapshot"));
}

TEST_CASE("hidden_modules finds a module unlinked from the list and from /sys/module; modxview says which route") {
  ThreeTasks t;
  const Addr visible =
      t.kernel.add_module({.name = "brd", .sections = {{".text", std::string(64, '\xcc'), 0}}, .symbols = {}});
  const Addr hidden = t.kernel.add_module({.name = "rootkit",
                                           .sections = {{".text", std::string(64, '\xcc'), 0}},
                                           .symbols = {},
                                           .listed = false,
                                           .in_sysfs = false});
  Session session = open_synthetic(t.kernel);
  auto listed = run_plugin(session, "modules");
  REQUIRE_MESSAGE(listed.has_value(), test::error_text(listed));
  REQUIRE(listed->rows.size() == 1);
  CHECK(test::cell_text(listed->rows[0], 1) == "brd");
  auto found = run_plugin(session, "hidden_modules");
  REQUIRE_MESSAGE(found.has_value(), test::error_text(found));
  REQUIRE(found->rows.size() == 1);
  CHECK(test::cell_address(found->rows[0], 0) == hidden);
  CHECK(test::cell_text(found->rows[0], 1) == "rootkit");
  auto views = run_plugin(session, "modxview");
  REQUIRE_MESSAGE(views.has_value(), test::error_text(views));
  REQUIRE(views->rows.size() == 2);
  enum { kName, kAddress, kProcfs, kSysfs, kScan, kTaints, kSuspicious };
  for (const Row& row : views->rows) {
    const bool is_hidden = test::cell_address(row, kAddress) == hidden;
    CHECK(test::cell_address(row, kAddress) == (is_hidden ? hidden : visible));
    CHECK(test::cell_text(row, kName) == (is_hidden ? "rootkit" : "brd"));
    CHECK(row.cells[kProcfs] == Cell(!is_hidden));
    CHECK(row.cells[kSysfs] == Cell(!is_hidden));
    CHECK(row.cells[kScan] == Cell(true));
    CHECK(row.cells[kSuspicious] == Cell(is_hidden));
  }
}

TEST_CASE("check_creds accuses a cred two processes hold, and only that one") {
  ThreeTasks t;
  const Addr sshd_cred = t.kernel.read<std::uint64_t>(t.kernel.field_address(t.sshd, "task_struct", "real_cred"));
  t.kernel.set<std::uint64_t>(t.shell, "task_struct", "real_cred", sshd_cred);  // bash borrows sshd's root cred
  Session session = open_synthetic(t.kernel);
  auto rows = run_plugin(session, "check_creds");
  REQUIRE_MESSAGE(rows.has_value(), test::error_text(rows));
  REQUIRE(rows->rows.size() == 1);
  CHECK(test::cell_address(rows->rows[0], 0) == sshd_cred);
  CHECK(test::cell_text(rows->rows[0], 1) == "100, 200");
  CHECK(rows->rows[0].cells[3] == Cell(true));
}
