// Runs programs (the CLI, compilers, binutils) as child processes and captures their output.
#include "support.hpp"

#include <sys/wait.h>

#include <cstdio>

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

CommandResult run_cli(const std::vector<std::string>& args) {
  std::vector<std::string> argv{cli_path().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

}  // namespace vmi::test
