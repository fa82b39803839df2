// Reader of vmi-forensics' own container (.vmic, layout in vmi_container.hpp): every field is
// validated on open; reads decompress only the chunks they touch, through a small LRU.
#include "layers/vmi_container.hpp"

#include "layers/bytes.hpp"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <list>
#include <mutex>

#include "layers/decoded_image.hpp"
#include "layers/formats.hpp"

namespace vmi {

std::uint32_t container::crc32(std::span<const std::byte> bytes) {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  // zlib takes uInt lengths: feed 1 GiB at a time.
  for (std::size_t done = 0; done < bytes.size();) {
    const std::size_t step = std::min<std::size_t>(bytes.size() - done, 1u << 30);
    crc = ::crc32(crc, reinterpret_cast<const Bytef*>(bytes.data() + done), static_cast<uInt>(step));
    done += step;
  }
  return static_cast<std::uint32_t>(crc);
}

namespace {

using namespace container;

constexpr std::uint64_t kCacheBytes = 16u << 20;  // decompressed chunks kept (at least 2)

struct DctxDeleter {
  void operator()(ZSTD_DCtx* context) const { ZSTD_freeDCtx(context); }
};

class ContainerLayer final : public DecodedImage {
 public:
  explicit ContainerLayer(std::shared_ptr<const FileMapping> file) : DecodedImage("container", std::move(file)) {}
  std::string_view format() const override { return "vmi-container"; }
  std::vector<std::pair<std::string, std::string>> facts() const override;
  Expected<std::size_t> read(Addr addr, std::span<std::byte> dst) const override;

  Expected<void> parse();

 private:
  Expected<void> parse_metadata(std::span<const std::byte> bytes, std::uint64_t file_offset);
  Expected<std::shared_ptr<const std::vector<std::byte>>> chunk(std::size_t index) const;

  Header header_{};
  std::vector<IndexEntry> index_;
  std::string source_format_;

  mutable std::mutex cache_mutex_;
  mutable std::list<std::pair<std::size_t, std::shared_ptr<const std::vector<std::byte>>>> cache_;  // most recent first
  std::size_t cache_capacity_ = 2;
};

// Checks that a table of `count` entries of `entry_size` bytes at `offset` lies in the file.
bool table_fits(std::uint64_t offset, std::uint64_t count, std::uint64_t entry_size, std::uint64_t file_size) {
  return offset <= file_size && count <= (file_size - offset) / entry_size;
}

Expected<void> ContainerLayer::parse() {
  const auto bytes = file_->bytes();
  const std::uint64_t size = bytes.size();
  if (size < sizeof(Header))
    return fail(Errc::truncated, "file (" + hex(size) + " bytes) is shorter than the " +
                                     std::to_string(sizeof(Header)) + "-byte header");
  header_ = load<Header>(bytes, 0);
  const Header& h = header_;
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0)
    return fail(Errc::bad_format, "bad magic at offset 0x0 (not a vmi-forensics container)");
  if (h.version != kVersion)
    return fail(Errc::unsupported, "version " + std::to_string(h.version) +
                                       " at offset 0x8 (this build reads version " + std::to_string(kVersion) + ")");
  if (h.header_size != sizeof(Header))
    return fail(Errc::bad_format, "header size " + std::to_string(h.header_size) + " at offset 0xc is not " +
                                      std::to_string(sizeof(Header)));
  const auto header_crc = crc32(bytes.first(offsetof(Header, header_crc)));
  if (header_crc != h.header_crc)
    return fail(Errc::bad_format, "header CRC-32 " + hex(header_crc) + " does not match the stored " +
                                      hex(h.header_crc) + " at offset 0x5c");
  if (h.chunk_size < kMinChunkSize || h.chunk_size > kMaxChunkSize || (h.chunk_size & (h.chunk_size - 1)) != 0) {
    return fail(Errc::bad_format, "chunk size " + hex(h.chunk_size) + " at offset 0x10 is not a power of two in " +
                                      hex(kMinChunkSize) + ".." + hex(kMaxChunkSize));
  }
  if (h.flags != 0 || h.reserved != 0 || h.reserved2 != 0)
    return fail(Errc::unsupported, "unknown flags " + hex(h.flags) + " at offset 0x14 or non-zero reserved fields");
  if (h.chunk_count > kMaxChunks)
    return fail(Errc::limit_exceeded, "chunk count " + std::to_string(h.chunk_count) +
                                          " at offset 0x18 exceeds the cap " + std::to_string(kMaxChunks));
  if (h.range_count > kMaxRanges)
    return fail(Errc::limit_exceeded, "range count " + std::to_string(h.range_count) +
                                          " at offset 0x20 exceeds the cap " + std::to_string(kMaxRanges));
  if (h.range_count == 0) return fail(Errc::bad_format, "range count at offset 0x20 is 0");

