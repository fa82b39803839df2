// Windows plugins, timed through the CLI (whole process: wall time and peak RSS) on SYNTHETIC
// Windows 10 2004 images (no Windows guest can be booted here): fuzz/targets/windows_fuzz_image.hpp's
// image as a raw file, padded with pseudo-random bytes to 512 MiB (so scans and page-cache effects
// are those of a real size), as a full crash dump, as a triage dump, and as another patch level
// (found through the KDBG block). A run that fails is a FAILED row and makes the exit status
// non-zero. No target is stated for these figures.
#include <fmt/format.h>
#include <malloc.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "measure.hpp"
#include "windows_fuzz_image.hpp"

namespace fs = std::filesystem;

namespace {

using vmi::bench::figure;
using vmi::bench::Verdict;

constexpr std::string_view kUsage =
    "usage: vmi-bench-windows [--check] [runs]\n"
    "  runs     timed runs per figure after a warm-up run (default 5)\n"
    "  --check  accepted for every benchmark; no target is stated for these figures\n";

constexpr std::uint64_t kPaddedSize = 512ull << 20;

bool write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

// The raw image, then pseudo-random bytes (fixed seed) up to kPaddedSize.
bool write_padded(const fs::path& path, const std::string& raw) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(raw.data(), static_cast<std::streamsize>(raw.size()));
  std::mt19937_64 random(7);
  std::vector<std::uint64_t> chunk((1u << 20) / 8);
  for (std::uint64_t written = raw.size(); written < kPaddedSize; written += chunk.size() * 8) {
    for (auto& word : chunk) word = random();
    const std::uint64_t n = std::min<std::uint64_t>(chunk.size() * 8, kPaddedSize - written);
    out.write(reinterpret_cast<const char*>(chunk.data()), static_cast<std::streamsize>(n));
  }
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  const auto parsed = vmi::bench::parse_run_options(argc, argv, kUsage);
  if (const int* exit_now = std::get_if<int>(&parsed)) return *exit_now;
  const auto options = std::get<vmi::bench::RunOptions>(parsed);

  std::error_code error;
  const fs::path dir = fs::temp_directory_path() / fmt::format("vmi-bench-windows-{}", ::getpid());
  fs::create_directories(dir, error);
  const vmi_fuzz::WindowsImage current = vmi_fuzz::windows_image();  // owned here
  const vmi_fuzz::WindowsImage other = vmi_fuzz::windows_image(0x40);
  const auto& w = *current.image;

  const std::vector<std::pair<std::string, bool>> files = {
      {"raw", write_file(dir / "raw", w.raw_image())},
      {"raw-512m", write_padded(dir / "raw-512m", w.raw_image())},
      {"full.dmp", write_file(dir / "full.dmp", vmi_synthetic::crash_dump(w, vmi_synthetic::DumpKind::full))},
      {"triage.dmp", write_file(dir / "triage.dmp", vmi_synthetic::triage_dump(w, vmi_fuzz::triage_spec(current)))},
      {"patch-level-raw", write_file(dir / "patch-level-raw", other.image->raw_image())}};
  // A forked child's peak RSS counts the parent's pages until it execs: give the images back first.
  delete current.image;
  delete other.image;
  ::malloc_trim(0);
  const std::vector<std::pair<std::string, std::string>> runs = {
      {"raw", "pslist"},        {"raw", "handles"},        {"raw", "modules"},           {"raw", "dlllist"},
      {"raw-512m", "pslist"},   {"raw-512m", "psscan"},    {"full.dmp", "pslist"},       {"full.dmp", "handles"},
      {"triage.dmp", "pslist"}, {"triage.dmp", "modules"}, {"patch-level-raw", "pslist"}};

  Verdict verdict;
  fmt::print("{:<16} {:<9} {:>10} {:>11} {:>13}\n", "image", "plugin", "first ms", "median ms", "peak RSS MiB");
  for (const auto& [file, plugin] : runs) {
    const std::string what = fmt::format("{} on {}", plugin, file);
    const bool written = std::ranges::find(files, std::pair<std::string, bool>{file, true}) != files.end();
    if (!written) {
      fmt::print("{:<16} {:<9} {:>10} {:>11} {:>13}\n", file, plugin, "FAILED", "FAILED", "FAILED");
      verdict.run_failed(what, "the synthetic image could not be written to " + (dir / file).string());
      continue;
    }
    const auto repeated = vmi::bench::run_repeated(
        {VMI_BENCH_CLI, "--profile", VMI_SOURCE_PROFILES_DIR "/windows", plugin, (dir / file).string()}, options.runs);
    fmt::print("{:<16} {:<9} {:>10} {:>11} {:>13}\n", file, plugin,
               figure(repeated.first.ok, repeated.first.seconds * 1000), figure(repeated.ok(), repeated.median_ms),
               figure(repeated.ok(), repeated.max_rss_mib));
    if (!repeated.ok()) verdict.run_failed(what, repeated.first.ok ? repeated.failure : repeated.first.failure);
  }
  fs::remove_all(dir, error);
  return verdict.finish(options.check);
}
