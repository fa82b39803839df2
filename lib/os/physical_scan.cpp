// Chunks taken from a shared counter by each worker; one worker drops the file's pages every
// kReleaseEvery bytes (the others' current chunks fault back from the page cache).
#include "os/physical_scan.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace vmi {

namespace {

constexpr std::uint64_t kReleaseEvery = std::uint64_t{16} << 20;
constexpr auto kProgressInterval = std::chrono::milliseconds(100);

std::vector<Range> chunks_of(std::span<const Range> ranges) {
  std::vector<Range> chunks;
  for (const Range& range : ranges) {
    for (Addr begin = (range.begin + 15) & ~Addr{15}; begin < range.end; begin += kPhysicalScanChunk)
      chunks.push_back({begin, std::min(range.end, begin + kPhysicalScanChunk)});
  }
  return chunks;
}

}  // namespace

unsigned physical_scan_workers(const PhysicalImage& image, const PhysicalScanOptions& options) {
  const std::size_t chunks = chunks_of(image.ranges()).size();
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  return static_cast<unsigned>(
      std::clamp<std::size_t>(options.workers != 0 ? options.workers : cores, 1, std::max<std::size_t>(chunks, 1)));
}

PhysicalScanResult scan_physical(
    const PhysicalImage& image, const PhysicalScanOptions& options,
    const std::function<void(unsigned worker, Addr begin, std::span<const std::byte> bytes)>& visit) {
  const std::vector<Range> chunks = chunks_of(image.ranges());
  PhysicalScanResult result;
  for (const Range& chunk : chunks) result.bytes += chunk.size();
  result.workers = physical_scan_workers(image, options);
  std::atomic<std::size_t> next_chunk{0};
  std::atomic<std::uint64_t> done{0};
  std::atomic<std::uint64_t> released_at{0};
  std::mutex failures;
  auto work = [&](unsigned worker, const std::function<void()>& between_chunks) {
    std::vector<std::byte> buffer(kPhysicalScanChunk);
    for (;;) {
      const std::size_t index = next_chunk.fetch_add(1, std::memory_order_relaxed);
      if (index >= chunks.size()) return;
      const Range& chunk = chunks[index];
      const auto bytes = std::span(buffer).first(chunk.size());
      if (read_exact(image, chunk.begin, bytes)) {
        visit(worker, chunk.begin, bytes);
      } else {
        std::lock_guard lock(failures);
        result.unreadable_chunks.push_back(chunk.begin);
      }
      const std::uint64_t now = done.fetch_add(chunk.size(), std::memory_order_relaxed) + chunk.size();
      std::uint64_t released = released_at.load(std::memory_order_relaxed);
      if (now - released >= kReleaseEvery && image.file() != nullptr &&
          released_at.compare_exchange_strong(released, now))
        image.file()->release(0, image.file()->size());
      if (between_chunks) between_chunks();
    }
  };
  {
    std::vector<std::jthread> helpers;
    for (unsigned i = 1; i < result.workers; ++i) helpers.emplace_back([&work, i] { work(i, {}); });
    // The calling thread scans too, and reports progress between its chunks.
    auto last_report = std::chrono::steady_clock::now();
    work(0, [&] {
      if (!options.progress) return;
      const auto now = std::chrono::steady_clock::now();
      if (now - last_report < kProgressInterval) return;
      last_report = now;
      options.progress(done.load(std::memory_order_relaxed), result.bytes);
    });
  }
  if (options.progress) options.progress(result.bytes, result.bytes);
  if (image.file() != nullptr) image.file()->release(0, image.file()->size());
  std::ranges::sort(result.unreadable_chunks);
  return result;
}

}  // namespace vmi
