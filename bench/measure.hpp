// What every benchmark needs: run a command and measure it, and find the samples cache.
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace vmi::bench {

struct Measurement {
  double seconds = 0;
  double peak_rss_mib = 0;
  bool ok = false;
};

// Runs a program with its output discarded; peak RSS from the kernel's accounting of the child.
inline Measurement run(const std::vector<std::string>& args) {
  std::fflush(stdout);  // or the child inherits and repeats our buffered output
  const auto start = std::chrono::steady_clock::now();
  const pid_t child = ::fork();
  if (child == 0) {
    std::vector<char*> argv;
    for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    std::freopen("/dev/null", "w", stdout);
    std::freopen("/dev/null", "w", stderr);
    ::execvp(argv[0], argv.data());
    std::_Exit(127);
  }
  int status = 0;
  struct rusage usage {};
  ::wait4(child, &status, 0, &usage);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok) fmt::print(stderr, "command failed (status {}): {}\n", status, fmt::join(args, " "));
  return {seconds, static_cast<double>(usage.ru_maxrss) / 1024.0, ok};
}

// A command run once, then `runs` more times: the first run (cold caches) apart, the median wall
// time and the largest peak RSS of the others.
struct Repeated {
  Measurement first;
  double median_ms = 0;
  double max_rss_mib = 0;
};

inline Repeated run_repeated(const std::vector<std::string>& args, int runs) {
  Repeated out{run(args)};
  std::vector<double> walls;
  for (int i = 0; i < runs; ++i) {
    const Measurement again = run(args);
    walls.push_back(again.seconds * 1000);
    out.max_rss_mib = std::max(out.max_rss_mib, again.peak_rss_mib);
  }
  std::sort(walls.begin(), walls.end());
  if (!walls.empty()) out.median_ms = walls[walls.size() / 2];
  return out;
}

// $VMI_SAMPLES_DIR, else $XDG_CACHE_HOME or ~/.cache + /vmi-forensics/samples.
inline std::filesystem::path samples_dir() {
  if (const char* dir = std::getenv("VMI_SAMPLES_DIR"); dir != nullptr && *dir != '\0') return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return std::filesystem::path(xdg) / "vmi-forensics/samples";
  }
  return std::filesystem::path(std::getenv("HOME")) / ".cache/vmi-forensics/samples";
}

}  // namespace vmi::bench