  if (!table_fits(h.ranges_offset, h.range_count, sizeof(RangeEntry), size)) {
    return fail(Errc::truncated, "range table (" + std::to_string(h.range_count) + " x 16 bytes) at offset " +
                                     hex(h.ranges_offset) + " runs past end of file (" + hex(size) + ")");
  }
  const auto ranges_bytes = bytes.subspan(h.ranges_offset, h.range_count * sizeof(RangeEntry));
  if (crc32(ranges_bytes) != h.ranges_crc)
    return fail(Errc::bad_format, "range table at offset " + hex(h.ranges_offset) + ": CRC-32 " +
                                      hex(crc32(ranges_bytes)) + " does not match the header's " + hex(h.ranges_crc));
  if (!table_fits(h.index_offset, h.chunk_count, sizeof(IndexEntry), size)) {
    return fail(Errc::truncated, "chunk index (" + std::to_string(h.chunk_count) + " x 24 bytes) at offset " +
                                     hex(h.index_offset) + " runs past end of file (" + hex(size) + ")");
  }
  const auto index_bytes = bytes.subspan(h.index_offset, h.chunk_count * sizeof(IndexEntry));
  if (crc32(index_bytes) != h.index_crc)
    return fail(Errc::bad_format, "chunk index at offset " + hex(h.index_offset) + ": CRC-32 " +
                                      hex(crc32(index_bytes)) + " does not match the header's " + hex(h.index_crc));
  if (h.metadata_size > kMaxMetadata)
    return fail(Errc::limit_exceeded,
                "metadata size " + hex(h.metadata_size) + " at offset 0x40 exceeds the cap " + hex(kMaxMetadata));
  if (!table_fits(h.metadata_offset, h.metadata_size, 1, size)) {
    return fail(Errc::truncated, "metadata (" + hex(h.metadata_size) + " bytes) at offset " + hex(h.metadata_offset) +
                                     " runs past end of file (" + hex(size) + ")");
  }
  const auto metadata_bytes = bytes.subspan(h.metadata_offset, h.metadata_size);
  if (crc32(metadata_bytes) != h.metadata_crc)
    return fail(Errc::bad_format, "metadata at offset " + hex(h.metadata_offset) + ": CRC-32 " +
                                      hex(crc32(metadata_bytes)) + " does not match the header's " +
                                      hex(h.metadata_crc));

  for (std::uint64_t i = 0; i < h.range_count; ++i) {
    const auto entry = load<RangeEntry>(ranges_bytes, i * sizeof(RangeEntry));
    const std::string where =
        "range #" + std::to_string(i) + " at offset " + hex(h.ranges_offset + i * sizeof(RangeEntry));
    if (entry.end <= entry.begin)
      return fail(Errc::bad_format, where + ": end " + hex(entry.end) + " is not above begin " + hex(entry.begin));
    if (entry.end > ~std::uint64_t{0} - h.chunk_size)
      return fail(Errc::bad_format,
                  where + ": end " + hex(entry.end) + " is too close to the top of the address space");
    if (!ranges_.empty() && entry.begin < ranges_.back().end)
      return fail(Errc::bad_format, where + ": begin " + hex(entry.begin) + " is below the previous range's end " +
                                        hex(ranges_.back().end));
    if (!ranges_.empty() && entry.begin == ranges_.back().end) {
      ranges_.back().end = entry.end;
    } else {
      ranges_.push_back({entry.begin, entry.end});
    }
  }

