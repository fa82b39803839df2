// A scan of all physical memory in chunks, on every core, for carving plugins: each chunk is read
// into a worker's buffer and handed to a visitor, and the mapped file's pages are dropped as the
// scan passes, so peak memory stays near the workers' buffers whatever the image's size.
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "vmi/image.hpp"

namespace vmi {

struct PhysicalScanOptions {
  std::size_t workers = 0;  // 0: one per core
  // Called on the calling thread now and then with bytes scanned and the total.
  std::function<void(std::uint64_t done, std::uint64_t total)> progress;
};

struct PhysicalScanResult {
  std::uint64_t bytes = 0;  // scanned
  unsigned workers = 0;
  std::vector<Addr> unreadable_chunks;  // listed by the image but unreadable: not scanned, sorted
};

inline constexpr std::uint64_t kPhysicalScanChunk = std::uint64_t{4} << 20;

// Hands every chunk of the image's ranges (each beginning 16-byte aligned, at most
// kPhysicalScanChunk bytes) to visit(worker, begin, bytes) on one of the workers; `worker` is the
// visiting thread's index, for visitors that keep per-worker results without locks.
PhysicalScanResult scan_physical(
    const PhysicalImage& image, const PhysicalScanOptions& options,
    const std::function<void(unsigned worker, Addr begin, std::span<const std::byte> bytes)>& visit);

// The worker count scan_physical will use for these options on this image.
unsigned physical_scan_workers(const PhysicalImage& image, const PhysicalScanOptions& options);

}  // namespace vmi
