// Reads through a sorted segment table; written once for every segment-based format.
#include "layers/segment_layer.hpp"

#include <algorithm>
#include <cstring>

namespace vmi {

Expected<void> SegmentLayer::set_segments(std::vector<Segment> segments) {
  std::erase_if(segments, [](const Segment& s) { return s.physical.size() == 0; });
  std::sort(segments.begin(), segments.end(),
            [](const Segment& a, const Segment& b) { return a.physical.begin < b.physical.begin; });
  const std::uint64_t file_size = file_->size();
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const Segment& s = segments[i];
    if (s.physical.end < s.physical.begin || s.file_offset > file_size ||
        s.physical.size() > file_size - s.file_offset) {
      return make_error(Errc::truncated, name_ + ": segment for physical " + hex(s.physical.begin) + "-" +
                                             hex(s.physical.end) + " at file offset " + hex(s.file_offset) +
                                             " runs past end of file (" + hex(file_size) + ")");
    }
    if (i > 0 && segments[i - 1].physical.end > s.physical.begin) {
      return make_error(Errc::bad_format, name_ + ": segments overlap at physical " + hex(s.physical.begin));
    }
  }
  segments_ = std::move(segments);
  ranges_.clear();
  for (const Segment& s : segments_) {
    if (!ranges_.empty() && ranges_.back().end == s.physical.begin) {
      ranges_.back().end = s.physical.end;
    } else {
      ranges_.push_back(s.physical);
    }
  }
  return {};
}

Expected<std::size_t> SegmentLayer::read(Addr addr, std::span<std::byte> dst) const {
  auto it = std::upper_bound(segments_.begin(), segments_.end(), addr,
                             [](Addr a, const Segment& s) { return a < s.physical.begin; });
  if (it == segments_.begin() || !std::prev(it)->physical.contains(addr)) {
    return make_error(Errc::unmapped, name_ + ": no data at physical " + hex(addr));
  }
  --it;
  const auto bytes = file_->bytes();
  std::size_t done = 0;
  // Adjacent segments are one run of memory: continue across them, stop at the first gap.
  while (done < dst.size() && it != segments_.end() && it->physical.contains(addr + done)) {
    const Addr at = addr + done;
    const std::uint64_t in_segment = it->physical.end - at;
    const std::size_t count = static_cast<std::size_t>(std::min<std::uint64_t>(in_segment, dst.size() - done));
    std::memcpy(dst.data() + done, bytes.data() + it->file_offset + (at - it->physical.begin), count);
    done += count;
    ++it;
  }
  return done;
}

}  // namespace vmi
