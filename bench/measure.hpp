// What every benchmark needs: run a command and measure it (and say why it failed), the stated
// targets, the shared command line and exit status, and the samples cache.
#pragma once

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

namespace vmi::bench {

// ---------------------------------------------------------------- stated targets
// A figure README.md (Benchmarks) promises to stay under. Defined here once, so the programs
// that check it and the output that prints it cannot disagree.
struct Target {
  std::string_view what;
  double limit = 0;  // the figure must be strictly below this
  std::string_view unit;
};

// README.md: "pslist with a cached profile ... (target: < 50 ms, < 32 MiB)".
inline constexpr Target kPslistCachedWallTime{"pslist with a cached profile, wall time", 50, "ms"};
inline constexpr Target kPslistCachedPeakRss{"pslist with a cached profile, peak RSS", 32, "MiB"};

// ---------------------------------------------------------------- command line, exit status
enum ExitCode : int {
  kExitOk = 0,
  kExitRunFailed = 1,     // a measured run failed (a FAILED row), or there was nothing to measure
  kExitUsage = 2,         // bad command line
  kExitTargetMissed = 3,  // with --check: a stated target was missed, or no run measured it
};

// Every benchmark takes [--check] and at most one other argument (a run count or a sample).
struct Options {
  bool check = false;  // exit kExitTargetMissed when a stated target is missed
  bool help = false;
  std::optional<std::string> argument;
};

// nullopt (after saying why on stderr) on a bad command line.
inline std::optional<Options> parse_options(int argc, char** argv, std::string_view usage) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--check") {
      options.check = true;
    } else if (arg == "-h" || arg == "--help") {
      options.help = true;
    } else if (!arg.starts_with('-') && !options.argument) {
      options.argument = std::string(arg);
    } else {
      fmt::print(stderr, "unexpected argument '{}'\n{}", arg, usage);
      return std::nullopt;
    }
  }
  return options;
}

// A positive run count, or nullopt: "abc" or "0" must not quietly become one run.
inline std::optional<int> parse_runs(const std::string& text) {
  int runs = 0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, runs);
  if (error != std::errc{} || stop != end || runs < 1) return std::nullopt;
  return runs;
}

// The command line of a benchmark whose one argument is a run count.
struct RunOptions {
  bool check = false;
  int runs = 5;
};

// Its options, or the status to exit with at once: kExitOk after printing the usage for --help,
// kExitUsage after saying what is wrong.
inline std::variant<RunOptions, int> parse_run_options(int argc, char** argv, std::string_view usage) {
  const auto options = parse_options(argc, argv, usage);
  if (!options) return kExitUsage;
  if (options->help) {
    fmt::print("{}", usage);
    return kExitOk;
  }
  RunOptions parsed{.check = options->check};
  if (options->argument) {
    const auto runs = parse_runs(*options->argument);
    if (!runs) {
      fmt::print(stderr, "runs must be a positive number, not '{}'\n{}", *options->argument, usage);
      return kExitUsage;
    }
    parsed.runs = *runs;
  }
  return parsed;
}

// ---------------------------------------------------------------- running and measuring
struct Measurement {
  double seconds = 0;
  double peak_rss_mib = 0;
  bool ok = false;
  std::string failure;  // why it failed (exit status or signal, and the command's last words)
};

// Exit status or signal, in words.
inline std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exit status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return fmt::format("killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return fmt::format("wait status {:#x}", status);
}

// The last non-empty line of what a child wrote to `file` (its stderr): the CLI ends a failure
// with "vmi-forensics: <reason>", which is what a FAILED row needs to say.
inline std::string last_line_of(std::FILE* file) {
  if (file == nullptr) return {};
  std::rewind(file);
  std::string text;
  char chunk[4096];
  for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, file)) > 0;) text.append(chunk, n);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  const auto newline = text.rfind('\n');
  return newline == std::string::npos ? text : text.substr(newline + 1);
}

