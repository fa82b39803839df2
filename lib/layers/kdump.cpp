// kdump-compressed dumps (makedumpfile's diskdump format, QEMU dump-guest-memory -z/-l/-s), both
// seekable and "flattened" (a stream of (offset, size) records, which QEMU 7.2 always writes).
// Pages are decompressed one at a time on read, through a small bounded cache.
#include <elf.h>
#include <lzo/lzo1x.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <mutex>

#include "layers/bytes.hpp"
#include "layers/decoded_image.hpp"
#include "layers/elf_notes.hpp"
#include "layers/formats.hpp"

namespace vmi {

namespace {

// makedumpfile.h: the flattened format's 4 KiB header, then records of big-endian
// {int64 offset, int64 size} each followed by `size` bytes to place at `offset`.
constexpr char kFlatSignature[16] = "makedumpfile";  // NUL-padded to 16 bytes
constexpr std::uint64_t kFlatHeaderSize = 4096;
constexpr std::int64_t kFlatEndFlag = -1;
constexpr std::size_t kMaxFlatRecords = std::size_t{1} << 26;

// diskdump_mod.h: disk_dump_header at offset 0 (x86-64 layout), kdump_sub_header at block 1.
constexpr char kKdumpSignature[8] = {'K', 'D', 'U', 'M', 'P', ' ', ' ', ' '};
struct RawDiskDumpHeader {
  char signature[8];
  std::int32_t header_version;
  char utsname[6][65];
  char pad[6];
  std::int64_t timestamp_sec, timestamp_usec;
  std::uint32_t status;
  std::int32_t block_size;
  std::int32_t sub_hdr_size;
  std::uint32_t bitmap_blocks;
  std::uint32_t max_mapnr;
  std::uint32_t total_ram_blocks, device_blocks, written_blocks, current_cpu;
  std::int32_t nr_cpus;
};
static_assert(sizeof(RawDiskDumpHeader) == 464);
static_assert(offsetof(RawDiskDumpHeader, status) == 424 && offsetof(RawDiskDumpHeader, block_size) == 428);

struct RawSubHeader {
  std::uint64_t phys_base;
  std::int32_t dump_level;
  std::int32_t split;
  std::uint64_t start_pfn, end_pfn;
  std::uint64_t offset_vmcoreinfo, size_vmcoreinfo;      // header_version >= 3
  std::uint64_t offset_note, size_note;                  // >= 4
  std::uint64_t offset_eraseinfo, size_eraseinfo;        // >= 5
  std::uint64_t start_pfn_64, end_pfn_64, max_mapnr_64;  // >= 6
};
static_assert(sizeof(RawSubHeader) == 104);

struct RawPageDesc {
  std::int64_t offset;  // of the page data, in the (logical) file
  std::uint32_t size;   // of the stored data
  std::uint32_t flags;  // compression, kCompressed*
  std::uint64_t page_flags;
};
static_assert(sizeof(RawPageDesc) == 24);

constexpr std::uint32_t kCompressedZlib = 0x1, kCompressedLzo = 0x2, kCompressedSnappy = 0x4, kIncomplete = 0x8,
                        kCompressedZstd = 0x20;
constexpr std::uint32_t kCompressionMask = kCompressedZlib | kCompressedLzo | kCompressedSnappy | kCompressedZstd;

constexpr std::uint32_t kMinBlockSize = 4096, kMaxBlockSize = 1u << 16;
constexpr std::uint64_t kMaxMapnr = std::uint64_t{1} << 32;  // 16 TiB of 4 KiB pages
constexpr std::uint64_t kMaxSubHeaderBlocks = 1u << 16;
constexpr std::size_t kCachedPages = 32;

std::int64_t load_be64(std::span<const std::byte> bytes, std::size_t offset) {
  return static_cast<std::int64_t>(__builtin_bswap64(load<std::uint64_t>(bytes, offset)));
}

struct FlatRecord {
  std::uint64_t logical = 0;  // where the data belongs in the reassembled dump
  std::uint64_t size = 0;
  std::uint64_t file_offset = 0;  // where it is in this file
};

class KdumpLayer final : public DecodedImage {
 public:
  explicit KdumpLayer(std::shared_ptr<const FileMapping> file) : DecodedImage("kdump", std::move(file)) {}
  std::string_view format() const override { return "kdump"; }
  Expected<std::size_t> read(Addr addr, std::span<std::byte> dst) const override;

