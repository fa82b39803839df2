// Physical read throughput of every format one sample has (sequential and random 4 KiB reads),
// and size/time/peak RSS of `convert` against the raw file and `zstd -19`. Sequential reads are
// timed once with the file dropped from the page cache (best effort) and once warm; random reads
// warm. A conversion that fails, or an image that is missing or cannot be opened or read, is a
// FAILED / "could not open" row and makes the exit status non-zero.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "measure.hpp"
#include "vmi/image.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

using vmi::bench::figure;
using vmi::bench::Verdict;

constexpr std::string_view kUsage =
    "usage: vmi-bench-formats [--check] [sample]\n"
    "  sample   a sample directory name in the samples cache (default linux-6.1-4level)\n"
    "  --check  accepted for every benchmark; no target is stated for these figures\n";

constexpr std::size_t kPage = 4096;
constexpr std::size_t kRandomReads = 65536;

double mib(std::uint64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

// One read of at most a page, in a list built before the clock starts.
struct PageRead {
  vmi::Addr at = 0;
  std::size_t size = 0;
};

// Every page of every range in order, and kRandomReads of them picked uniformly (fixed seed):
// made outside the timed loops so those time reads only.
struct ReadPlan {
  std::vector<PageRead> sequential;
  std::vector<vmi::Addr> random;
};

ReadPlan plan_reads(const vmi::PhysicalImage& image) {
  ReadPlan plan;
  for (const vmi::Range& range : image.ranges()) {
    for (vmi::Addr at = range.begin; at < range.end; at += kPage)
      plan.sequential.push_back({at, static_cast<std::size_t>(std::min<std::uint64_t>(kPage, range.end - at))});
  }
  if (plan.sequential.empty()) return plan;
  std::mt19937_64 random(42);
  std::uniform_int_distribution<std::size_t> pick(0, plan.sequential.size() - 1);
  plan.random.reserve(kRandomReads);
  for (std::size_t i = 0; i < kRandomReads; ++i) plan.random.push_back(plan.sequential[pick(random)].at);
  return plan;
}

// One timed pass over a list of reads. A read error ends it: its figure would not be a read rate.
struct Pass {
  bool ok = false;
  std::string failure;
  std::uint64_t bytes = 0;
  double seconds = 0;
  double mib_per_s() const { return seconds > 0 ? mib(bytes) / seconds : 0; }
};

Pass read_sequential(const vmi::PhysicalImage& image, const std::vector<PageRead>& reads) {
  std::vector<std::byte> buffer(kPage);
  Pass pass;
  const auto start = Clock::now();
  for (const PageRead& page : reads) {
    const auto n = image.read(page.at, std::span(buffer).first(page.size));
    if (!n) {
      pass.failure = n.error().message;
      return pass;
    }
    pass.bytes += *n;
  }
  pass.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  pass.ok = true;
  return pass;
}

Pass read_random(const vmi::PhysicalImage& image, const std::vector<vmi::Addr>& pages) {
  std::vector<std::byte> buffer(kPage);
  Pass pass;
  const auto start = Clock::now();
  for (const vmi::Addr at : pages) {
    const auto n = image.read(at, buffer);  // a range's last page may be partial: fewer bytes, not an error
    if (!n) {
      pass.failure = n.error().message;
      return pass;
    }
    pass.bytes += *n;
  }
  pass.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  pass.ok = true;
  return pass;
}

// Asks the kernel to drop the file's pages from the page cache. Best effort: dirty pages are
// flushed first (only clean ones can go), and pages a process still maps stay.
vmi::Expected<void> drop_from_page_cache(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    const int error = errno;
    return vmi::make_error(vmi::Errc::io, fmt::format("open {}: {}", path.string(), std::strerror(error)));
  }
  ::fdatasync(fd);  // a file just written (a container) is dirty; fdatasync on a read-only fd is allowed
  const int error = ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
  if (error != 0)
    return vmi::make_error(vmi::Errc::io, fmt::format("posix_fadvise {}: {}", path.string(), std::strerror(error)));
  return {};
}

// Reads the whole file once so the warm passes find every page in the page cache (the library
// maps images with MADV_RANDOM, so its own reads bring in no read-ahead).
vmi::Expected<void> warm_page_cache(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    const int error = errno;
    return vmi::make_error(vmi::Errc::io, fmt::format("open {}: {}", path.string(), std::strerror(error)));
  }
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);  // a hint; the read pass below is what warms
  std::vector<char> buffer(1 << 20);
  ssize_t n = 0;
  do {
    n = ::read(fd, buffer.data(), buffer.size());
  } while (n > 0 || (n < 0 && errno == EINTR));
  const int error = errno;
  ::close(fd);
  if (n < 0) return vmi::make_error(vmi::Errc::io, fmt::format("read {}: {}", path.string(), std::strerror(error)));
  return {};
}

