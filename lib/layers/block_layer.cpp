#include "layers/block_layer.hpp"

#include <algorithm>

namespace vmi {

BlockLayer::BlockLayer(std::string name, const std::vector<SavedBlock>& blocks) : name_(std::move(name)) {
  for (const SavedBlock& block : blocks) {
    if (block.bytes.empty()) continue;
    if (block.bytes.size() > ~Addr{0} - block.address) {
      notes_.push_back(name_ + ": block at " + hex(block.address) + " (" + hex(block.bytes.size()) +
                       " bytes) wraps the address space; dropped");
      continue;
    }
    // The parts of this block no earlier block covers.
    std::vector<SavedBlock> pieces{block};
    for (const SavedBlock& kept : blocks_) {
      const Range k{kept.address, kept.address + kept.bytes.size()};
      std::vector<SavedBlock> rest;
      for (const SavedBlock& piece : pieces) {
        const Range p{piece.address, piece.address + piece.bytes.size()};
        if (p.end <= k.begin || k.end <= p.begin) {
          rest.push_back(piece);
          continue;
        }
        notes_.push_back(name_ + ": block at " + hex(block.address) + " overlaps the one at " + hex(k.begin) +
                         "; its bytes " + hex(std::max(p.begin, k.begin)) + "-" + hex(std::min(p.end, k.end)) +
                         " are dropped");
        if (p.begin < k.begin) rest.push_back({p.begin, piece.bytes.first(k.begin - p.begin)});
        if (k.end < p.end) rest.push_back({k.end, piece.bytes.subspan(k.end - p.begin)});
      }
      pieces = std::move(rest);
    }
    blocks_.insert(blocks_.end(), pieces.begin(), pieces.end());
  }
  std::ranges::sort(blocks_, {}, &SavedBlock::address);
  for (const SavedBlock& block : blocks_) {
    const Range range{block.address, block.address + block.bytes.size()};
    if (!ranges_.empty() && ranges_.back().end == range.begin) {
      ranges_.back().end = range.end;
    } else {
      ranges_.push_back(range);
    }
  }
}

Expected<std::size_t> BlockLayer::read(Addr addr, std::span<std::byte> dst) const {
  std::size_t done = 0;
  // The last block starting at or below the address being read.
  auto block = std::ranges::upper_bound(blocks_, addr, {}, &SavedBlock::address);
  while (done < dst.size()) {
    const Addr at = addr + done;
    if (block == blocks_.begin()) break;
    const SavedBlock& holder = *std::prev(block);
    if (at < holder.address || at - holder.address >= holder.bytes.size()) break;
    const std::size_t offset = at - holder.address;
    const std::size_t count = std::min(dst.size() - done, holder.bytes.size() - offset);
    const auto source = holder.bytes.subspan(offset, count);
    std::ranges::copy(source, dst.subspan(done).begin());
    done += count;
    if (block == blocks_.end() || block->address != addr + done) break;  // a hole follows
    ++block;
  }
  if (done == 0 && !dst.empty()) return make_error(Errc::unmapped, name_ + ": nothing saved at " + hex(addr));
  return done;
}

}  // namespace vmi
