// The shared base of every format that maps guest-physical runs onto file offsets
// (raw, ELF core, LiME, VMware, ...): formats only produce the segment list.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "vmi/image.hpp"

namespace vmi {

struct Segment {
  Range physical;                 // guest-physical [begin, end)
  std::uint64_t file_offset = 0;  // where physical.begin is stored
};

class SegmentLayer : public PhysicalImage {
 public:
  std::string_view name() const override { return name_; }
  Expected<std::size_t> read(Addr addr, std::span<std::byte> dst) const override;
  std::span<const Range> ranges() const override { return ranges_; }
  const FileMapping* file() const override { return file_.get(); }

 protected:
  SegmentLayer(std::string name, std::shared_ptr<const FileMapping> file)
      : name_(std::move(name)), file_(std::move(file)) {}
  // Sorts and validates the segments: each lies inside the file, none overlap. The error names
  // the file, the segment and the offending numbers.
  Expected<void> set_segments(std::vector<Segment> segments);

 private:
  std::string name_;
  std::shared_ptr<const FileMapping> file_;
  std::vector<Segment> segments_;
  std::vector<Range> ranges_;  // segments merged where adjacent
};

}  // namespace vmi
