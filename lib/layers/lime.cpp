// LiME dumps (Linux Memory Extractor, lime.ko format=lime): a 32-byte header before each
// guest-physical range; the header's end address is INCLUSIVE and becomes half-open here.
#include <algorithm>
#include <cstring>

#include "layers/formats.hpp"
#include "layers/segment_layer.hpp"

namespace vmi {

namespace {

constexpr std::uint32_t kLimeMagic = 0x4C694D45;  // "EMiL" on disk (little-endian)
constexpr std::uint32_t kLimeVersion = 1;
constexpr std::size_t kMaxLimeRanges = 1u << 16;  // lime.ko writes one per System RAM resource

struct LimeHeader {
  std::uint32_t magic;
  std::uint32_t version;
  std::uint64_t s_addr;  // first physical address
  std::uint64_t e_addr;  // last physical address (inclusive)
  std::uint8_t reserved[8];
};
static_assert(sizeof(LimeHeader) == 32);

class LimeLayer final : public SegmentLayer {
 public:
  explicit LimeLayer(std::shared_ptr<const FileMapping> file)
      : SegmentLayer("LiME '" + file->path().string() + "'", file), file_(std::move(file)) {}
  std::string_view format() const override { return "lime"; }
  Expected<void> parse();

 private:
  Error fail(Errc code, const std::string& what) const {
    return make_error(code, "LiME '" + file_->path().string() + "': " + what);
  }
  std::shared_ptr<const FileMapping> file_;
};

Expected<void> LimeLayer::parse() {
  const auto bytes = file_->bytes();
  const std::uint64_t size = bytes.size();
  std::vector<Segment> segments;
  std::uint64_t offset = 0;
  while (offset < size) {
    if (segments.size() >= kMaxLimeRanges) {
      return fail(Errc::limit_exceeded, "more than " + std::to_string(kMaxLimeRanges) +
                                            " ranges (next header at offset " + hex(offset) + ")");
    }
    if (size - offset < sizeof(LimeHeader)) {
      return fail(Errc::truncated, "header #" + std::to_string(segments.size()) + " at offset " + hex(offset) +
                                       " is cut short by end of file (" + hex(size) + ")");
    }
    LimeHeader header;
    std::memcpy(&header, bytes.data() + offset, sizeof header);
    const std::string which = "header #" + std::to_string(segments.size()) + " at offset " + hex(offset);
    if (header.magic != kLimeMagic)
      return fail(Errc::bad_format, which + ": magic " + hex(header.magic) + " is not " + hex(kLimeMagic));
    if (header.version != kLimeVersion)
      return fail(Errc::unsupported, which + ": version " + std::to_string(header.version) + " (only 1 is defined)");
    if (header.e_addr < header.s_addr) {
      return fail(Errc::bad_format,
                  which + ": end address " + hex(header.e_addr) + " is below start address " + hex(header.s_addr));
    }
    if (header.e_addr == ~std::uint64_t{0})
      return fail(Errc::bad_format, which + ": end address " + hex(header.e_addr) + " wraps the address space");
    const Range physical{header.s_addr, header.e_addr + 1};  // inclusive end -> half-open
    const std::uint64_t data_at = offset + sizeof(LimeHeader);
    if (physical.size() > size - data_at) {
      return fail(Errc::truncated, which + ": range " + hex(physical.begin) + "-" + hex(physical.end) + " (" +
                                       hex(physical.size()) + " bytes) runs past end of file (" + hex(size) + ")");
    }
    segments.push_back({physical, data_at});
    offset = data_at + physical.size();
  }
  if (segments.empty()) return fail(Errc::bad_format, "no ranges");
  // Overlap is checked here (sorted copy) rather than per header, to stay O(n log n) at the cap.
  std::vector<Segment> sorted = segments;
  std::sort(sorted.begin(), sorted.end(),
            [](const Segment& a, const Segment& b) { return a.physical.begin < b.physical.begin; });
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    const Segment& a = sorted[i - 1];
    const Segment& b = sorted[i];
    if (a.physical.end > b.physical.begin) {
      return fail(Errc::bad_format, "range " + hex(b.physical.begin) + "-" + hex(b.physical.end) +
                                        " (header at offset " + hex(b.file_offset - sizeof(LimeHeader)) +
                                        ") overlaps range " + hex(a.physical.begin) + "-" + hex(a.physical.end) +
                                        " (header at offset " + hex(a.file_offset - sizeof(LimeHeader)) + ")");
    }
  }
  return set_segments(std::move(segments));
}

}  // namespace

bool probe_lime(const FileMapping& file) {
  if (file.size() < sizeof(LimeHeader)) return false;
  std::uint32_t magic;
  std::memcpy(&magic, file.bytes().data(), sizeof magic);
  return magic == kLimeMagic;
}

Expected<std::unique_ptr<PhysicalImage>> open_lime(std::shared_ptr<const FileMapping> file) {
  auto layer = std::make_unique<LimeLayer>(std::move(file));
  VMI_TRY_VOID(layer->parse());
  return std::unique_ptr<PhysicalImage>(std::move(layer));
}

}  // namespace vmi
