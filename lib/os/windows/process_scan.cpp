// Carving _EPROCESS objects out of physical memory by their pool allocations. Every process
// object is a pool block: a 16-byte _POOL_HEADER whose PoolTag is "Proc" ("Pro\xe3" with the
// protected bit Windows 7 sets), then the optional object headers the object's InfoMask names,
// the _OBJECT_HEADER, and the _EPROCESS as its Body. The optional headers' sizes vary, so every
// 16-byte step the block leaves room for is tried, and the _EPROCESS judged by its own
// consistency, never by a list it may have been taken off.
#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>

#include "os/physical_scan.hpp"
#include "vmi/object.hpp"
#include "vmi/windows.hpp"

namespace vmi::windows_objects {

namespace {

constexpr std::uint32_t kProcTag = 0x636f7250;           // "Proc"
constexpr std::uint32_t kProtectedProcTag = 0xe36f7250;  // "Pro\xe3"
constexpr std::uint8_t kProcessObject = 3;               // _DISPATCHER_HEADER.Type of a process
constexpr std::size_t kPoolHeaderSize = 16, kBlockUnit = 16;
constexpr std::size_t kMaxOptionalHeaders = 0xa0;  // process, quota, handle, name, creator, audit info
constexpr Addr kKernelHalf = 0xffff800000000000ull;
constexpr std::uint64_t kMaxPid = std::uint64_t{1} << 32;
constexpr std::size_t kImageNameSize = 15;

struct ProcessScanLayout {
  std::uint32_t size = 0, body = 0, page_table_root = 0, pid = 0, links = 0, name = 0;

  static Expected<ProcessScanLayout> bind(const Profile& p) {
    ProcessScanLayout l;
    const Aggregate* process = p.find_aggregate("_EPROCESS");
    if (process == nullptr) return make_error(Errc::not_found, "the profile has no _EPROCESS");
    l.size = process->size;
    l.body = VMI_TRY(bind_offset(p, "_OBJECT_HEADER", "Body"));
    l.page_table_root =
        VMI_TRY(bind_offset(p, "_EPROCESS", "Pcb")) + VMI_TRY(bind_offset(p, "_KPROCESS", "DirectoryTableBase"));
    l.pid = VMI_TRY(bind_offset(p, "_EPROCESS", "UniqueProcessId"));
    l.links = VMI_TRY(bind_offset(p, "_EPROCESS", "ActiveProcessLinks"));
    l.name = VMI_TRY(bind_offset(p, "_EPROCESS", "ImageFileName"));
    return l;
  }
};

template <class T>
T field(std::span<const std::byte> bytes, std::size_t offset) {
  T value{};
  std::memcpy(&value, bytes.data() + offset, sizeof value);
  return value;
}

// Whether the bytes of an _EPROCESS hold together as one.
bool consistent(const ProcessScanLayout& l, std::span<const std::byte> body) {
  if (std::to_integer<std::uint8_t>(body[0]) != kProcessObject) return false;  // Pcb.Header.Type
  const auto root = field<std::uint64_t>(body, l.page_table_root);
  if ((root & 0x000ffffffffff000ull) == 0 || root >= (std::uint64_t{1} << 52)) return false;
  const auto pid = field<std::uint64_t>(body, l.pid);
  if (pid % 4 != 0 || pid >= kMaxPid) return false;
  if (field<std::uint64_t>(body, l.links) < kKernelHalf || field<std::uint64_t>(body, l.links + 8) < kKernelHalf)
    return false;
  for (std::size_t i = 0; i < kImageNameSize; ++i) {
    const auto c = std::to_integer<unsigned char>(body[l.name + i]);
    if (c == 0) return i > 0;
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// The _EPROCESS in the pool block at `block`, if one is there.
std::optional<Addr> judge_block(const PhysicalImage& image, const ProcessScanLayout& l, Addr block,
                                std::uint8_t block_units, std::vector<std::byte>& buffer) {
  const std::size_t block_size = std::size_t{block_units} * kBlockUnit;
  if (block_size < kPoolHeaderSize + l.body + l.size) return std::nullopt;
  buffer.resize(block_size);
  if (!read_exact(image, block, buffer)) return std::nullopt;
  const auto bytes = std::span<const std::byte>(buffer);
  for (std::size_t header = kPoolHeaderSize; header <= kPoolHeaderSize + kMaxOptionalHeaders; header += 16) {
    const std::size_t body = header + l.body;
    if (body + l.size > block_size) break;
    if (consistent(l, bytes.subspan(body, l.size))) return block + body;
  }
  return std::nullopt;
}

}  // namespace

Expected<std::vector<Process>> scan_for_processes(const Kernel& kernel, const PhysicalImage& image,
                                                  const ProcessScanOptions& options, Diagnostics& diagnostics) {
  if (kernel.os() != "windows") return make_error(Errc::invalid_argument, "not a Windows kernel");
  const auto& bound = kernel.layout<ProcessScanLayout>();
  if (!bound) return bound.error();
  const ProcessScanLayout& l = *bound;
  if (image.ranges().empty()) {
    return make_error(
        Errc::unsupported,
        std::string(image.name()) + " holds no physical memory to carve processes from" +
            (image.saved_virtual_memory() != nullptr ? " (a triage dump saves kernel memory by virtual address only)"
                                                     : ""));
  }
  const unsigned workers = physical_scan_workers(image, {options.workers, {}});
  std::vector<std::vector<Addr>> found(workers);
  std::vector<std::vector<std::byte>> buffers(workers);
  const auto scan = scan_physical(image, {options.workers, options.progress},
                                  [&](unsigned worker, Addr begin, std::span<const std::byte> bytes) {
                                    for (std::size_t at = 0; at + kPoolHeaderSize <= bytes.size(); at += 16) {
                                      const auto tag = field<std::uint32_t>(bytes, at + 4);
                                      if (tag != kProcTag && tag != kProtectedProcTag) [[likely]]
                                        continue;
                                      const auto units = std::to_integer<std::uint8_t>(bytes[at + 2]);
                                      if (auto body = judge_block(image, l, begin + at, units, buffers[worker]))
                                        found[worker].push_back(*body);
                                    }
                                  });
  std::vector<Addr> bodies;
  for (auto& list : found) bodies.insert(bodies.end(), list.begin(), list.end());
  std::ranges::sort(bodies);
  if (bodies.size() > kMaxCarvedProcesses) {
    diagnostics.warn("psscan: " + std::to_string(bodies.size()) + " processes carved, more than " +
                     std::to_string(kMaxCarvedProcesses) + "; those at the highest addresses are left out");
    bodies.resize(kMaxCarvedProcesses);
  }
  for (const Addr chunk : scan.unreadable_chunks)
    diagnostics.warn("psscan: physical memory at " + hex(chunk) + " (up to " +
                     std::to_string(kPhysicalScanChunk >> 20) + " MiB) is listed by " + std::string(image.name()) +
                     " but unreadable; not scanned");
  return read_processes(kernel, bodies, diagnostics, &image);
}

}  // namespace vmi::windows_objects
