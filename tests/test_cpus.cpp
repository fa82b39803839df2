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
#include "vmi/plugin.hpp"

using namespace vmi;

namespace {

enum CpuColumn : int { kCpu, kMode, kRip, kSymbol, kRsp, kCr3 };

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

}  // namespace

TEST_CASE(
    "cpus on every sample's ELF core shows each vCPU's RIP, RSP and mode as gdb reads them, RIP symbolised as kallsyms "
    "does") {
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
    }
    CHECK(session.diagnostics().warnings().empty());
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
