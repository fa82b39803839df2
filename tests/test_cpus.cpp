// linux.cpus (`cpus`, Requirement::vcpus) against gdb reading the same ELF core's NT_PRSTATUS
// notes and the guest's own /proc/kallsyms.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "samples.hpp"
#include "support.hpp"
#include "synthetic_session.hpp"
#include "vmi/linux.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"

using namespace vmi;

namespace {

enum CpuColumn : int { kCpu, kMode, kRip, kSymbol, kRsp, kCr3, kCr3Pid, kTask, kPid, kTid, kComm, kIdle, kBacktrace };

// gdb's view of each vCPU in an ELF core: LWP n is the n-th NT_PRSTATUS note (QEMU writes
// vCPU n-1 there). register name -> value, per LWP.
std::map<int, std::map<std::string, std::uint64_t>> gdb_registers(const std::filesystem::path& core) {
  auto gdb = test::run_command(
      {"gdb", "-batch", "-nx", "-c", core.string(), "-ex", "thread apply all info registers rip rsp cs"});
  REQUIRE_MESSAGE(gdb.exit_code == 0, gdb.err);
  std::map<int, std::map<std::string, std::uint64_t>> registers;
  const std::regex thread_line(R"(^Thread \d+ \(LWP (\d+)\):)");
  const std::regex register_line(R"(^(rip|rsp|cs)\s+0x([0-9a-f]+)\s)");
  std::istringstream lines(gdb.out);
  int lwp = -1;
  for (std::string line; std::getline(lines, line);) {
    std::smatch match;
    if (std::regex_search(line, match, thread_line)) {
      lwp = std::stoi(match[1]);
    } else if (lwp >= 0 && std::regex_search(line, match, register_line)) {
      registers[lwp][match[1]] = std::stoull(match[2], nullptr, 16);
    }
  }
  return registers;
}

// The guest's /proc/kallsyms: address -> every name there (aliases share an address).
std::map<std::uint64_t, std::set<std::string>> guest_kallsyms(const test::Sample& sample) {
  std::ifstream in(sample.dir / "truth" / "kallsyms");
  REQUIRE(in.good());
  std::map<std::uint64_t, std::set<std::string>> symbols;
  std::string address, type, name;
  while (in >> address >> type) {
    std::getline(in, name);
    name = name.substr(name.find_first_not_of(" \t"));
    if (name.find('[') != std::string::npos) continue;  // a module's symbol
    symbols[std::stoull(address, nullptr, 16)].insert(name.substr(0, name.find_first_of(" \t")));
  }
  return symbols;
}

// Each vCPU's current task, checked by routes other than the per-CPU pointer: an idle CPU runs
// the idle task the kernel names swapper/<cpu>; a busy one runs a task /proc shows, and when that
// task has an mm and the vCPU is in it (user mode), CR3 holds its page tables (mm->pgd; under
// page-table isolation user CR3 is the pgd's user half, bit 12, plus a PCID in the low bits).
void check_current_tasks(Session& session, const test::Sample& sample) {
  if (session.image().cpu_states().empty()) return;  // memory.raw: no registers
  auto table = run_plugin(session, "cpus");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  REQUIRE(table->rows.size() == session.image().cpu_states().size());
  auto kernel = session.kernel();
  REQUIRE(kernel.has_value());
  const bool pti = test::guest_fact(sample, "CPU_PTI") == "1";
  std::set<std::int64_t> truth_tids;
  for (const test::TruthThread& thread : sample.threads) truth_tids.insert(thread.tid);
  for (const Row& row : table->rows) {
    const auto cpu = test::cell_integer(row, kCpu).value();
    const auto tid = test::cell_integer(row, kTid);
    CAPTURE(cpu);
    REQUIRE(tid.has_value());
    CHECK(row.cells[kIdle] == Cell(*tid == 0));
    // Whatever CR3 holds, it is the kernel's own page tables (0) or a process's that /proc shows,
    // unless no process holds them any more.
    if (const auto owner = test::cell_integer(row, kCr3Pid); owner && *owner != 0)
      CHECK(test::truth_process(sample, *owner) != nullptr);
    if (*tid == 0) {
      CHECK(test::cell_text(row, kComm) == "swapper/" + std::to_string(cpu));
      continue;
    }
    CHECK(truth_tids.contains(*tid));
    if (test::cell_text(row, kMode) != "user") continue;
    const Addr address = test::cell_address(row, kTask).value();
    Diagnostics diagnostics;
    const auto tasks = linux_objects::read_tasks(**kernel, std::span(&address, 1), diagnostics);
    REQUIRE(tasks.has_value());
    REQUIRE(tasks->size() == 1);
    const auto layout = linux_objects::memory_layout(**kernel, tasks->front(), diagnostics);
    REQUIRE(layout.has_value());
    const auto* memory = std::get_if<linux_objects::MemoryLayout>(&*layout);
    REQUIRE(memory != nullptr);
    const std::uint64_t cr3 = test::cell_address(row, kCr3).value();
    const std::uint64_t pgd = memory->page_table_root;
    CHECK(((cr3 & ~0xfffull) == pgd || (pti && (cr3 & ~0x1fffull) == pgd)));
    CHECK(test::cell_integer(row, kCr3Pid) == test::cell_integer(row, kPid));
  }
}

// Every vCPU's registers as QEMU's monitor reported them in the stop the snapshot was taken in
// (`info registers -a`, truth/registers.txt): "CPU#n", then "NAME=hex" pairs; CS as its selector.
std::map<std::int64_t, std::map<std::string, std::uint64_t>> monitor_registers(const test::Sample& sample) {
  std::ifstream in(sample.dir / "truth" / "registers.txt");
  REQUIRE_MESSAGE(in.good(), "no truth/registers.txt in ", sample.dir.string());
  std::map<std::int64_t, std::map<std::string, std::uint64_t>> registers;
  const std::regex cpu_line(R"(^CPU#(\d+))");
  const std::regex pair(R"((RIP|RSP|CR3|CPL)=([0-9a-fA-F]+))");
  const std::regex cs_line(R"(^CS =([0-9a-f]{4}) )");
  std::int64_t cpu = -1;
  for (std::string line; std::getline(in, line);) {
    std::smatch match;
    if (std::regex_search(line, match, cpu_line)) {
      cpu = std::stoll(match[1]);
      continue;
    }
    if (cpu < 0) continue;
    if (std::regex_search(line, match, cs_line)) registers[cpu]["CS"] = std::stoull(match[1], nullptr, 16);
    for (std::sregex_iterator it(line.begin(), line.end(), pair), end; it != end; ++it)
      registers[cpu][(*it)[1]] = std::stoull((*it)[2], nullptr, 16);
  }
  REQUIRE(!registers.empty());
  return registers;
}

// A kernel-mode vCPU's backtrace: RIP's symbol first, every frame a function the guest's
// /proc/kallsyms lists; an idle vCPU's (swapper/N) runs through the idle loop as every x86 CPU
// enters it: do_idle, called by cpu_startup_entry, called by rest_init on the boot CPU and by
// start_secondary on the others.
void check_backtrace(const Row& row, const std::map<std::uint64_t, std::set<std::string>>& kallsyms) {
  const auto text = test::cell_text(row, kBacktrace);
  REQUIRE_MESSAGE(text.has_value(), "no backtrace for a vCPU in kernel mode");
  CHECK(text->starts_with(test::cell_text(row, kSymbol).value_or("?") + " <- "));
  std::set<std::string> names;
  for (const auto& [address, aliases] : kallsyms) names.insert(aliases.begin(), aliases.end());
  std::vector<std::string> frames;
  for (std::size_t at = 0; at != std::string::npos;) {
    const std::size_t next = text->find(" <- ", at);
    frames.push_back(text->substr(at, next == std::string::npos ? next : next - at));
    at = next == std::string::npos ? next : next + 4;
  }
  for (const std::string& frame : frames) {
    if (frame.find(" [") != std::string::npos) continue;  // a module's
    CHECK_MESSAGE(names.contains(frame.substr(0, frame.rfind("+0x"))), frame);
  }
  if (test::cell_integer(row, kTid) != 0) return;
  const std::string caller = test::cell_integer(row, kCpu) == 0 ? "rest_init+" : "start_secondary+";
  std::size_t next = 0;
  for (const std::string& function : {std::string("do_idle+"), std::string("cpu_startup_entry+"), caller}) {
    const auto found = std::ranges::find_if(frames.begin() + static_cast<std::ptrdiff_t>(next), frames.end(),
                                            [&](const std::string& frame) { return frame.starts_with(function); });
    CHECK_MESSAGE(found != frames.end(), function, " is not in the idle vCPU's backtrace ", *text, " after frame ",
                  next);
    if (found != frames.end()) next = static_cast<std::size_t>(found - frames.begin()) + 1;
  }
}

}  // namespace