void print_read_row(std::string_view image, std::string_view format, std::string_view size_mib, std::string_view cold,
                    std::string_view warm, std::string_view random) {
  fmt::print("{:<30}{:<12}{:>6}   {:>18}   {:>17}   {:>17}\n", image, format, size_mib, cold, warm, random);
}

// Opens one image, then: cold sequential pass, whole-file read, warm sequential and random passes.
void measure_reads(const std::string& label, const fs::path& path, Verdict& verdict) {
  const auto could_not_open = [&](const std::string& reason) {
    fmt::print("{:<30}could not open: {}\n", label, reason);
    verdict.run_failed(label, "could not open: " + reason);
  };
  if (!fs::is_regular_file(path)) return could_not_open(path.string() + " not found");
  auto opened = vmi::open_image(path);
  if (!opened) return could_not_open(opened.error().message);
  const vmi::PhysicalImage& image = **opened;
  const ReadPlan plan = plan_reads(image);
  if (plan.sequential.empty()) {
    print_read_row(label, image.format(), "0", "FAILED", "FAILED", "FAILED");
    verdict.run_failed(label, "the image has no physical ranges to read");
    return;
  }
  // Opening faulted in headers (and, for some formats, indexed the whole file) through the
  // mapping; unmap those pages so the page cache may drop them.
  if (const vmi::FileMapping* file = image.file()) file->release(0, file->size());
  if (auto dropped = drop_from_page_cache(path); !dropped)
    fmt::print(stderr, "note {}: cold figure may be warm: {}\n", label, dropped.error().message);
  const Pass cold = read_sequential(image, plan.sequential);
  if (!cold.ok) verdict.run_failed(label + " (cold sequential)", cold.failure);
  const vmi::Expected<void> warmed = warm_page_cache(path);
  if (!warmed) verdict.run_failed(label + " (warming the page cache)", warmed.error().message);
  Pass warm, random;  // not run (FAILED) when the file could not be warmed: they would not be warm figures
  if (warmed) {
    warm = read_sequential(image, plan.sequential);
    if (!warm.ok) verdict.run_failed(label + " (warm sequential)", warm.failure);
    random = read_random(image, plan.random);
    if (!random.ok) verdict.run_failed(label + " (warm random)", random.failure);
  }
  const std::uint64_t bytes = cold.ok ? cold.bytes : warm.bytes;
  print_read_row(label, image.format(), figure(cold.ok || warm.ok, mib(bytes), 0), figure(cold.ok, cold.mib_per_s(), 0),
                 figure(warm.ok, warm.mib_per_s(), 0), figure(random.ok, random.mib_per_s(), 0));
}