  Expected<void> parse();

 private:
  Expected<void> index_flat_records();
  // The bytes at [offset, offset+size) of the reassembled dump: a view into the mapping, or a
  // copy in `scratch` when they straddle flattened records.
  Expected<std::span<const std::byte>> logical(std::uint64_t offset, std::uint64_t size,
                                               std::vector<std::byte>& scratch) const;
  bool dumped(std::uint64_t pfn) const { return pfn < max_mapnr_ && (bitmap_[pfn / 64] >> (pfn % 64) & 1) != 0; }
  Expected<void> copy_page(std::uint64_t pfn, std::size_t in_page, std::span<std::byte> dst) const;
  Expected<void> decompress(const RawPageDesc& desc, std::uint64_t desc_at, std::span<const std::byte> src,
                            std::span<std::byte> page) const;

  bool flattened_ = false;
  std::vector<FlatRecord> records_;  // sorted by logical, non-overlapping
  std::uint64_t logical_size_ = 0;
  std::uint32_t block_size_ = 0;
  std::uint64_t max_mapnr_ = 0;
  std::uint64_t descs_at_ = 0;
  std::vector<std::uint64_t> bitmap_;  // the 2nd bitmap: pages present in the dump
  std::vector<std::uint32_t> rank_;    // set bits before each bitmap word (descriptor index)