TEST_CASE(
    "cpus names each vCPU's current task: swapper/N when idle, else a task /proc shows whose page tables CR3 "
    "holds in user mode") {
  test::for_each_sample_image(check_current_tasks);
  test::for_each_rootkit_image(check_current_tasks);
}

TEST_CASE("cpus names each vCPU's current task on every recovery kernel (pcpu_hot on 6.12)") {
  test::for_each_recovery_image(check_current_tasks);
}

TEST_CASE(
    "cpus on every sample's ELF core shows each vCPU's RIP, RSP and mode as gdb reads them, RIP and the backtrace "
    "symbolised as kallsyms does, an idle vCPU's through the idle loop") {
  for (const auto& sample : test::load_samples()) {
    CAPTURE(sample.name);
    const auto core = sample.dir / "memory.elf";
    Session session = test::open_sample(core, test::profile_for(sample));
    auto table = run_plugin(session, "cpus");
    REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
    const auto gdb = gdb_registers(core);
    REQUIRE(!gdb.empty());
    CHECK(table->rows.size() == gdb.size());
    const auto kallsyms = guest_kallsyms(sample);
    for (const Row& row : table->rows) {
      const auto cpu = test::cell_integer(row, kCpu).value();
      CAPTURE(cpu);
      REQUIRE(gdb.contains(static_cast<int>(cpu) + 1));
      const auto& expected = gdb.at(static_cast<int>(cpu) + 1);
      CHECK(test::cell_address(row, kRip) == expected.at("rip"));
      CHECK(test::cell_address(row, kRsp) == expected.at("rsp"));
      const bool user = (expected.at("cs") & 3) == 3;
      CHECK(test::cell_text(row, kMode) == std::string(user ? "user" : "kernel"));
      CHECK(test::cell_address(row, kCr3).has_value());  // QEMU's own note carries it
      if (user) continue;
      // The guest's nearest kallsyms entry at or below RIP, and the distance to it.
      const std::uint64_t rip = expected.at("rip");
      auto after = kallsyms.upper_bound(rip);
      REQUIRE(after != kallsyms.begin());
      const auto& [start, names] = *std::prev(after);
      const auto symbol = test::cell_text(row, kSymbol).value_or("");
      const auto plus = symbol.rfind("+0x");
      REQUIRE(plus != std::string::npos);
      CHECK_MESSAGE(names.contains(symbol.substr(0, plus)), symbol);
      CHECK(std::stoull(symbol.substr(plus + 3), nullptr, 16) == rip - start);
      check_backtrace(row, kallsyms);
    }
    CHECK(session.diagnostics().warnings().empty());
  }
}

