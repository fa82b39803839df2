// Runs the CLI as a child process and captures stdout, stderr and the exit code.
#include "support.hpp"

#include <sys/wait.h>

#include <cstdio>

namespace vmi::test {

CommandResult run_cli(const std::vector<std::string>& args) {
  const auto dir = scratch_dir("cli-run-" + std::to_string(::getpid()));
  std::string command = "'" + cli_path().string() + "'";
  for (const auto& arg : args) command += " '" + arg + "'";
  command += " >'" + (dir / "out").string() + "' 2>'" + (dir / "err").string() + "' </dev/null";
  const int status = std::system(command.c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_file(dir / "out");
  result.err = read_file(dir / "err");
  return result;
}

}  // namespace vmi::test
