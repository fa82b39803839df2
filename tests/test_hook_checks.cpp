// check_syscall, check_idt, check_afinfo, tty_check, keyboard_notifiers and check_creds on clean
// guests: nothing is accused; every handler is where the guest's own /proc/kallsyms puts the entry
// point it names (the system-call table's slots by their ABI numbers, the IDT's exception gates by
// vector), and every process /proc shows holds credentials of its own.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"

using namespace vmi;

namespace {

// Every name of the guest's /proc/kallsyms with its address (the kernel's own and modules').
std::multimap<std::string, std::uint64_t> kallsyms_by_name(const test::Sample& sample) {
  std::ifstream in(sample.dir / "truth" / "kallsyms");
  REQUIRE(in.good());
  std::multimap<std::string, std::uint64_t> symbols;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string address;
    std::string type;
    std::string name;
    fields >> address >> type >> name;
    symbols.emplace(name, std::stoull(address, nullptr, 16));
  }
  REQUIRE(!symbols.empty());
  return symbols;
}

bool kallsyms_has(const std::multimap<std::string, std::uint64_t>& symbols, const std::string& name,
                  std::uint64_t address) {
  auto [first, last] = symbols.equal_range(name);
  return std::any_of(first, last, [&](const auto& entry) { return entry.second == address; });
}

// "name+0x0" → "name"; anything else (an offset into a function) stays as it is.
std::string entry_name(const std::string& symbol) {
  return symbol.ends_with("+0x0") ? symbol.substr(0, symbol.size() - 4) : symbol;
}

enum SyscallColumn : int { kTableName = 1, kIndex, kHandler, kSymbol, kModule, kExpected, kHooked };

void check_syscalls_clean(Session& session, const test::Sample& sample) {
  const auto kallsyms = kallsyms_by_name(sample);
  auto table = run_plugin(session, "check_syscall");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  std::map<std::string, std::size_t> rows_per_table;
  std::map<std::int64_t, std::string> slot_symbols;
  for (const Row& row : table->rows) {
    const std::string name = test::cell_text(row, kTableName).value();
    const std::string symbol = test::cell_text(row, kSymbol).value_or("-");
    CAPTURE(name);
    CAPTURE(symbol);
    ++rows_per_table[name];
    CHECK(row.cells[kHooked] == Cell(false));
    CHECK(test::cell_text(row, kModule) == "__kernel__");
    REQUIRE(symbol.ends_with("+0x0"));  // every handler is an entry point's first byte
    CHECK(kallsyms_has(kallsyms, entry_name(symbol), test::cell_address(row, kHandler).value()));
    if (name == "64bit") slot_symbols[test::cell_integer(row, kIndex).value()] = entry_name(symbol);
  }
  // The x86-64 ABI's numbers: read 0, write 1, open 2, execve 59, stat 4 (the kernel's newstat).
  CHECK(slot_symbols[0] == "__x64_sys_read");
  CHECK(slot_symbols[1] == "__x64_sys_write");
  CHECK(slot_symbols[2] == "__x64_sys_open");
  CHECK(slot_symbols[4] == "__x64_sys_newstat");
  CHECK(slot_symbols[59] == "__x64_sys_execve");
  CHECK(rows_per_table["64bit"] >= 440);
  // Kernels with the branch-history mitigation dispatch through x64_sys_call: its targets are read.
  if (kallsyms.contains("x64_sys_call")) CHECK(rows_per_table["x64_sys_call"] >= 300);
  MESSAGE(sample.name, ": ", rows_per_table["64bit"], " table slots, ", rows_per_table["x64_sys_call"],
          " x64_sys_call targets, none hooked");
}

enum IdtColumn : int { kVector, kAddress, kIdtModule, kIdtSymbol, kPresent, kIdtHooked, kTable };

void check_idt_clean(Session& session, const test::Sample& sample) {
  const auto kallsyms = kallsyms_by_name(sample);
  auto table = run_plugin(session, "check_idt");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  REQUIRE(table->rows.size() == 256);
  std::map<std::uint64_t, std::string> handlers;
  for (const Row& row : table->rows) {
    const auto vector = test::cell_address(row, kVector).value();
    CAPTURE(vector);
    CHECK(row.cells[kIdtHooked] == Cell(false));
    REQUIRE(std::holds_alternative<bool>(row.cells[kPresent]));
    if (!std::get<bool>(row.cells[kPresent])) continue;
    CHECK(test::cell_text(row, kIdtModule) == "__kernel__");
    handlers[vector] = test::cell_text(row, kIdtSymbol).value_or("-");
    // Each gate's handler is a symbol of the guest's kallsyms or inside one (the IRQ stubs).
    if (handlers[vector].ends_with("+0x0"))
      CHECK(kallsyms_has(kallsyms, entry_name(handlers[vector]), test::cell_address(row, kAddress).value()));
  }
  // Every vCPU the snapshot saved runs on idt_table (through its alias in the CPU entry area): no
  // other table's gates follow.
  CHECK(std::ranges::all_of(table->rows, [](const Row& row) { return test::cell_text(row, kTable) == "idt_table"; }));
  std::size_t idtrs = 0;
  for (const CpuState& cpu : session.image().cpu_states()) {
    const auto base = cpu.registers.find("idt_base");
    if (base == cpu.registers.end()) continue;
    ++idtrs;
    const auto kernel = session.kernel();
    REQUIRE(kernel.has_value());
    const auto idtr = (*kernel)->kernel_layer().translate(base->second);
    const auto idt_table = (*kernel)->kernel_layer().translate(kallsyms.find("idt_table")->second);
    REQUIRE(idtr.has_value());
    REQUIRE(idt_table.has_value());
    CHECK(idtr->physical == idt_table->physical);
  }
  if (session.image().format() != "raw") CHECK(idtrs == test::guest_number(sample, "NPROC_ONLN"));
  CHECK(handlers[0] == "asm_exc_divide_error+0x0");
  CHECK(handlers[3] == "asm_exc_int3+0x0");
  CHECK(handlers[14] == "asm_exc_page_fault+0x0");
  CHECK(handlers.size() > 200);  // the exceptions, system vectors and external interrupt stubs
}