TEST_CASE("cpus on the ELF core and the migration stream equals the registers QEMU's monitor reported at the stop") {
  for (const auto& sample : test::load_vmexit_samples()) {
    const auto monitor = monitor_registers(sample);
    const auto kallsyms = guest_kallsyms(sample);
    for (const char* format : {"memory.elf", "memory.savevm"}) {
      CAPTURE(sample.name);
      CAPTURE(format);
      Session session = test::open_sample(sample.dir / format, test::profile_for(sample));
      auto table = run_plugin(session, "cpus");
      REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
      CHECK(table->rows.size() == monitor.size());
      for (const Row& row : table->rows) {
        const auto cpu = test::cell_integer(row, kCpu).value();
        CAPTURE(cpu);
        REQUIRE(monitor.contains(cpu));
        const auto& expected = monitor.at(cpu);
        CHECK(test::cell_address(row, kRip) == expected.at("RIP"));
        CHECK(test::cell_address(row, kRsp) == expected.at("RSP"));
        CHECK(test::cell_address(row, kCr3) == expected.at("CR3"));
        CHECK(expected.at("CS") % 4 == expected.at("CPL"));
        CHECK(test::cell_text(row, kMode) == std::string(expected.at("CPL") == 3 ? "user" : "kernel"));
        if (expected.at("CPL") == 0) check_backtrace(row, kallsyms);
      }
      CHECK_MESSAGE(session.diagnostics().warnings().empty(), test::joined(session.diagnostics().warnings()));
      check_current_tasks(session, sample);
    }
  }
}

