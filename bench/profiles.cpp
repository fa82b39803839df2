// Profile sources, timed: pslist end to end with no profile file (first run recovers the profile
// from the snapshot, later runs load it from the cache); then, in process, recovering a profile
// (kallsyms + BTF) and loading it back from the binary cache, parsing the shipped ISF, and building
// from vmlinux BTF and from the debug vmlinux's DWARF. A step that fails is a FAILED row (the
// reason on stderr) and makes the exit status non-zero.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <system_error>

#include "measure.hpp"
#include "vmi/isf.hpp"
#include "vmi/profile_recovery.hpp"
#include "vmi/profile_store.hpp"
#include "vmi/vmlinux.hpp"

namespace fs = std::filesystem;
using vmi::bench::figure;
using vmi::bench::samples_dir;
using vmi::bench::Verdict;

namespace {

constexpr std::string_view kUsage =
    "usage: vmi-bench-profiles [--check] [runs]\n"
    "  runs     runs per measurement (default 5)\n"
    "  --check  exit 3 when a stated target is missed (exit 1 whenever a step failed)\n";

struct Timing {
  bool ok = false;
  std::string failure;  // the first failed run's error
  double min_ms = 0, median_ms = 0;
};

// Success or the error of an Expected of any type: what time_runs wants from its work.
template <class T>
vmi::Expected<void> status_of(const vmi::Expected<T>& result) {
  if (!result) return result.error();
  return {};
}

// Runs `work` n times; the first failure ends it, so no figure includes a failed run.
Timing time_runs(int n, const std::function<vmi::Expected<void>()>& work) {
  Timing timing;
  std::vector<double> ms;
  for (int i = 0; i < n; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const vmi::Expected<void> done = work();
    if (!done) {
      timing.failure = fmt::format("run {} of {}: {}", i + 1, n, done.error().message);
      return timing;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  if (ms.empty()) {
    timing.failure = "no runs";
    return timing;
  }
  std::sort(ms.begin(), ms.end());
  timing.ok = true;
  timing.min_ms = ms.front();
  timing.median_ms = ms[ms.size() / 2];
  return timing;
}

// "min / median" of a timing, or FAILED.
std::string min_median(const Timing& timing, int decimals) {
  if (!timing.ok) return "FAILED";
  return fmt::format("{:.{}f} / {:.{}f}", timing.min_ms, decimals, timing.median_ms, decimals);
}

// pslist with no profile file, through the CLI: recovery on the first run, the cache after.
void measure_cli(const std::vector<std::string>& samples, const fs::path& scratch, int runs, Verdict& verdict) {
  fmt::print(
      "pslist with no profile file (CLI, --profile <empty dir>): first run recovers, later runs load the cache\n");
  fmt::print("{:<20} {:>14} {:>12} {:>16} {:>14} {:>7}\n", "sample", "recover ms", "recover MiB", "cached ms (med)",
             "cached MiB", "target");
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
    if (!measured.first.ok) verdict.run_failed(sample + " pslist (recovering run)", measured.first.failure);
    if (measured.first.ok && !measured.repeats_ok)
      verdict.run_failed(sample + " pslist (cached runs)", measured.failure);
    std::string target;
    if (measured.ok()) {  // the cached runs are "pslist with a cached profile"
      const std::string time = verdict.hold(vmi::bench::kPslistCachedWallTime, measured.median_ms);
      const std::string rss = verdict.hold(vmi::bench::kPslistCachedPeakRss, measured.max_rss_mib);
      target = time == "met" && rss == "met" ? "met" : "MISSED";
    }
    fmt::print("{:<20} {:>14} {:>12} {:>16} {:>14} {:>7}\n", sample,
               figure(measured.first.ok, measured.first.seconds * 1000),
               figure(measured.first.ok, measured.first.peak_rss_mib), figure(measured.ok(), measured.median_ms),
               figure(measured.ok(), measured.max_rss_mib), target);
  }
}

// Recovery and cache load in process, per sample.
void measure_recovery(const std::vector<std::string>& samples, const fs::path& scratch, int runs, Verdict& verdict) {
  fmt::print("Profile recovered from the snapshot (in process, {} runs; min / median):\n", runs);
  fmt::print("{:<20} {:>21} {:>9} {:>9} {:>12} {:>16}\n", "sample", "recover ms", "types", "symbols", "cache KiB",
             "cache load ms");
  const auto failed_row = [&](const std::string& sample, const std::string& step, const std::string& why) {
    fmt::print("{:<20} {:>21} {:>9} {:>9} {:>12} {:>16}\n", sample, "FAILED", "", "", "", "FAILED");
    verdict.run_failed(sample + " " + step, why);
  };
  for (const auto& sample : samples) {
    auto opened = vmi::open_image(samples_dir() / sample / "memory.raw");
    if (!opened) {
      failed_row(sample, "open memory.raw", opened.error().message);
      continue;
    }
    std::shared_ptr<const vmi::PhysicalImage> image(std::move(*opened));
    std::optional<vmi::RecoveredProfile> last;
    const Timing recover = time_runs(runs, [&]() -> vmi::Expected<void> {
      auto recovered = vmi::recover_linux_profile(image);
      if (!recovered) return recovered.error();
      last = std::move(*recovered);
      return {};
    });
    if (!recover.ok) {
      failed_row(sample, "recover_linux_profile", recover.failure);
      continue;
    }
    const fs::path entry = scratch / (sample + ".vmiprof");
    Timing load;
    if (auto written = vmi::write_cached_profile(entry, last->profile); !written) {
      load.failure = "write_cached_profile: " + written.error().message;
    } else {
      load = time_runs(runs * 4, [&] { return status_of(vmi::read_cached_profile(entry)); });
    }
    if (!load.ok) verdict.run_failed(sample + " cache load", load.failure);
    std::error_code size_error;
    const std::uintmax_t cache_bytes = load.ok ? fs::file_size(entry, size_error) : std::uintmax_t{0};
    fmt::print("{:<20} {:>21} {:>9} {:>9} {:>12} {:>16}\n", sample, min_median(recover, 1), last->types, last->symbols,
               load.ok && !size_error ? fmt::format("{}", cache_bytes / 1024) : std::string("-"), min_median(load, 2));
  }
}

// One "other source" row: the timing, or FAILED with its reason counted.
void print_source_row(const std::string& label, const Timing& timing, int decimals, Verdict& verdict) {
  if (!timing.ok) verdict.run_failed(label, timing.failure);
  fmt::print("  {:<46} {:>20} ms\n", label, min_median(timing, decimals));
}

// ISF parse, binary cache, BTF and DWARF builds for the pinned kernel.
void measure_other_sources(const std::optional<std::string>& kernel_dir, const fs::path& scratch, int runs,
                           Verdict& verdict) {
  if (!kernel_dir) {
    fmt::print("\nOther profile sources: FAILED\n");
    verdict.run_failed("other profile sources", "no KERNEL_DIR: samples.list lists no sample with a sample.env");
    return;
  }
  const fs::path kernel = *kernel_dir;
  fmt::print("\nOther profile sources for {} (min / median of {} runs):\n", kernel.string(), runs);
  const fs::path isf = VMI_BENCH_PROFILE;
  print_source_row("shipped ISF (dwarf2json, xz) parsed",
                   time_runs(runs, [&] { return status_of(vmi::load_isf_file(isf)); }), 1, verdict);
  Timing cached;
  if (auto profile = vmi::load_isf_file(isf); !profile) {
    cached.failure = "load_isf_file: " + profile.error().message;
  } else if (auto written = vmi::write_cached_profile(scratch / "isf.vmiprof", *profile); !written) {
    cached.failure = "write_cached_profile: " + written.error().message;
  } else {
    cached = time_runs(runs * 4, [&] { return status_of(vmi::read_cached_profile(scratch / "isf.vmiprof")); });
  }
  print_source_row("same, from the binary cache", cached, 2, verdict);
  print_source_row(
      "vmlinux BTF + System.map",
      time_runs(runs,
                [&] { return status_of(vmi::build_profile_from_vmlinux(kernel / "vmlinux", kernel / "System.map")); }),
      1, verdict);
  // samples/build-samples.sh extracts it; without it the DWARF tests fail too, so it is not optional here.
  Timing dwarf;
  if (fs::exists(kernel / "vmlinux.dbg")) {
    dwarf =
        time_runs(1, [&] { return status_of(vmi::build_profile_from_vmlinux(kernel / "vmlinux.dbg", std::nullopt)); });
  } else {
    dwarf.failure = (kernel / "vmlinux.dbg").string() + " not found (samples/build-samples.sh extracts it)";
  }
  print_source_row("debug vmlinux DWARF + ELF symbols (one run)", dwarf, 1, verdict);
}

}  // namespace

int main(int argc, char** argv) {
  const auto parsed = vmi::bench::parse_run_options(argc, argv, kUsage);
  if (const int* exit_status = std::get_if<int>(&parsed)) return *exit_status;
  const auto& options = *std::get_if<vmi::bench::RunOptions>(&parsed);
  const int runs = options.runs;
  const auto main_samples = vmi::bench::read_sample_list("samples.list").value_or(std::vector<std::string>{});
  auto samples = main_samples;
  const auto others = vmi::bench::read_sample_list("recovery-samples.list").value_or(std::vector<std::string>{});
  samples.insert(samples.end(), others.begin(), others.end());
  if (samples.empty()) {
    fmt::print(stderr, "FAILED: no samples in {}: run samples/build-samples.sh\n", samples_dir().string());
    return vmi::bench::kExitRunFailed;
  }
  const fs::path scratch = fs::temp_directory_path() / fmt::format("vmi-bench-profiles-{}", ::getpid());
  fs::create_directories(scratch);
  Verdict verdict({&vmi::bench::kPslistCachedWallTime, &vmi::bench::kPslistCachedPeakRss});

  // The CLI first: a child forked later would inherit (and report) this process's memory.
  measure_cli(samples, scratch, runs, verdict);
  fmt::print("\n");
  measure_recovery(samples, scratch, runs, verdict);
  // The kernel the shipped ISF describes: that of the main samples (the recovery ones have none).
  std::optional<std::string> kernel_dir;
  if (!main_samples.empty()) {
    const auto env = vmi::bench::read_sample_env(samples_dir() / main_samples.front());
    if (const auto found = env.find("KERNEL_DIR"); found != env.end()) kernel_dir = found->second;
  }
  measure_other_sources(kernel_dir, scratch, runs, verdict);

  std::error_code ignored;
  fs::remove_all(scratch, ignored);
  return verdict.finish(options.check);
}
