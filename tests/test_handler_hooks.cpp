// check_afinfo, tty_check, keyboard_notifiers and check_idt on synthetic kernels: a handler moved
// out of known code is accused, one left in the kernel's text is not, a notifier chain that loops
// stops, and a vCPU running on an IDT of its own has that table's differing gates accused.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "samples.hpp"
#include "support.hpp"
#include "synthetic_session.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"

using namespace vmi;
using vmi_synthetic::SyntheticKernel;

namespace {

// The rows of `plugin` whose Hooked column (`hooked`) is true.
std::vector<Row> accused(Session& session, std::string_view plugin, int hooked) {
  auto table = run_plugin(session, plugin);
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  std::vector<Row> rows;
  std::ranges::copy_if(table->rows, std::back_inserter(rows),
                       [&](const Row& row) { return row.cells[hooked] == Cell(true); });
  return rows;
}

}  // namespace

TEST_CASE("check_afinfo accuses exactly a /proc/net handler moved out of the kernel's text") {
  SyntheticKernel kernel(test::shipped_isf());
  const Addr tcp = kernel.symbol("tcp4_seq_ops");
  for (const char* member : {"start", "next", "stop", "show"})
    kernel.set<std::uint64_t>(tcp, "seq_operations", member, kernel.symbol("tcp_seq_next"));
  const Addr implant = kernel.allocate(64);
  kernel.set<std::uint64_t>(tcp, "seq_operations", "show", implant);
  Session session = test::open_synthetic(kernel);
  const auto rows = accused(session, "check_afinfo", 5);
  REQUIRE(rows.size() == 1);
  CHECK(test::cell_text(rows[0], 0) == "tcp4_seq_ops");
  CHECK(test::cell_text(rows[0], 1) == "show");
  CHECK(test::cell_address(rows[0], 2) == implant);
  auto all = run_plugin(session, "check_afinfo");
  REQUIRE(all.has_value());
  const auto next = std::ranges::find_if(all->rows, [](const Row& row) {
    return test::cell_text(row, 0) == "tcp4_seq_ops" && test::cell_text(row, 1) == "next";
  });
  REQUIRE(next != all->rows.end());
  CHECK(test::cell_text(*next, 4) == "tcp_seq_next+0x0");
}

TEST_CASE("tty_check accuses a tty whose receive_buf lies outside known code, not one in n_tty") {
  SyntheticKernel kernel(test::shipped_isf());
  const Addr drivers = kernel.symbol("tty_drivers");
  kernel.init_list(drivers);
  const Addr driver = kernel.allocate("tty_driver");
  kernel.list_add_tail(drivers, kernel.field_address(driver, "tty_driver", "tty_drivers"));
  kernel.set<std::uint32_t>(driver, "tty_driver", "num", 3);
  const Addr ttys = kernel.allocate(3 * 8);
  kernel.set<std::uint64_t>(driver, "tty_driver", "ttys", ttys);
  auto add_tty = [&](int line, const char* name, Addr receive_buf) {
    const Addr tty = kernel.allocate("tty_struct");
    kernel.write(kernel.field_address(tty, "tty_struct", "name"), name, std::strlen(name) + 1);
    const Addr ldisc = kernel.allocate("tty_ldisc");
    const Addr ops = kernel.allocate("tty_ldisc_ops");
    kernel.set<std::uint64_t>(ops, "tty_ldisc_ops", "receive_buf", receive_buf);
    kernel.set<std::uint64_t>(ldisc, "tty_ldisc", "ops", ops);
    kernel.set<std::uint64_t>(tty, "tty_struct", "ldisc", ldisc);
    kernel.put<std::uint64_t>(ttys + line * 8, tty);
  };
  add_tty(0, "ttyS0", kernel.symbol("n_tty_receive_buf"));
  add_tty(2, "ttyS2", kernel.allocate(64));  // line 1 never opened: no tty_struct
  Session session = test::open_synthetic(kernel);
  auto table = run_plugin(session, "tty_check");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  REQUIRE(table->rows.size() == 2);
  CHECK(test::cell_text(table->rows[0], 0) == "ttyS0");
  CHECK(test::cell_text(table->rows[0], 3) == "n_tty_receive_buf+0x0");
  CHECK(table->rows[0].cells[4] == Cell(false));
  CHECK(test::cell_text(table->rows[1], 0) == "ttyS2");
  CHECK(table->rows[1].cells[4] == Cell(true));
  CHECK(session.diagnostics().warnings().empty());
}

TEST_CASE("tty_check reads at most its budget of tty slots over all drivers, with one warning") {
  SyntheticKernel kernel(test::shipped_isf());
  const Addr drivers = kernel.symbol("tty_drivers");
  kernel.init_list(drivers);
  // Five drivers of 65536 lines each (each within the per-driver bound) share one ttys array
  // whose first slot holds a tty: four fill the 2^18-slot budget, the fifth is refused.
  constexpr std::uint32_t kLines = 1u << 16;
  const Addr ttys = kernel.allocate(std::size_t{kLines} * 8);
  const Addr tty = kernel.allocate("tty_struct");
  kernel.write(kernel.field_address(tty, "tty_struct", "name"), "ttyS0", 6);
  const Addr ldisc = kernel.allocate("tty_ldisc");
  const Addr ops = kernel.allocate("tty_ldisc_ops");
  kernel.set<std::uint64_t>(ops, "tty_ldisc_ops", "receive_buf", kernel.symbol("n_tty_receive_buf"));
  kernel.set<std::uint64_t>(ldisc, "tty_ldisc", "ops", ops);
  kernel.set<std::uint64_t>(tty, "tty_struct", "ldisc", ldisc);
  kernel.put<std::uint64_t>(ttys, tty);
  for (int i = 0; i < 5; ++i) {
    const Addr driver = kernel.allocate("tty_driver");
    kernel.list_add_tail(drivers, kernel.field_address(driver, "tty_driver", "tty_drivers"));
    kernel.set<std::uint32_t>(driver, "tty_driver", "num", kLines);
    kernel.set<std::uint64_t>(driver, "tty_driver", "ttys", ttys);
  }
  Session session = test::open_synthetic(kernel);
  auto table = run_plugin(session, "tty_check");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  CHECK(table->rows.size() == 4);
  const auto& warnings = session.diagnostics().warnings();
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("more than 262144 tty slots") != std::string::npos);
}