TEST_CASE("cpus on an image with no saved registers (raw) fails naming the image, before any row") {
  const auto samples = test::load_samples();
  Session session = test::open_sample(samples.front().dir / "memory.raw", test::profile_for(samples.front()));
  auto table = run_plugin(session, "linux.cpus");
  REQUIRE_FALSE(table.has_value());
  CHECK(table.error().message.find("needs vCPU registers") != std::string::npos);
  CHECK(table.error().message.find("memory.raw") != std::string::npos);
}

TEST_CASE("cpus reads each vCPU's current task from its per-CPU area; an unreadable one is marked, naming the CPU") {
  vmi_synthetic::SyntheticKernel kernel(test::shipped_isf());
  const Addr worker = kernel.add_task({.pid = 300, .tgid = 300, .comm = "busy", .kernel_thread = true});
  // CPU 0's per-CPU area names the worker as current; CPU 1's offset stays 0, so its copy of the
  // variable would be at the bare per-CPU offset, in no mapped page.
  const Addr area = kernel.allocate(kernel.symbol("current_task") + 8);
  kernel.put<std::uint64_t>(kernel.symbol("__per_cpu_offset"), area);
  kernel.put<std::uint64_t>(area + kernel.symbol("current_task"), worker);
  const auto registers = [&](std::uint32_t index) {
    return CpuState{.index = index,
                    .registers = {{"cs", 0x10}, {"rip", kernel.symbol("init_task")}, {"rsp", 0}, {"cr3", 0}}};
  };
  Session session = test::open_synthetic(kernel, {registers(0), registers(1)});
  auto table = run_plugin(session, "cpus");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  REQUIRE(table->rows.size() == 2);
  CHECK(test::cell_address(table->rows[0], kTask) == worker);
  CHECK(test::cell_integer(table->rows[0], kPid) == 300);
  CHECK(test::cell_text(table->rows[0], kComm) == "busy");
  CHECK(table->rows[0].cells[kIdle] == Cell(false));
  CHECK(table->rows[1].cells[kTask] == Cell(Absence::unreadable));
  CHECK(table->rows[1].cells[kIdle] == Cell(Absence::unreadable));
  // RIP is in data (init_task), RSP in no mapped page: the backtrace says so and stops there.
  CHECK(test::cell_text(table->rows[0], kBacktrace) == hex(kernel.symbol("init_task")) + " [no known code]");
  bool named = false;
  for (const std::string& warning : session.diagnostics().warnings())
    named = named || warning.starts_with("CPU 1: field 'current_task'");
  CHECK_MESSAGE(named, test::joined(session.diagnostics().warnings()));
  CHECK(std::ranges::count(session.diagnostics().warnings(),
                           std::string("kernel stack at RSP 0x0 is not in the snapshot; the backtrace ends there")) ==
        2);
}
