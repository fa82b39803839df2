// A virtual address space made only of saved blocks of bytes (a Windows triage dump's kernel
// memory): reads inside a block answer from it, every other address is a hole.
#pragma once

#include <string>
#include <vector>

#include "vmi/image.hpp"

namespace vmi {

class BlockLayer final : public Layer {
 public:
  // Blocks are sorted by address; where one overlaps a block added before it, the overlapping
  // bytes are dropped and a note says so (the earlier block's bytes stand).
  BlockLayer(std::string name, const std::vector<SavedBlock>& blocks);
  std::string_view name() const override { return name_; }
  Expected<std::size_t> read(Addr addr, std::span<std::byte> dst) const override;
  std::span<const Range> ranges() const override { return ranges_; }
  // What was dropped on construction, for the session's diagnostics.
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  std::string name_;
  std::vector<SavedBlock> blocks_;  // sorted, non-overlapping, none empty
  std::vector<Range> ranges_;       // blocks merged where adjacent
  std::vector<std::string> notes_;
};

}  // namespace vmi