  index_.resize(h.chunk_count);
  std::memcpy(index_.data(), index_bytes.data(), index_bytes.size());
  for (std::size_t i = 0; i < index_.size(); ++i) {
    const IndexEntry& e = index_[i];
    const std::string where =
        "chunk #" + std::to_string(i) + " (index entry at offset " + hex(h.index_offset + i * sizeof(IndexEntry)) + ")";
    if (e.address % h.chunk_size != 0)
      return fail(Errc::bad_format, where + ": physical address " + hex(e.address) +
                                        " is not a multiple of the chunk size " + hex(h.chunk_size));
    if (i > 0 && e.address <= index_[i - 1].address)
      return fail(Errc::bad_format, where + ": physical address " + hex(e.address) +
                                        " is not above the previous chunk's " + hex(index_[i - 1].address));
    if (e.compressed_size == 0 || e.file_offset < sizeof(Header) || e.file_offset > size ||
        e.compressed_size > size - e.file_offset) {
      return fail(Errc::truncated, where + ": frame at file offset " + hex(e.file_offset) + " + " +
                                       hex(e.compressed_size) + " bytes runs past end of file (" + hex(size) + ")");
    }
  }
  // Every chunk window a range touches has exactly one chunk, and no chunk lies outside them.
  std::size_t next = 0;
  const std::uint64_t mask = ~std::uint64_t{h.chunk_size - 1};
  for (const Range& range : ranges_) {
    for (std::uint64_t window = range.begin & mask; window < range.end; window += h.chunk_size) {
      if (next > 0 && index_[next - 1].address == window) continue;  // shared with the previous range
      if (next >= index_.size() || index_[next].address != window) {
        return fail(Errc::bad_format, "chunk index at offset " + hex(h.index_offset) + " has no chunk for physical " +
                                          hex(window) + " (range " + hex(range.begin) + "-" + hex(range.end) + ")" +
                                          (next < index_.size() ? "; entry #" + std::to_string(next) + " is for " +
                                                                      hex(index_[next].address)
                                                                : ""));
      }
      ++next;
    }
  }
  if (next != index_.size())
    return fail(Errc::bad_format, "chunk #" + std::to_string(next) + " (physical " + hex(index_[next].address) +
                                      ") lies outside every range");
  cache_capacity_ = static_cast<std::size_t>(std::max<std::uint64_t>(2, kCacheBytes / h.chunk_size));
  return parse_metadata(metadata_bytes, h.metadata_offset);
}

Expected<void> ContainerLayer::parse_metadata(std::span<const std::byte> bytes, std::uint64_t file_offset) {
  std::uint64_t cursor = 0;
  auto short_read = [&](std::uint64_t need, const char* what) {
    return fail(Errc::truncated, std::string("metadata: ") + what + " (" + std::to_string(need) + " bytes) at offset " +
                                     hex(file_offset + cursor) + " runs past the metadata's end (" +
                                     hex(file_offset + bytes.size()) + ")");
  };
  auto u32 = [&](const char* what) -> Expected<std::uint32_t> {
    if (bytes.size() - cursor < 4) return short_read(4, what);
    const auto value = load<std::uint32_t>(bytes, cursor);
    cursor += 4;
    return value;
  };
  auto u64 = [&](const char* what) -> Expected<std::uint64_t> {
    if (bytes.size() - cursor < 8) return short_read(8, what);
    const auto value = load<std::uint64_t>(bytes, cursor);
    cursor += 8;
    return value;
  };
  auto string = [&](const char* what) -> Expected<std::string> {
    const std::uint64_t at = file_offset + cursor;
    const std::uint32_t length = VMI_TRY(u32(what));
    if (length > kMaxString)
      return fail(Errc::limit_exceeded, std::string("metadata: ") + what + " length " + std::to_string(length) +
                                            " at offset " + hex(at) + " exceeds the cap " + std::to_string(kMaxString));
    if (bytes.size() - cursor < length) return short_read(length, what);
    std::string value(reinterpret_cast<const char*>(bytes.data() + cursor), length);
    cursor += length;
    return value;
  };
  auto capped = [&](const char* what, std::uint32_t cap) -> Expected<std::uint32_t> {
    const std::uint64_t at = file_offset + cursor;
    const std::uint32_t count = VMI_TRY(u32(what));
    if (count > cap)
      return fail(Errc::limit_exceeded, std::string("metadata: ") + what + " " + std::to_string(count) + " at offset " +
                                            hex(at) + " exceeds the cap " + std::to_string(cap));
    return count;
  };
  source_format_ = VMI_TRY(string("source format"));
  const std::uint32_t cpu_count = VMI_TRY(capped("vCPU count", kMaxCpus));
  for (std::uint32_t c = 0; c < cpu_count; ++c) {
    CpuState cpu;
    cpu.index = VMI_TRY(u32("vCPU index"));
    const std::uint32_t registers = VMI_TRY(capped("register count", kMaxRegisters));
    for (std::uint32_t r = 0; r < registers; ++r) {
      std::string name = VMI_TRY(string("register name"));
      cpu.registers[std::move(name)] = VMI_TRY(u64("register value"));
    }
    cpus_.push_back(std::move(cpu));
  }
  const std::uint32_t fact_count = VMI_TRY(capped("fact count", kMaxFacts));
  for (std::uint32_t f = 0; f < fact_count; ++f) {
    std::string name = VMI_TRY(string("fact name"));
    std::string value = VMI_TRY(string("fact value"));
    facts_.emplace_back(std::move(name), std::move(value));
  }
  if (cursor != bytes.size())
    return fail(Errc::bad_format, "metadata: " + std::to_string(bytes.size() - cursor) +
                                      " unexpected bytes at offset " + hex(file_offset + cursor));
  return {};
}

std::vector<std::pair<std::string, std::string>> ContainerLayer::facts() const {
  std::uint64_t compressed = 0;
  for (const IndexEntry& e : index_) compressed += e.compressed_size;
  std::vector<std::pair<std::string, std::string>> facts{
      {"source format", source_format_},
      {"container chunks", std::to_string(index_.size()) + " x " + std::to_string(header_.chunk_size >> 10) + " KiB, " +
                               std::to_string(compressed >> 20) + " MiB compressed"}};
  facts.insert(facts.end(), facts_.begin(), facts_.end());
  return facts;
}

Expected<std::shared_ptr<const std::vector<std::byte>>> ContainerLayer::chunk(std::size_t index) const {
  {
    std::lock_guard lock(cache_mutex_);
    for (auto it = cache_.begin(); it != cache_.end(); ++it) {
      if (it->first == index) {
        cache_.splice(cache_.begin(), cache_, it);
        return cache_.front().second;
      }
    }
  }
  // Decompressed outside the lock, so readers on other threads are not serialised.
  const IndexEntry& e = index_[index];
  const std::string where =
      "chunk #" + std::to_string(index) + " (physical " + hex(e.address) + ") at file offset " + hex(e.file_offset);
  thread_local std::unique_ptr<ZSTD_DCtx, DctxDeleter> context(ZSTD_createDCtx());
  if (!context) return fail(Errc::io, "cannot allocate a zstd decompression context");
  auto data = std::make_shared<std::vector<std::byte>>(header_.chunk_size);
  const std::size_t produced = ZSTD_decompressDCtx(context.get(), data->data(), data->size(),
                                                   file_->bytes().data() + e.file_offset, e.compressed_size);
  if (ZSTD_isError(produced)) return fail(Errc::bad_format, where + ": zstd: " + ZSTD_getErrorName(produced));
  if (produced != data->size())
    return fail(Errc::bad_format,
                where + ": decompressed to " + hex(produced) + " bytes, not the chunk size " + hex(data->size()));
  const std::uint32_t crc = crc32(*data);
  if (crc != e.crc)
    return fail(Errc::bad_format,
                where + ": CRC-32 " + hex(crc) + " of the decompressed chunk does not match the index's " + hex(e.crc));
  std::lock_guard lock(cache_mutex_);
  cache_.emplace_front(index, data);
  if (cache_.size() > cache_capacity_) cache_.pop_back();
  return std::shared_ptr<const std::vector<std::byte>>(std::move(data));
}

Expected<std::size_t> ContainerLayer::read(Addr addr, std::span<std::byte> dst) const {
  auto range =
      std::upper_bound(ranges_.begin(), ranges_.end(), addr, [](Addr a, const Range& r) { return a < r.begin; });
  if (range == ranges_.begin() || !std::prev(range)->contains(addr))
    return fail(Errc::unmapped, "no data at physical " + hex(addr));
  --range;
  const std::uint64_t mask = ~std::uint64_t{header_.chunk_size - 1};
  std::size_t done = 0;
  while (done < dst.size() && addr + done < range->end) {
    const Addr at = addr + done;
    const Addr window = at & mask;
    auto entry = std::lower_bound(index_.begin(), index_.end(), window,
                                  [](const IndexEntry& e, Addr a) { return e.address < a; });
    auto data = VMI_TRY(chunk(static_cast<std::size_t>(entry - index_.begin())));  // present: checked on open
    const auto count = std::min<std::uint64_t>({window + header_.chunk_size - at, range->end - at, dst.size() - done});
    std::memcpy(dst.data() + done, data->data() + (at - window), count);
    done += count;
  }
  return done;
}

}  // namespace

bool probe_vmi_container(const FileMapping& file) {
  return file.size() >= sizeof(kMagic) && std::memcmp(file.bytes().data(), kMagic, sizeof kMagic) == 0;
}

Expected<std::unique_ptr<PhysicalImage>> open_vmi_container(std::shared_ptr<const FileMapping> file) {
  auto layer = std::make_unique<ContainerLayer>(std::move(file));
  VMI_TRY_VOID(layer->parse());
  return std::unique_ptr<PhysicalImage>(std::move(layer));
}

}  // namespace vmi