TEST_CASE("keyboard_notifiers accuses a callback outside known code and stops at a loop, with a warning") {
  SyntheticKernel kernel(test::shipped_isf());
  const Addr head = kernel.field_address(kernel.symbol("keyboard_notifier_list"), "atomic_notifier_head", "head");
  const Addr first = kernel.allocate("notifier_block");
  const Addr second = kernel.allocate("notifier_block");
  kernel.set<std::uint64_t>(first, "notifier_block", "notifier_call", kernel.symbol("n_tty_receive_buf"));
  kernel.set<std::uint64_t>(first, "notifier_block", "next", second);
  const Addr implant = kernel.allocate(64);
  kernel.set<std::uint64_t>(second, "notifier_block", "notifier_call", implant);
  kernel.put<std::uint64_t>(head, first);
  {
    Session session = test::open_synthetic(kernel);
    const auto rows = accused(session, "keyboard_notifiers", 3);
    REQUIRE(rows.size() == 1);
    CHECK(test::cell_address(rows[0], 0) == implant);
    CHECK(test::cell_text(rows[0], 4) == hex(second));
    CHECK(session.diagnostics().warnings().empty());
  }
  kernel.set<std::uint64_t>(second, "notifier_block", "next", first);  // a loop
  Session session = test::open_synthetic(kernel);
  auto table = run_plugin(session, "keyboard_notifiers");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  CHECK(table->rows.size() == 2);
  const auto& warnings = session.diagnostics().warnings();
  CHECK(std::ranges::any_of(
      warnings, [&](const std::string& w) { return w.find("returns to " + hex(first)) != std::string::npos; }));
}

namespace {

// An x86-64 interrupt gate (Intel SDM vol. 3, 6.14.1): present, DPL 0, kernel code segment.
std::array<std::byte, 16> interrupt_gate(Addr handler) {
  std::array<std::byte, 16> gate{};
  const auto put = [&gate]<class T>(std::size_t offset, T value) {
    std::memcpy(gate.data() + offset, &value, sizeof value);
  };
  put(0, static_cast<std::uint16_t>(handler));
  put(2, std::uint16_t{0x10});
  put(4, std::uint16_t{0x8e00});
  put(6, static_cast<std::uint16_t>(handler >> 16));
  put(8, static_cast<std::uint32_t>(handler >> 32));
  return gate;
}

enum IdtColumn : int { kVector, kAddress, kModule, kSymbol, kPresent, kHooked, kTable };

}  // namespace

TEST_CASE("check_idt reads the IDT a vCPU loaded when it is not idt_table, accusing exactly the gates that differ") {
  SyntheticKernel kernel(test::shipped_isf());
  const Addr idt = kernel.symbol("idt_table");
  const auto int3 = interrupt_gate(kernel.symbol("asm_exc_int3"));
  const auto page_fault = interrupt_gate(kernel.symbol("asm_exc_page_fault"));
  kernel.write(idt + 3 * 16, int3.data(), int3.size());
  kernel.write(idt + 14 * 16, page_fault.data(), page_fault.size());
  // A copy of the table with the breakpoint gate sent to code outside the kernel.
  const Addr copy = kernel.allocate(256 * 16);
  const Addr implant = kernel.allocate(64);
  const auto hooked_int3 = interrupt_gate(implant);
  kernel.write(copy + 3 * 16, hooked_int3.data(), hooked_int3.size());
  kernel.write(copy + 14 * 16, page_fault.data(), page_fault.size());
  CpuState clean{.index = 0, .registers = {{"idt_base", idt}}};
  CpuState rootkit{.index = 1, .registers = {{"idt_base", copy}}};
  Session session = test::open_synthetic(kernel, {clean, rootkit});
  auto table = run_plugin(session, "check_idt");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  REQUIRE(table->rows.size() == 2 * 256);  // idt_table, then vCPU 1's; vCPU 0 runs on idt_table
  std::vector<std::pair<std::string, std::uint64_t>> accused;
  for (const Row& row : table->rows)
    if (row.cells[kHooked] == Cell(true))
      accused.emplace_back(test::cell_text(row, kTable).value(), test::cell_address(row, kVector).value());
  CHECK(accused == std::vector<std::pair<std::string, std::uint64_t>>{{"vCPU 1 IDTR", 3}});
  CHECK(test::cell_text(table->rows[256 + 14], kSymbol) == "asm_exc_page_fault+0x0");
  CHECK(test::cell_address(table->rows[256 + 3], kAddress) == implant);
  const auto& warnings = session.diagnostics().warnings();
  CHECK(std::ranges::any_of(
      warnings, [&](const std::string& w) { return w.find("vCPU 1 IDTR base " + hex(copy)) != std::string::npos; }));
}
