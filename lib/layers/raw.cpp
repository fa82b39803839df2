// Raw images (pmemsave, dd of /dev/mem, .vmem): file offset == guest-physical address.
// Sparse files keep their holes as holes.
#include "layers/formats.hpp"
#include "layers/segment_layer.hpp"

namespace vmi {

namespace {

class RawLayer final : public SegmentLayer {
 public:
  explicit RawLayer(const std::shared_ptr<const FileMapping>& file)
      : SegmentLayer("raw '" + file->path().string() + "'", file) {}
  std::string_view format() const override { return "raw"; }
  using SegmentLayer::set_segments;
};

constexpr std::uint64_t kPageSize = 4096;

}  // namespace

bool probe_raw(const FileMapping& file) {
  // Raw has no header; a memory image is a whole number of pages.
  return file.size() >= kPageSize && file.size() % kPageSize == 0;
}

// NOLINTNEXTLINE(performance-unnecessary-value-param): the format table's opener signature
Expected<std::unique_ptr<PhysicalImage>> open_raw(std::shared_ptr<const FileMapping> file) {
  std::vector<Segment> segments;
  for (const Range& extent : file->data_extents()) segments.push_back({extent, extent.begin});
  auto layer = std::make_unique<RawLayer>(file);
  VMI_TRY_VOID(layer->set_segments(std::move(segments)));
  return std::unique_ptr<PhysicalImage>(std::move(layer));
}

}  // namespace vmi
