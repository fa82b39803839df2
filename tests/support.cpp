// Test helpers that need more than a header: child processes (the CLI, compilers, binutils) with
// their output captured, format fixtures opened through the library, peak RSS measurement.
#include "support.hpp"

#include <doctest/doctest.h>
#include <malloc.h>
#include <sys/wait.h>

#include <cstdio>
#include <sstream>
#include <string_view>

namespace vmi::test {

CommandResult run_command(const std::vector<std::string>& argv) {
  const auto dir = scratch_dir("command-run-" + std::to_string(::getpid()));
  std::string command;
  for (const auto& arg : argv) command += (command.empty() ? "'" : " '") + arg + "'";
  command += " >'" + (dir / "out").string() + "' 2>'" + (dir / "err").string() + "' </dev/null";
  const int status = std::system(command.c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_file(dir / "out");
  result.err = read_file(dir / "err");
  return result;
}

std::filesystem::path FormatFixtures::write(const std::string& name, const std::string& bytes) const {
  scratch_dir(format + "-" + name);
  write_file(path(name), bytes);
  return path(name);
}

std::string FormatFixtures::open_error(const std::string& name, const std::string& bytes) const {
  auto image = open_image(write(name, bytes));
  REQUIRE_FALSE(image.has_value());
  return image.error().message;
}

CommandResult run_cli(const std::vector<std::string>& args) {
  std::vector<std::string> argv{cli_path().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

double peak_rss_growth_mib(const std::function<void()>& work) {
  auto resident_kib = [](std::string_view key) {
    std::istringstream status(read_file("/proc/self/status"));
    for (std::string line; std::getline(status, line);) {
      if (line.starts_with(key)) return std::stod(line.substr(key.size()));
    }
    return -1.0;
  };
  malloc_trim(0);  // memory an earlier test freed would otherwise be reused without growing RSS
  write_file("/proc/self/clear_refs", "5");
  const double before = resident_kib("VmRSS:");
  // The reset took: the high-water mark is now about the current RSS, not an earlier test's peak.
  REQUIRE(before > 0);
  REQUIRE(resident_kib("VmHWM:") < before + 1024);
  work();
  const double peak = resident_kib("VmHWM:");
  REQUIRE(peak >= before);
  return (peak - before) / 1024;
}

}  // namespace vmi::test