// A LiME file wrapping memory.raw's ranges (converted, not captured), so LiME is measured for
// every sample. Any error is returned: a partial file must not be measured as if complete.
vmi::Expected<void> write_lime_from(const fs::path& raw_path, const fs::path& out_path) {
  auto raw = vmi::open_image(raw_path);
  if (!raw) return std::move(raw).error();
  std::ofstream out(out_path, std::ios::binary);
  std::vector<std::byte> buffer(1 << 20);
  for (const vmi::Range& range : (*raw)->ranges()) {
    struct {
      std::uint32_t magic = 0x4C694D45, version = 1;
      std::uint64_t s_addr, e_addr, reserved = 0;
    } header;
    header.s_addr = range.begin;
    header.e_addr = range.end - 1;
    out.write(reinterpret_cast<const char*>(&header), sizeof header);
    for (vmi::Addr at = range.begin; at < range.end; at += buffer.size()) {
      const auto size = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), range.end - at));
      auto copied = vmi::read_exact(**raw, at, std::span(buffer).first(size));
      if (!copied) return std::move(copied).error();
      out.write(reinterpret_cast<const char*>(buffer.data()), static_cast<std::streamsize>(size));
    }
  }
  out.close();
  if (!out) return vmi::make_error(vmi::Errc::io, "writing " + out_path.string() + " failed");
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = vmi::bench::parse_options(argc, argv, kUsage);
  if (!options) return vmi::bench::kExitUsage;
  if (options->help) {
    fmt::print("{}", kUsage);
    return vmi::bench::kExitOk;
  }
  const std::string sample = options->argument.value_or("linux-6.1-4level");
  const fs::path dir = vmi::bench::samples_dir() / sample;
  if (!fs::exists(dir / "memory.raw")) {
    fmt::print(stderr, "FAILED {}: no sample at {} (run samples/build-samples.sh)\n", sample, dir.string());
    return vmi::bench::kExitRunFailed;
  }
  const auto env = vmi::bench::read_sample_env(dir);
  const auto claimed = vmi::bench::claimed_memory_files(env);
  const bool has_elf = std::find(claimed.begin(), claimed.end(), "memory.elf") != claimed.end();
  const fs::path work = fs::temp_directory_path() / fmt::format("vmi-bench-formats-{}", ::getpid());
  fs::create_directories(work);
  const std::string cli = VMI_BENCH_CLI;
  const auto raw_size = fs::file_size(dir / "memory.raw");
  Verdict verdict;  // no target is stated for conversion or read throughput

  fmt::print(
      "sample {} (memory.raw {:.0f} MiB)\n\nconversion                          seconds   peak RSS MiB   output MiB   "
      "% of raw\n",
      sample, mib(raw_size));
  struct Output {
    std::string label;
    std::vector<std::string> command;
    fs::path file;
  };
  const std::string raw = (dir / "memory.raw").string();
  std::vector<Output> outputs = {
      {"convert memory.raw (256 KiB, -3)", {cli, "convert", raw, (work / "raw.vmic").string()}, work / "raw.vmic"},
      {"convert memory.raw --chunk-kib 1024",
       {cli, "convert", "--chunk-kib", "1024", raw, (work / "raw-1m.vmic").string()},
       work / "raw-1m.vmic"},
      {"convert memory.raw --chunk-kib 64",
       {cli, "convert", "--chunk-kib", "64", raw, (work / "raw-64k.vmic").string()},
       work / "raw-64k.vmic"},
      {"convert memory.raw --level 19",
       {cli, "convert", "--level", "19", raw, (work / "raw19.vmic").string()},
       work / "raw19.vmic"},
      {"zstd -19 memory.raw",
       {"zstd", "-19", "-q", "-f", raw, "-o", (work / "memory.raw.zst").string()},
       work / "memory.raw.zst"},
      {"convert memory.raw.zst",
       {cli, "convert", (work / "memory.raw.zst").string(), (work / "zst.vmic").string()},
       work / "zst.vmic"},
  };
  if (has_elf) {  // the LiME sample has no memory.elf
    outputs.insert(outputs.begin() + 1,
                   Output{"convert memory.elf (256 KiB, -3)",
                          {cli, "convert", (dir / "memory.elf").string(), (work / "elf.vmic").string()},
                          work / "elf.vmic"});
  }
  for (const auto& output : outputs) {
    const vmi::bench::Measurement m = vmi::bench::run(output.command);
    std::error_code size_error;
    const std::uintmax_t size = m.ok ? fs::file_size(output.file, size_error) : std::uintmax_t{0};
    const bool ok = m.ok && !size_error;
    if (!m.ok) verdict.run_failed(output.label, m.failure);
    if (m.ok && size_error) verdict.run_failed(output.label, "succeeded, but no output file: " + size_error.message());
    fmt::print("{:<36}{:>7}   {:>12}   {:>10}   {:>8}\n", output.label, figure(ok, m.seconds, 2),
               figure(ok, m.peak_rss_mib), figure(ok, mib(size)),
               figure(ok, 100.0 * static_cast<double>(size) / static_cast<double>(raw_size), 2));
  }

  const fs::path lime = work / "raw-wrapped.lime";
  if (auto written = write_lime_from(dir / "memory.raw", lime); !written) {
    std::error_code ignored;
    fs::remove(lime, ignored);  // so its row says could not open, instead of measuring a partial file
    verdict.run_failed("raw-wrapped.lime", "writing it from memory.raw: " + written.error().message);
  }

  fmt::print(
      "\nphysical reads, MiB/s of 4 KiB reads; cold = the file dropped from the page cache first (best\n"
      "effort: posix_fadvise DONTNEED), warm = the file read once through first\n");
  print_read_row("image", "format", "MiB", "cold sequential", "warm sequential", "warm random");
  // What the sample claims (missing ones fail) and any other memory.* file it has.
  std::set<std::string> names(claimed.begin(), claimed.end());
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && name.starts_with("memory.")) names.insert(name);
  }
  for (const std::string& name : names) measure_reads(name, dir / name, verdict);
  std::vector<std::string> made = {"raw.vmic", "raw-1m.vmic", "raw-64k.vmic", "raw-wrapped.lime"};
  if (has_elf) made.insert(made.begin() + 3, "elf.vmic");
  for (const std::string& name : made) measure_reads(name + " (made here)", work / name, verdict);

  std::error_code ignored;
  fs::remove_all(work, ignored);
  return verdict.finish(options->check);
}
