// Physical read throughput of every format present for one sample (sequential and random
// 4 KiB reads), and size/time/peak RSS of `convert` against the raw file and `zstd -19`.
#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "measure.hpp"
#include "vmi/image.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

using vmi::bench::Measurement;
using vmi::bench::run;
using vmi::bench::samples_dir;

struct Throughput {
  double sequential_mib_s = 0, random_mib_s = 0;
  std::uint64_t bytes = 0;
};

// Sequential: every 4 KiB page of every range in order. Random: kRandomReads pages picked
// uniformly (fixed seed) among all pages of the ranges. Page cache warm in both.
Throughput measure(const vmi::PhysicalImage& image) {
  constexpr std::size_t kPage = 4096;
  constexpr std::size_t kRandomReads = 65536;
  std::vector<std::byte> buffer(kPage);
  std::vector<vmi::Addr> pages;
  Throughput result;
  const auto start = Clock::now();
  for (const vmi::Range& range : image.ranges()) {
    for (vmi::Addr at = range.begin; at < range.end; at += kPage) {
      pages.push_back(at);
      const auto n = image.read(at, std::span(buffer).first(std::min<std::uint64_t>(kPage, range.end - at)));
      if (n) result.bytes += *n;
    }
  }
  result.sequential_mib_s =
      static_cast<double>(result.bytes) / (1 << 20) / std::chrono::duration<double>(Clock::now() - start).count();
  std::mt19937_64 random(42);
  std::uniform_int_distribution<std::size_t> pick(0, pages.size() - 1);
  std::uint64_t random_bytes = 0;
  const auto random_start = Clock::now();
  for (std::size_t i = 0; i < kRandomReads; ++i) {
    const auto n = image.read(pages[pick(random)], buffer);
    if (n) random_bytes += *n;
  }
  result.random_mib_s = static_cast<double>(random_bytes) / (1 << 20) /
                        std::chrono::duration<double>(Clock::now() - random_start).count();
  return result;
}

double mib(std::uint64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

}  // namespace

int main(int argc, char** argv) {
  const std::string sample = argc > 1 ? argv[1] : "linux-6.1-4level";
  const fs::path dir = samples_dir() / sample;
  if (!fs::exists(dir / "memory.raw")) {
    fmt::print(stderr, "no sample at {} (run samples/build-samples.sh)\n", dir.string());
    return 1;
  }
  const fs::path work = fs::temp_directory_path() / fmt::format("vmi-bench-formats-{}", ::getpid());
  fs::create_directories(work);
  const std::string cli = VMI_BENCH_CLI;
  const auto raw_size = fs::file_size(dir / "memory.raw");

  fmt::print(
      "sample {} (memory.raw {:.0f} MiB)\n\nconversion                          seconds   peak RSS MiB   output MiB   "
      "% of raw\n",
      sample, mib(raw_size));
  struct Output {
    std::string label;
    std::vector<std::string> command;
    fs::path file;
  };
  const std::vector<Output> outputs = {
      {"convert memory.raw (256 KiB, -3)",
       {cli, "convert", (dir / "memory.raw").string(), (work / "raw.vmic").string()},
       work / "raw.vmic"},
      {"convert memory.elf (256 KiB, -3)",
       {cli, "convert", (dir / "memory.elf").string(), (work / "elf.vmic").string()},
       work / "elf.vmic"},
      {"convert memory.raw --chunk-kib 1024",
       {cli, "convert", "--chunk-kib", "1024", (dir / "memory.raw").string(), (work / "raw-1m.vmic").string()},
       work / "raw-1m.vmic"},
      {"convert memory.raw --chunk-kib 64",
       {cli, "convert", "--chunk-kib", "64", (dir / "memory.raw").string(), (work / "raw-64k.vmic").string()},
       work / "raw-64k.vmic"},
      {"convert memory.raw --level 19",
       {cli, "convert", "--level", "19", (dir / "memory.raw").string(), (work / "raw19.vmic").string()},
       work / "raw19.vmic"},
      {"zstd -19 memory.raw",
       {"zstd", "-19", "-q", "-f", (dir / "memory.raw").string(), "-o", (work / "memory.raw.zst").string()},
       work / "memory.raw.zst"},
      {"convert memory.raw.zst",
       {cli, "convert", (work / "memory.raw.zst").string(), (work / "zst.vmic").string()},
       work / "zst.vmic"},
  };
  for (const auto& output : outputs) {
    const Measurement m = run(output.command);
    const auto size = m.ok && fs::exists(output.file) ? fs::file_size(output.file) : 0;
    fmt::print("{:<36}{:>7.2f}   {:>12.1f}   {:>10.1f}   {:>7.2f}%\n", output.label, m.seconds, m.peak_rss_mib,
               mib(size), 100.0 * static_cast<double>(size) / static_cast<double>(raw_size));
  }

  // A LiME file wrapping the raw ranges (converted, not captured), so LiME is measured too.
  {
    auto raw = vmi::open_image(dir / "memory.raw");
    if (raw) {
      std::ofstream out(work / "memory.lime", std::ios::binary);
      std::vector<char> buffer(1 << 20);
      for (const vmi::Range& range : (*raw)->ranges()) {
        struct {
          std::uint32_t magic = 0x4C694D45, version = 1;
          std::uint64_t s_addr, e_addr, reserved = 0;
        } header;
        header.s_addr = range.begin;
        header.e_addr = range.end - 1;
        out.write(reinterpret_cast<const char*>(&header), sizeof header);
        for (vmi::Addr at = range.begin; at < range.end; at += buffer.size()) {
          const auto size = std::min<std::uint64_t>(buffer.size(), range.end - at);
          if (!vmi::read_exact(**raw, at, std::as_writable_bytes(std::span(buffer)).first(size))) break;
          out.write(buffer.data(), static_cast<std::streamsize>(size));
        }
      }
    }
  }

  fmt::print(
      "\nphysical reads (page cache warm)  format          MiB      sequential 4 KiB MiB/s   random 4 KiB MiB/s\n");
  std::vector<fs::path> images;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const auto ext = entry.path().extension().string();
    if (entry.is_regular_file() && ext != ".log" && ext != ".env" && ext != ".txt") images.push_back(entry.path());
  }
  for (const char* name : {"raw.vmic", "raw-1m.vmic", "raw-64k.vmic", "elf.vmic", "memory.lime"})
    images.push_back(work / name);
  std::sort(images.begin(), images.end());
  for (const fs::path& path : images) {
    auto image = vmi::open_image(path);
    if (!image) continue;  // not an image (or a format this build refuses)
    const Throughput t = measure(**image);
    fmt::print("{:<34}{:<16}{:>6.0f}   {:>22.0f}   {:>18.0f}\n", path.filename().string(), (*image)->format(),
               mib(t.bytes), t.sequential_mib_s, t.random_mib_s);
  }
  fs::remove_all(work);
  return 0;
}
