// psscan, timed: the carve of all physical memory on one worker and on every core, in process
// (the scan alone: throughput per worker and in all) and through the CLI (whole process: wall
// time and peak RSS), on a sample's 512 MiB raw image and on a 1 GiB image made of that image
// written twice (the kernel is found in its first half; the second half is scanned all the same).
// A run that fails is a FAILED row and makes the exit status non-zero.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "measure.hpp"
#include "vmi/linux.hpp"
#include "vmi/session.hpp"

namespace fs = std::filesystem;

namespace {

using vmi::bench::figure;
using vmi::bench::Verdict;

constexpr std::string_view kUsage =
    "usage: vmi-bench-scan [--check] [runs]\n"
    "  runs     timed runs per figure after a warm-up run (default 5)\n"
    "  --check  exit 3 when a stated target is missed (exit 1 whenever a run failed)\n";

constexpr std::string_view kSample = "linux-6.1-4level";

// The figure: at least 1 GB/s per core, stated as time per 10^9 bytes on one worker.
constexpr vmi::bench::Target kScanTimePerGigabyte{"psscan on one worker, scan time per 10^9 bytes", 1000, "ms"};
// Peak RSS stays bounded whatever the image's size: the same bound for 512 MiB and 1 GiB.
constexpr vmi::bench::Target kScanPeakRss{"psscan, whole process, peak RSS", 64, "MiB"};

void print_row(std::string_view image, std::string_view workers, std::string_view scan_ms, std::string_view gbps,
               std::string_view per_worker, std::string_view wall_ms, std::string_view rss, std::string_view target) {
  fmt::print("{:<30} {:>7} {:>11} {:>8} {:>12} {:>13} {:>13} {:>7}\n", image, workers, scan_ms, gbps, per_worker,
             wall_ms, rss, target);
}

// The median time of `runs` in-process scans after a warm-up one; nullopt after reporting a failure.
std::optional<double> median_scan_ms(vmi::Session& session, unsigned workers, int runs, Verdict& verdict,
                                     const std::string& what) {
  auto kernel = session.kernel();
  if (!kernel) {
    verdict.run_failed(what, "no kernel: " + kernel.error().message);
    return std::nullopt;
  }
  std::vector<double> times;
  for (int i = 0; i <= runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto tasks = vmi::linux_objects::scan_for_tasks(**kernel, session.image(), {.workers = workers, .progress = {}},
                                                    session.diagnostics());
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (!tasks || tasks->empty()) {
      verdict.run_failed(what, tasks ? "no task carved" : tasks.error().message);
      return std::nullopt;
    }
    if (i > 0) times.push_back(ms);  // the first run warms the page cache
  }
  std::ranges::sort(times);
  return times[times.size() / 2];
}

void measure_image(const fs::path& image, const std::string& label, int runs, Verdict& verdict) {
  vmi::SessionOptions options;
  options.profile_paths = {VMI_BENCH_PROFILE};
  auto session = vmi::Session::open(image, options);
  if (!session) {
    verdict.run_failed(label, session.error().message);
    print_row(label, "", "FAILED", "", "", "", "", "");
    return;
  }
  const double gigabytes = static_cast<double>(fs::file_size(image)) / 1e9;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  for (const unsigned workers : {1u, cores}) {
    const std::string what = fmt::format("{} on {} worker(s)", label, workers);
    const auto scan_ms = median_scan_ms(*session, workers, runs, verdict, what);
    const auto cli = vmi::bench::run_repeated(
        {VMI_BENCH_CLI, "--profile", VMI_BENCH_PROFILE, "psscan", "--jobs", std::to_string(workers), image.string()},
        runs);
    if (!cli.ok()) verdict.run_failed(what + " (CLI)", cli.first.ok ? cli.failure : cli.first.failure);
    std::string target;
    if (scan_ms && workers == 1) target = verdict.hold(kScanTimePerGigabyte, *scan_ms / gigabytes);
    if (cli.ok()) {
      const std::string rss = verdict.hold(kScanPeakRss, cli.max_rss_mib);
      target = target.empty() || target == "met" ? rss : target;
    }
    const double gbps = scan_ms ? gigabytes / (*scan_ms / 1000) : 0;
    print_row(label, std::to_string(workers), figure(scan_ms.has_value(), scan_ms.value_or(0)),
              figure(scan_ms.has_value(), gbps, 2), figure(scan_ms.has_value(), gbps / workers, 2),
              figure(cli.ok(), cli.median_ms), figure(cli.ok(), cli.max_rss_mib), target);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const auto parsed = vmi::bench::parse_run_options(argc, argv, kUsage);
  if (const int* exit_status = std::get_if<int>(&parsed)) return *exit_status;
  const auto& options = *std::get_if<vmi::bench::RunOptions>(&parsed);
  const int runs = options.runs;
  Verdict verdict({&kScanTimePerGigabyte, &kScanPeakRss});
  const fs::path raw = vmi::bench::samples_dir() / kSample / "memory.raw";
  const fs::path scratch = fs::temp_directory_path() / fmt::format("vmi-bench-scan-{}", ::getpid());
  fmt::print("psscan, median of {} warm runs; {} cores\n", runs, std::max(1u, std::thread::hardware_concurrency()));
  print_row("image", "workers", "scan ms", "GB/s", "GB/s/worker", "CLI wall ms", "CLI peak MiB", "target");
  if (!fs::is_regular_file(raw)) {
    verdict.run_failed(std::string(kSample), raw.string() + " not found: run samples/build-samples.sh");
    return verdict.finish(options.check);
  }
  measure_image(raw, fmt::format("{} (512 MiB)", kSample), runs, verdict);
  // 1 GiB: the raw image twice, written to scratch (a real file, so every page is read).
  fs::create_directories(scratch);
  const fs::path doubled = scratch / "memory-twice.raw";
  {
    std::ofstream out(doubled, std::ios::binary);
    for (int copy = 0; copy < 2 && out; ++copy) {
      std::ifstream in(raw, std::ios::binary);
      out << in.rdbuf();
    }
    if (!out) verdict.run_failed("1 GiB image", "could not write " + doubled.string());
  }
  measure_image(doubled, "sample written twice (1 GiB)", runs, verdict);
  std::error_code ignored;
  fs::remove_all(scratch, ignored);
  return verdict.finish(options.check);
}