// Runs a program with its stdout discarded; peak RSS from the kernel's accounting of the child.
// Succeeds only when the child exits with status 0. Its stderr is kept in an unlinked temporary
// file (made before the clock starts) and read back only to explain a failure.
inline Measurement run(const std::vector<std::string>& args) {
  std::fflush(stdout);  // or the child inherits and repeats our buffered output
  std::FILE* child_stderr = std::tmpfile();
  const auto start = std::chrono::steady_clock::now();
  const pid_t child = ::fork();
  if (child < 0) {
    const int error = errno;
    if (child_stderr != nullptr) std::fclose(child_stderr);
    Measurement failed;
    failed.failure = fmt::format("fork: {}", std::strerror(error));
    return failed;
  }
  if (child == 0) {
    std::vector<char*> argv;
    for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    const int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) ::dup2(null, STDOUT_FILENO);
    const int err = child_stderr != nullptr ? ::fileno(child_stderr) : null;
    if (err >= 0) ::dup2(err, STDERR_FILENO);
    ::execvp(argv[0], argv.data());
    std::fprintf(stderr, "cannot run %s: %s\n", argv[0], std::strerror(errno));  // the reason, for the parent
    std::_Exit(127);
  }
  int status = 0;
  struct rusage usage {};
  pid_t waited = 0;
  do {
    waited = ::wait4(child, &status, 0, &usage);
  } while (waited < 0 && errno == EINTR);
  const int wait_error = errno;
  Measurement out;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  out.peak_rss_mib = static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB
  out.ok = waited == child && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!out.ok) {
    out.failure = waited != child ? fmt::format("wait4: {}", std::strerror(wait_error)) : describe_wait_status(status);
    if (const std::string said = last_line_of(child_stderr); !said.empty()) out.failure += ": " + said;
    out.failure += fmt::format(" (command: {})", fmt::join(args, " "));
  }
  if (child_stderr != nullptr) std::fclose(child_stderr);
  return out;
}

// A command run once, then `runs` more times: the first run (cold caches) apart, the median wall
// time and the largest peak RSS of the others. Stops at the first failed run, so no figure ever
// mixes successful and failed runs.
struct Repeated {
  Measurement first;
  bool repeats_ok = false;  // every later run succeeded (false when the first failed: not run)
  std::string failure;      // why a later run failed
  double median_ms = 0;
  double max_rss_mib = 0;
  bool ok() const { return first.ok && repeats_ok; }
};

inline Repeated run_repeated(const std::vector<std::string>& args, int runs) {
  Repeated out;
  out.first = run(args);
  if (!out.first.ok) return out;
  std::vector<double> walls;
  for (int i = 0; i < runs; ++i) {
    const Measurement again = run(args);
    if (!again.ok) {
      out.failure = fmt::format("run {} of {}: {}", i + 2, runs + 1, again.failure);
      return out;
    }
    walls.push_back(again.seconds * 1000);
    out.max_rss_mib = std::max(out.max_rss_mib, again.peak_rss_mib);
  }
  std::sort(walls.begin(), walls.end());
  if (!walls.empty()) out.median_ms = walls[walls.size() / 2];
  out.repeats_ok = true;
  return out;
}

// A table cell: the figure, or FAILED when the run behind it failed (never a failed run's time).
inline std::string figure(bool ok, double value, int decimals = 1) {
  return ok ? fmt::format("{:.{}f}", value, decimals) : std::string("FAILED");
}

// ---------------------------------------------------------------- the verdict
// Counts failed runs and holds figures to the stated targets; decides the exit status.
class Verdict {
 public:
  Verdict() = default;  // no stated target for this program's figures: only failures count
  explicit Verdict(std::vector<const Target*> targets) {
    for (const Target* target : targets) {
      Held held;
      held.target = target;
      held_.push_back(held);
    }
  }

  // A run that failed: its row prints FAILED, the reason goes to stderr, the exit status is 1.
  void run_failed(std::string_view what, std::string_view why) {
    ++failed_runs_;
    std::fflush(stdout);  // keep the FAILED row and its reason next to each other on a terminal
    fmt::print(stderr, "FAILED {}: {}\n", what, why);
  }