  struct CachedPage {
    std::uint64_t pfn = ~std::uint64_t{0};
    std::uint64_t last_use = 0;
    std::vector<std::byte> bytes;
  };
  mutable std::mutex cache_mutex_;
  mutable std::array<CachedPage, kCachedPages> cache_;
  mutable std::uint64_t clock_ = 0;
};

Expected<void> KdumpLayer::index_flat_records() {
  const auto bytes = file_->bytes();
  const std::uint64_t size = bytes.size();
  if (size < kFlatHeaderSize) {
    return fail(Errc::truncated,
                "flattened header (" + hex(kFlatHeaderSize) + " bytes) runs past end of file (" + hex(size) + ")");
  }
  const std::int64_t type = load_be64(bytes, 16);
  const std::int64_t version = load_be64(bytes, 24);
  if (type != 1)
    return fail(Errc::unsupported, "flattened header at 0x10: type " + std::to_string(type) + " is not 1 (flattened)");
  std::uint64_t cursor = kFlatHeaderSize;
  std::uint64_t released = 0;
  bool ended = false;
  // One pass touching only the record headers; pages behind the cursor are dropped from RSS.
  while (cursor < size) {
    if (size - cursor < 16)
      return fail(Errc::truncated,
                  "flattened record header at " + hex(cursor) + " runs past end of file (" + hex(size) + ")");
    const std::int64_t offset = load_be64(bytes, cursor);
    const std::int64_t length = load_be64(bytes, cursor + 8);
    if (offset == kFlatEndFlag) {
      ended = true;
      break;
    }
    if (offset < 0 || length < 0 || static_cast<std::uint64_t>(length) > size - cursor - 16) {
      return fail(Errc::truncated, "flattened record at " + hex(cursor) + " (" + std::to_string(length) +
                                       " bytes for offset " + std::to_string(offset) + ") runs past end of file (" +
                                       hex(size) + ")");
    }
    if (records_.size() >= kMaxFlatRecords)
      return fail(Errc::limit_exceeded, "more than " + std::to_string(kMaxFlatRecords) + " flattened records");
    if (length > 0)
      records_.push_back({static_cast<std::uint64_t>(offset), static_cast<std::uint64_t>(length), cursor + 16});
    cursor += 16 + static_cast<std::uint64_t>(length);
    if (cursor - released >= (std::uint64_t{8} << 20)) {
      file_->release(released, cursor - released);
      released = cursor;
    }
  }
  file_->release(released, cursor - released);
  std::stable_sort(records_.begin(), records_.end(),
                   [](const FlatRecord& a, const FlatRecord& b) { return a.logical < b.logical; });
  for (std::size_t i = 1; i < records_.size(); ++i) {
    const FlatRecord& a = records_[i - 1];
    const FlatRecord& b = records_[i];
    if (b.logical < a.logical + a.size) {
      return fail(Errc::bad_format, "flattened records at " + hex(a.file_offset - 16) + " and " +
                                        hex(b.file_offset - 16) + " overlap at dump offset " + hex(b.logical));
    }
  }
  logical_size_ = records_.empty() ? 0 : records_.back().logical + records_.back().size;
  facts_.emplace_back("kdump layout", "flattened (version " + std::to_string(version) + ", " +
                                          std::to_string(records_.size()) + " records" +
                                          (ended ? "" : ", no end marker") + ")");
  return {};
}

Expected<std::span<const std::byte>> KdumpLayer::logical(std::uint64_t offset, std::uint64_t size,
                                                         std::vector<std::byte>& scratch) const {
  if (offset > logical_size_ || size > logical_size_ - offset) {
    return fail(Errc::truncated, hex(size) + " bytes at dump offset " + hex(offset) + " run past end of " +
                                     (flattened_ ? "the flattened records (" : "file (") + hex(logical_size_) + ")");
  }
  const auto bytes = file_->bytes();
  if (!flattened_) return bytes.subspan(offset, size);
  auto it = std::upper_bound(records_.begin(), records_.end(), offset,
                             [](std::uint64_t o, const FlatRecord& r) { return o < r.logical; });
  if (it != records_.begin() && offset + size <= std::prev(it)->logical + std::prev(it)->size) {
    --it;
    return bytes.subspan(it->file_offset + (offset - it->logical), size);
  }
  scratch.resize(size);
  std::uint64_t done = 0;
  if (it != records_.begin()) --it;
  while (done < size) {
    const std::uint64_t at = offset + done;
    if (it == records_.end() || at < it->logical || at >= it->logical + it->size) {
      if (it != records_.end() && at >= it->logical + it->size) {
        ++it;
        continue;
      }
      return fail(Errc::truncated, "dump offset " + hex(at) + " is not written by any flattened record");
    }
    const std::uint64_t count = std::min(size - done, it->logical + it->size - at);
    std::memcpy(scratch.data() + done, bytes.data() + it->file_offset + (at - it->logical), count);
    done += count;
    ++it;
  }
  return std::span<const std::byte>(scratch);
}

Expected<void> KdumpLayer::parse() {
  const auto bytes = file_->bytes();
  flattened_ =
      bytes.size() >= sizeof kFlatSignature && std::memcmp(bytes.data(), kFlatSignature, sizeof kFlatSignature) == 0;
  if (flattened_) {
    VMI_TRY_VOID(index_flat_records());
  } else {
    logical_size_ = bytes.size();
    facts_.emplace_back("kdump layout", "seekable");
  }
  std::vector<std::byte> scratch;
  const auto header_bytes = VMI_TRY(logical(0, sizeof(RawDiskDumpHeader), scratch));
  const auto header = load<RawDiskDumpHeader>(header_bytes, 0);
  if (std::memcmp(header.signature, kKdumpSignature, sizeof kKdumpSignature) != 0) {
    return fail(Errc::bad_format, "no \"KDUMP   \" signature at dump offset 0x0");
  }
  const auto block_size = static_cast<std::uint32_t>(header.block_size);
  if (header.block_size < static_cast<std::int32_t>(kMinBlockSize) || block_size > kMaxBlockSize ||
      !std::has_single_bit(block_size)) {
    return fail(Errc::bad_format, "block_size " + std::to_string(header.block_size) +
                                      " at dump offset 0x1ac is not a power of two in [" +
                                      std::to_string(kMinBlockSize) + ", " + std::to_string(kMaxBlockSize) + "]");
  }
  block_size_ = block_size;
  if (header.sub_hdr_size < 0 || static_cast<std::uint64_t>(header.sub_hdr_size) > kMaxSubHeaderBlocks) {
    return fail(Errc::limit_exceeded, "sub_hdr_size " + std::to_string(header.sub_hdr_size) +
                                          " blocks at dump offset 0x1b0 (cap " + std::to_string(kMaxSubHeaderBlocks) +
                                          ")");
  }
  if (header.header_version < 1)
    return fail(Errc::unsupported, "header_version " + std::to_string(header.header_version) + " at dump offset 0x8");
  if (header.status & kIncomplete) facts_.emplace_back("kdump status", "incomplete (the dump was cut short)");

  RawSubHeader sub{};
  const std::uint64_t sub_size = header.header_version >= 6 ? sizeof sub : offsetof(RawSubHeader, start_pfn_64);
  {
    const auto sub_bytes = VMI_TRY(logical(block_size, sub_size, scratch));
    std::memcpy(&sub, sub_bytes.data(), sub_size);
  }
  max_mapnr_ = header.header_version >= 6 && sub.max_mapnr_64 != 0 ? sub.max_mapnr_64 : header.max_mapnr;
  if (max_mapnr_ == 0 || max_mapnr_ > kMaxMapnr) {
    return fail(Errc::limit_exceeded,
                "max_mapnr " + std::to_string(max_mapnr_) + " at dump offset " +
                    hex(header.header_version >= 6 ? block_size + offsetof(RawSubHeader, max_mapnr_64) : 0x1b8) +
                    " (must be 1.." + std::to_string(kMaxMapnr) + ")");
  }
  const std::uint64_t bitmap_at = (1 + static_cast<std::uint64_t>(header.sub_hdr_size)) * block_size;
  const std::uint64_t bitmap_size = std::uint64_t{header.bitmap_blocks} * block_size;
  if (bitmap_size / 2 < (max_mapnr_ + 7) / 8) {
    return fail(Errc::bad_format, "bitmap of " + std::to_string(header.bitmap_blocks) +
                                      " blocks (at dump offset 0x1b4) cannot hold " + std::to_string(max_mapnr_) +
                                      " pages twice");
  }
  if (bitmap_at > logical_size_ || bitmap_size > logical_size_ - bitmap_at) {
    return fail(Errc::truncated, "bitmap (" + hex(bitmap_size) + " bytes at dump offset " + hex(bitmap_at) +
                                     ") runs past end of " + (flattened_ ? "the flattened records (" : "file (") +
                                     hex(logical_size_) + ")");
  }
  // The 2nd bitmap (second half) says which pages were written; copy only the max_mapnr bits.
  const auto second = VMI_TRY(logical(bitmap_at + bitmap_size / 2, (max_mapnr_ + 7) / 8, scratch));
  bitmap_.assign((max_mapnr_ + 63) / 64, 0);
  std::memcpy(bitmap_.data(), second.data(), second.size());
  if (max_mapnr_ % 64) bitmap_.back() &= (std::uint64_t{1} << (max_mapnr_ % 64)) - 1;
  rank_.resize(bitmap_.size());
  std::uint64_t dumped_pages = 0;
  for (std::size_t w = 0; w < bitmap_.size(); ++w) {
    rank_[w] = static_cast<std::uint32_t>(dumped_pages);
    dumped_pages += static_cast<std::uint64_t>(std::popcount(bitmap_[w]));
  }
  descs_at_ = bitmap_at + bitmap_size;
  if (descs_at_ > logical_size_ || dumped_pages > (logical_size_ - descs_at_) / sizeof(RawPageDesc)) {
    return fail(Errc::truncated, std::to_string(dumped_pages) + " page descriptors at dump offset " + hex(descs_at_) +
                                     " run past end of " + (flattened_ ? "the flattened records (" : "file (") +
                                     hex(logical_size_) + ")");
  }
  for (std::uint64_t pfn = 0; pfn < max_mapnr_;) {
    const std::uint64_t word = bitmap_[pfn / 64] >> (pfn % 64);
    if (word == 0) {
      pfn = (pfn / 64 + 1) * 64;
      continue;
    }
    pfn += static_cast<std::uint64_t>(std::countr_zero(word));
    if (pfn >= max_mapnr_) break;
    const Addr at = pfn * block_size;
    if (!ranges_.empty() && ranges_.back().end == at) {
      ranges_.back().end += block_size;
    } else {
      ranges_.push_back({at, at + block_size});
    }
    ++pfn;
  }

  if (header.header_version >= 4 && sub.size_note > 0) {
    if (sub.size_note > (std::uint64_t{16} << 20))
      return fail(Errc::limit_exceeded, "note area of " + hex(sub.size_note) + " bytes (cap 16 MiB)");
    std::vector<std::byte> note_scratch;
    const auto notes = VMI_TRY(logical(sub.offset_note, sub.size_note, note_scratch));
    cpus_ = VMI_TRY(parse_cpu_notes(notes, sub.offset_note, name_));
  }
  std::string compression;
  for (auto [bit, label] : {std::pair{kCompressedZlib, "zlib"},
                            {kCompressedLzo, "lzo"},
                            {kCompressedSnappy, "snappy"},
                            {kCompressedZstd, "zstd"}}) {
    if (header.status & bit) compression += std::string(compression.empty() ? "" : "+") + label;
  }
  facts_.emplace_back("kdump header version", std::to_string(header.header_version));
  facts_.emplace_back("kdump block size", std::to_string(block_size));
  facts_.emplace_back("kdump compression", compression.empty() ? "none" : compression);
  facts_.emplace_back("kdump dump level", std::to_string(sub.dump_level));
  facts_.emplace_back("kdump phys_base", hex(sub.phys_base));
  facts_.emplace_back("kdump max_mapnr", std::to_string(max_mapnr_));
  facts_.emplace_back("kdump dumped pages", std::to_string(dumped_pages));
  const std::string_view release(header.utsname[2], strnlen(header.utsname[2], sizeof header.utsname[2]));
  if (!release.empty()) facts_.emplace_back("kdump utsname release", std::string(release));
  for (CachedPage& page : cache_) page.bytes.resize(block_size_);
  return {};
}

Expected<void> KdumpLayer::decompress(const RawPageDesc& desc, std::uint64_t desc_at, std::span<const std::byte> src,
                                      std::span<std::byte> page) const {
  const auto* in = reinterpret_cast<const unsigned char*>(src.data());
  auto* out = reinterpret_cast<unsigned char*>(page.data());
  std::size_t produced = 0;
  bool ok = false;
  const char* codec = "?";
  switch (desc.flags & kCompressionMask) {
    case kCompressedZlib: {
      codec = "zlib";
      uLongf length = page.size();
      ok = uncompress(out, &length, in, src.size()) == Z_OK;
      produced = length;
      break;
    }
    case kCompressedLzo: {
      codec = "lzo";
      static const bool lzo_ready = lzo_init() == LZO_E_OK;
      lzo_uint length = page.size();
      ok = lzo_ready && lzo1x_decompress_safe(in, src.size(), out, &length, nullptr) == LZO_E_OK;
      produced = length;
      break;
    }
    case kCompressedSnappy: {
      codec = "snappy";
      std::size_t length = page.size();
      ok = snappy_uncompress(reinterpret_cast<const char*>(in), src.size(), reinterpret_cast<char*>(out), &length) ==
           SNAPPY_OK;
      produced = length;
      break;
    }
    case kCompressedZstd: {
      codec = "zstd";
      const std::size_t length = ZSTD_decompress(out, page.size(), in, src.size());
      ok = ZSTD_isError(length) == 0;
      produced = ok ? length : 0;
      break;
    }
    default:
      return fail(Errc::bad_format, "page descriptor at dump offset " + hex(desc_at) + " has flags " + hex(desc.flags) +
                                        " (not one codec)");
  }
  if (!ok || produced != page.size()) {
    return fail(Errc::bad_format, std::string(codec) + " page at dump offset " +
                                      hex(static_cast<std::uint64_t>(desc.offset)) + " (" + std::to_string(desc.size) +
                                      " bytes, descriptor at " + hex(desc_at) + ") does not decompress to " +
                                      std::to_string(page.size()) + " bytes");
  }
  return {};
}

Expected<void> KdumpLayer::copy_page(std::uint64_t pfn, std::size_t in_page, std::span<std::byte> dst) const {
  const std::uint64_t index =
      rank_[pfn / 64] +
      static_cast<std::uint64_t>(std::popcount(bitmap_[pfn / 64] & ((std::uint64_t{1} << (pfn % 64)) - 1)));
  const std::uint64_t desc_at = descs_at_ + index * sizeof(RawPageDesc);
  std::vector<std::byte> scratch;
  const auto desc = load<RawPageDesc>(VMI_TRY(logical(desc_at, sizeof(RawPageDesc), scratch)), 0);
  if (desc.offset < 0 || desc.size == 0 || desc.size > block_size_) {
    return fail(Errc::bad_format, "page descriptor at dump offset " + hex(desc_at) + " (physical " +
                                      hex(pfn * block_size_) + "): " + std::to_string(desc.size) + " bytes at " +
                                      std::to_string(desc.offset));
  }
  if ((desc.flags & kCompressionMask) == 0) {  // stored as is (compression did not pay)
    if (desc.size != block_size_) {
      return fail(Errc::bad_format, "uncompressed page at dump offset " + hex(static_cast<std::uint64_t>(desc.offset)) +
                                        " has " + std::to_string(desc.size) + " bytes, not " +
                                        std::to_string(block_size_));
    }
    const auto data = VMI_TRY(logical(static_cast<std::uint64_t>(desc.offset) + in_page, dst.size(), scratch));
    std::memcpy(dst.data(), data.data(), dst.size());
    return {};
  }
  const std::lock_guard lock(cache_mutex_);
  CachedPage* slot = nullptr;
  for (CachedPage& page : cache_) {
    if (page.pfn == pfn) {
      slot = &page;
      break;
    }
  }
  if (slot == nullptr) {
    slot = &*std::min_element(cache_.begin(), cache_.end(),
                              [](const CachedPage& a, const CachedPage& b) { return a.last_use < b.last_use; });
    slot->pfn = ~std::uint64_t{0};
    const auto src = VMI_TRY(logical(static_cast<std::uint64_t>(desc.offset), desc.size, scratch));
    VMI_TRY_VOID(decompress(desc, desc_at, src, slot->bytes));
    slot->pfn = pfn;
  }
  slot->last_use = ++clock_;
  std::memcpy(dst.data(), slot->bytes.data() + in_page, dst.size());
  return {};
}

Expected<std::size_t> KdumpLayer::read(Addr addr, std::span<std::byte> dst) const {
  if (!dumped(addr / block_size_)) return make_error(Errc::unmapped, name_ + ": no data at physical " + hex(addr));
  std::size_t done = 0;
  while (done < dst.size()) {
    const Addr at = addr + done;
    const std::uint64_t pfn = at / block_size_;
    if (!dumped(pfn)) break;
    const auto in_page = static_cast<std::size_t>(at % block_size_);
    const std::size_t count = std::min<std::size_t>(block_size_ - in_page, dst.size() - done);
    VMI_TRY_VOID(copy_page(pfn, in_page, dst.subspan(done, count)));
    done += count;
  }
  return done;
}

}  // namespace

bool probe_kdump(const FileMapping& file) {
  const auto bytes = file.bytes();
  return (bytes.size() >= sizeof kFlatSignature &&
          std::memcmp(bytes.data(), kFlatSignature, sizeof kFlatSignature) == 0) ||
         (bytes.size() >= sizeof kKdumpSignature &&
          std::memcmp(bytes.data(), kKdumpSignature, sizeof kKdumpSignature) == 0);
}

Expected<std::unique_ptr<PhysicalImage>> open_kdump(std::shared_ptr<const FileMapping> file) {
  auto layer = std::make_unique<KdumpLayer>(std::move(file));
  VMI_TRY_VOID(layer->parse());
  return std::unique_ptr<PhysicalImage>(std::move(layer));
}

}  // namespace vmi
