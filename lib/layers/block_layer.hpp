// A virtual address space made only of saved blocks of bytes (a Windows triage dump's kernel
// memory): reads inside a block answer from it, every other address is a hole.
#pragma once

#include <string>
#include <vector>

#include "vmi/image.hpp"

namespace vmi {

class BlockLayer final : public Layer {
 public:
  // Blocks are sorted by address; where one overlaps blocks added before it, the bytes they share
  // are kept from the earlier and a note says so (at most kMaxNotes, then a count).
  BlockLayer(std::string name, const std::vector<SavedBlock>& blocks);
  std::string_view name() const override { return name_; }
  Expected<std::size_t> read(Addr addr, std::span<std::byte> dst) const override;
  std::span<const Range> ranges() const override { return ranges_; }
  // What was dropped on construction, for the session's diagnostics.
  const std::vector<std::string>& notes() const { return notes_; }
  static constexpr std::size_t kMaxNotes = 16;

 private:
  std::string name_;
  std::vector<SavedBlock> blocks_;  // sorted, non-overlapping, none empty
  std::vector<Range> ranges_;       // blocks merged where adjacent
  std::vector<std::string> notes_;
};

}  // namespace vmi