  // Holds one measured figure to `target`; "met" or "MISSED", for the row's target column.
  std::string hold(const Target& target, double value) {
    for (Held& held : held_) {
      if (held.target != &target) continue;
      held.worst = held.measured == 0 ? value : std::max(held.worst, value);
      ++held.measured;
      if (value < target.limit) return "met";
      ++held.missed;
      return "MISSED";
    }
    return "?";  // a target this Verdict was not built with: a programming error, shown, not hidden
  }

  // The targets with their worst figure, and the failure count; then the exit status to use.
  int finish(bool check) const {
    fmt::print("\nstated targets (README.md, Benchmarks){}:\n", check ? ", checked (--check)" : "");
    if (held_.empty()) fmt::print("  none for these figures\n");
    bool all_met = true;
    for (const Held& held : held_) {
      const std::string verdict = held.measured == 0 ? "not measured"
                                  : held.missed == 0
                                      ? "met"
                                      : fmt::format("MISSED in {} of {} rows", held.missed, held.measured);
      all_met = all_met && held.measured > 0 && held.missed == 0;
      fmt::print("  {} < {} {}: ", held.target->what, held.target->limit, held.target->unit);
      if (held.measured > 0) fmt::print("worst {:.1f} {} over {} rows, ", held.worst, held.target->unit, held.measured);
      fmt::print("{}\n", verdict);
    }
    fmt::print("failed runs: {}\n", failed_runs_);
    if (failed_runs_ > 0) return kExitRunFailed;
    if (check && !all_met) return kExitTargetMissed;
    return kExitOk;
  }

 private:
  struct Held {
    const Target* target = nullptr;
    double worst = 0;
    int measured = 0;
    int missed = 0;
  };
  std::vector<Held> held_;
  int failed_runs_ = 0;
};

// ---------------------------------------------------------------- the samples cache
// $VMI_SAMPLES_DIR, else $XDG_CACHE_HOME or ~/.cache + /vmi-forensics/samples.
inline std::filesystem::path samples_dir() {
  if (const char* dir = std::getenv("VMI_SAMPLES_DIR"); dir != nullptr && *dir != '\0') return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return std::filesystem::path(xdg) / "vmi-forensics/samples";
  }
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home != nullptr ? home : "/") / ".cache/vmi-forensics/samples";
}

// The sample names listed in samples_dir()/<list_name>, one a line; nullopt when the list file
// is absent (samples/build-samples.sh writes every list, possibly empty).
inline std::optional<std::vector<std::string>> read_sample_list(const std::string& list_name) {
  std::ifstream list(samples_dir() / list_name);
  if (!list) return std::nullopt;
  std::vector<std::string> names;
  for (std::string name; std::getline(list, name);) {
    if (!name.empty()) names.push_back(name);
  }
  return names;
}

// A sample's sample.env (KEY=value, one a line; a value in '...' has the quotes removed); empty
// when the file is absent.
inline std::map<std::string, std::string> read_sample_env(const std::filesystem::path& sample_dir) {
  std::map<std::string, std::string> env;
  std::ifstream in(sample_dir / "sample.env");
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string value = line.substr(eq + 1);
    if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'') value = value.substr(1, value.size() - 2);
    env[line.substr(0, eq)] = value;
  }
  return env;
}

// The memory files a sample says it has (samples/README.md): memory.raw always; memory.lime for
// the LiME sample (its sample.env has LIME_MODULE), memory.elf for every other; and the kdump
// files and migration stream sample.env lists in EXTRA_FORMATS (which omits codecs QEMU lacked).
inline std::vector<std::string> claimed_memory_files(const std::map<std::string, std::string>& env) {
  std::vector<std::string> files = {"memory.raw", env.contains("LIME_MODULE") ? "memory.lime" : "memory.elf"};
  if (const auto extra = env.find("EXTRA_FORMATS"); extra != env.end()) {
    std::string_view rest = extra->second;
    while (!rest.empty()) {
      const auto space = rest.find(' ');
      const std::string_view name = rest.substr(0, space);
      if (!name.empty()) files.emplace_back(name);
      rest = space == std::string_view::npos ? std::string_view{} : rest.substr(space + 1);
    }
  }
  return files;
}

}  // namespace vmi::bench
