// Profile sources, timed: pslist end to end with no profile file (first run recovers the profile
// from the snapshot, later runs load it from the cache); then, in process, recovering a profile
// (kallsyms + BTF) and loading it back from the binary cache, parsing the shipped ISF, and building
// from vmlinux BTF and from the debug vmlinux's DWARF.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>

#include "measure.hpp"
#include "vmi/isf.hpp"
#include "vmi/profile_recovery.hpp"
#include "vmi/profile_store.hpp"
#include "vmi/vmlinux.hpp"

namespace fs = std::filesystem;
using vmi::bench::samples_dir;

namespace {

std::vector<std::string> sample_list(const std::string& file) {
  std::vector<std::string> names;
  std::ifstream list(samples_dir() / file);
  for (std::string name; std::getline(list, name);) {
    if (!name.empty()) names.push_back(name);
  }
  return names;
}

struct Timing {
  double min_ms = 0, median_ms = 0;
};

// Runs `work` n times; false from work aborts with a message.
Timing time_runs(int n, const std::function<bool()>& work) {
  std::vector<double> ms;
  for (int i = 0; i < n; ++i) {
    const auto start = std::chrono::steady_clock::now();
    if (!work()) return {};
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  return {ms.front(), ms[ms.size() / 2]};
}

std::string kernel_dir_of(const std::string& sample) {
  std::ifstream env(samples_dir() / sample / "sample.env");
  for (std::string line; std::getline(env, line);) {
    if (line.starts_with("KERNEL_DIR=")) return line.substr(11);
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  auto samples = sample_list("samples.list");
  const auto others = sample_list("recovery-samples.list");
  samples.insert(samples.end(), others.begin(), others.end());
  if (samples.empty()) {
    fmt::print(stderr, "no samples in {}: run samples/build-samples.sh\n", samples_dir().string());
    return 1;
  }
  const fs::path scratch = fs::temp_directory_path() / fmt::format("vmi-bench-profiles-{}", ::getpid());
  fs::create_directories(scratch);

  // The CLI first: a child forked later would inherit (and report) this process's memory.
  fmt::print(
      "pslist with no profile file (CLI, --profile <empty dir>): first run recovers, later runs load the cache\n");
  fmt::print("{:<20} {:>14} {:>12} {:>16} {:>14}\n", "sample", "recover ms", "recover MiB", "cached ms (med)",
             "cached MiB");
  const fs::path empty = scratch / "no-profiles";
  fs::create_directories(empty);
  for (const auto& sample : samples) {
    const fs::path cache = scratch / ("cache-" + sample);
    const std::vector<std::string> args = {VMI_BENCH_CLI,
                                           "--profile",
                                           empty.string(),
                                           "--cache-dir",
                                           cache.string(),
                                           "pslist",
                                           (samples_dir() / sample / "memory.raw").string()};
    const auto measured = vmi::bench::run_repeated(args, runs);
    fmt::print("{:<20} {:>14.1f} {:>12.1f} {:>16.1f} {:>14.1f}\n", sample, measured.first.seconds * 1000,
               measured.first.peak_rss_mib, measured.median_ms, measured.max_rss_mib);
  }
  fmt::print("\n");
  fmt::print("Profile recovered from the snapshot (in process, {} runs; min / median):\n", runs);
  fmt::print("{:<20} {:>10} {:>10} {:>9} {:>9} {:>12} {:>16}\n", "sample", "recover ms", "median", "types", "symbols",
             "cache KiB", "cache load ms");
  for (const auto& sample : samples) {
    auto opened = vmi::open_image(samples_dir() / sample / "memory.raw");
    if (!opened) {
      fmt::print(stderr, "{}: {}\n", sample, opened.error().message);
      continue;
    }
    std::shared_ptr<const vmi::PhysicalImage> image(std::move(*opened));
    std::optional<vmi::RecoveredProfile> last;
    const Timing recover = time_runs(runs, [&] {
      auto recovered = vmi::recover_linux_profile(image);
      if (!recovered) fmt::print(stderr, "{}: {}\n", sample, recovered.error().message);
      if (recovered) last = std::move(*recovered);
      return recovered.has_value();
    });
    if (!last) continue;
    const fs::path entry = scratch / (sample + ".vmiprof");
    if (!vmi::write_cached_profile(entry, last->profile)) continue;
    const Timing load = time_runs(runs * 4, [&] { return vmi::read_cached_profile(entry).has_value(); });
    fmt::print("{:<20} {:>10.1f} {:>10.1f} {:>9} {:>9} {:>12} {:>10.2f} / {:.2f}\n", sample, recover.min_ms,
               recover.median_ms, last->types, last->symbols, fs::file_size(entry) / 1024, load.min_ms, load.median_ms);
  }

  const std::string kernel = kernel_dir_of(samples.front());
  fmt::print("\nOther profile sources for {} (min / median of {} runs):\n", kernel, runs);
  const fs::path isf = VMI_BENCH_PROFILE;
  const Timing parse = time_runs(runs, [&] { return vmi::load_isf_file(isf).has_value(); });
  fmt::print("  {:<46} {:>9.1f} / {:.1f} ms\n", "shipped ISF (dwarf2json, xz) parsed", parse.min_ms, parse.median_ms);
  if (auto profile = vmi::load_isf_file(isf); profile && vmi::write_cached_profile(scratch / "isf.vmiprof", *profile)) {
    const Timing load =
        time_runs(runs * 4, [&] { return vmi::read_cached_profile(scratch / "isf.vmiprof").has_value(); });
    fmt::print("  {:<46} {:>9.2f} / {:.2f} ms\n", "same, from the binary cache", load.min_ms, load.median_ms);
  }
  const Timing btf = time_runs(runs, [&] {
    return vmi::build_profile_from_vmlinux(fs::path(kernel) / "vmlinux", fs::path(kernel) / "System.map").has_value();
  });
  fmt::print("  {:<46} {:>9.1f} / {:.1f} ms\n", "vmlinux BTF + System.map", btf.min_ms, btf.median_ms);
  if (fs::exists(fs::path(kernel) / "vmlinux.dbg")) {
    const Timing dwarf = time_runs(
        1, [&] { return vmi::build_profile_from_vmlinux(fs::path(kernel) / "vmlinux.dbg", std::nullopt).has_value(); });
    fmt::print("  {:<46} {:>9.1f} ms (one run)\n", "debug vmlinux DWARF + ELF symbols", dwarf.min_ms);
  }

  fs::remove_all(scratch);
  return 0;
}