void check_creds_clean(Session& session, const test::Sample& sample) {
  auto shared = run_plugin(session, "check_creds");
  REQUIRE_MESSAGE(shared.has_value(), test::error_text(shared));
  CHECK(shared->rows.empty());
  PluginArgs all;
  all.values = {{"all", ""}};
  auto every = run_plugin(session, "check_creds", all);
  REQUIRE_MESSAGE(every.has_value(), test::error_text(every));
  std::set<std::int64_t> holders;
  for (const Row& row : every->rows) {
    CHECK(row.cells[3] == Cell(false));
    CHECK(test::cell_integer(row, 2) == 1);
    holders.insert(std::stoll(test::cell_text(row, 1).value()));
  }
  std::set<std::int64_t> processes;
  for (const auto& p : sample.processes) processes.insert(p.pid);
  CHECK(holders == processes);
}

// check_afinfo, tty_check and keyboard_notifiers on a clean guest: nothing accused, and every
// handler is the entry point of a kernel function at the address the guest's kallsyms gives it.
// Returns the rows, for the checks' own expectations.
std::vector<Row> check_handlers_clean(Session& session, const test::Sample& sample, std::string_view plugin,
                                      int address, int module, int symbol, int hooked) {
  const auto kallsyms = kallsyms_by_name(sample);
  std::set<std::uint64_t> entry_points;
  for (const auto& [name, at] : kallsyms) entry_points.insert(at);
  auto table = run_plugin(session, plugin);
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  for (const Row& row : table->rows) {
    const std::string name = test::cell_text(row, symbol).value_or("-");
    const std::uint64_t at = test::cell_address(row, address).value();
    CAPTURE(name);
    CHECK(row.cells[hooked] == Cell(false));
    CHECK(test::cell_text(row, module) == "__kernel__");
    CHECK(entry_points.contains(at));  // the first byte of a function the guest names
    if (name.ends_with("+0x0")) CHECK(kallsyms_has(kallsyms, entry_name(name), at));
  }
  return table->rows;
}

// The seq_operations of /proc/net the guest's kallsyms names: each shows its four members.
void check_afinfo_clean(Session& session, const test::Sample& sample) {
  const auto rows = check_handlers_clean(session, sample, "check_afinfo", 2, 3, 4, 5);
  std::map<std::string, int> members;
  for (const Row& row : rows) ++members[test::cell_text(row, 0).value()];
  const auto kallsyms = kallsyms_by_name(sample);
  for (const char* table : {"tcp4_seq_ops", "tcp6_seq_ops", "udp_seq_ops", "udp6_seq_ops", "raw_seq_ops",
                            "raw6_seq_ops", "unix_seq_ops", "packet_seq_ops", "arp_seq_ops", "netlink_seq_ops"}) {
    CAPTURE(table);
    CHECK(members[table] == (kallsyms.contains(table) ? 4 : 0));
  }
  CHECK(members["tcp4_seq_ops"] == 4);
}

// Every tty open in the guest (its console at least) has a line discipline in kernel code.
void tty_check_clean(Session& session, const test::Sample& sample) {
  const auto rows = check_handlers_clean(session, sample, "tty_check", 1, 2, 3, 4);
  CHECK(!rows.empty());
  MESSAGE(sample.name, ": ", rows.size(), " ttys, none hooked");
}

void keyboard_notifiers_clean(Session& session, const test::Sample& sample) {
  check_handlers_clean(session, sample, "keyboard_notifiers", 0, 1, 2, 3);
}

}  // namespace

TEST_CASE("check_afinfo, tty_check and keyboard_notifiers on every clean sample accuse nothing") {
  test::for_each_sample_image(check_afinfo_clean);
  test::for_each_sample_image(tty_check_clean);
  test::for_each_sample_image(keyboard_notifiers_clean);
}

TEST_CASE("check_afinfo, tty_check and keyboard_notifiers on every recovery kernel accuse nothing") {
  test::for_each_recovery_image(check_afinfo_clean);
  test::for_each_recovery_image(tty_check_clean);
  test::for_each_recovery_image(keyboard_notifiers_clean);
}

TEST_CASE("check_creds on every clean sample, raw and ELF: each process /proc shows holds its own cred") {
  test::for_each_sample_image(check_creds_clean);
}

TEST_CASE("check_syscall on every clean sample, raw and ELF, accuses nothing; slots hold kallsyms' entry points") {
  test::for_each_sample_image(check_syscalls_clean);
}

TEST_CASE("check_syscall on every recovery kernel (6.1 flavours, 6.12's x64_sys_call) accuses nothing") {
  test::for_each_recovery_image(check_syscalls_clean);
}

TEST_CASE("check_idt on every clean sample, raw and ELF, accuses no gate; exception gates hold their handlers") {
  test::for_each_sample_image(check_idt_clean);
}

TEST_CASE("check_idt on every recovery kernel accuses no gate") { test::for_each_recovery_image(check_idt_clean); }
