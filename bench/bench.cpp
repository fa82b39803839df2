// Times info, pslist and pstree on every sample, cold (no profile cache) and warm (cached
// profile), and reports wall time and the child's peak RSS against the targets.
#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "measure.hpp"

namespace fs = std::filesystem;

using vmi::bench::Measurement;
using vmi::bench::samples_dir;

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  const std::string cli = VMI_BENCH_CLI;
  const fs::path cache = fs::temp_directory_path() / fmt::format("vmi-bench-cache-{}", ::getpid());
  std::vector<std::string> samples;
  std::ifstream list(samples_dir() / "samples.list");
  for (std::string name; std::getline(list, name);) {
    if (!name.empty()) samples.push_back(name);
  }
  if (samples.empty()) {
    fmt::print(stderr, "no samples in {}: run samples/build-samples.sh\n", samples_dir().string());
    return 1;
  }
  fmt::print("{:<18} {:<11} {:<7} {:>12} {:>12} {:>14} {:>14}\n", "sample", "image", "command", "cold ms", "cold MiB",
             "warm ms (med)", "warm MiB (max)");
  double worst_pslist_ms = 0, worst_pslist_mib = 0;
  for (const auto& sample : samples) {
    for (const char* image : {"memory.raw", "memory.elf"}) {
      const std::string path = (samples_dir() / sample / image).string();
      for (const char* command : {"info", "pslist", "pstree"}) {
        fs::remove_all(cache);
        const std::vector<std::string> args = {cli,     "--profile", VMI_BENCH_PROFILE, "--cache-dir", cache.string(),
                                               command, path};
        const auto measured = vmi::bench::run_repeated(args, runs);
        const Measurement& cold = measured.first;
        const double median = measured.median_ms, warm_rss = measured.max_rss_mib;
        fmt::print("{:<18} {:<11} {:<7} {:>12.1f} {:>12.1f} {:>14.1f} {:>14.1f}\n", sample, image, command,
                   cold.seconds * 1000, cold.peak_rss_mib, median, warm_rss);
        if (std::string(command) == "pslist") {
          worst_pslist_ms = std::max(worst_pslist_ms, median);
          worst_pslist_mib = std::max(worst_pslist_mib, warm_rss);
        }
      }
    }
  }
  fs::remove_all(cache);
  fmt::print(
      "\npslist with a cached profile, worst sample: {:.1f} ms (target < 50 ms), {:.1f} MiB peak RSS (target < 32 "
      "MiB)\n",
      worst_pslist_ms, worst_pslist_mib);
  return 0;
}
