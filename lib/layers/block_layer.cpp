#include "layers/block_layer.hpp"

#include <algorithm>
#include <map>

namespace vmi {

BlockLayer::BlockLayer(std::string name, const std::vector<SavedBlock>& blocks) : name_(std::move(name)) {
  // What earlier blocks cover, merged, as begin -> end. A block keeps only its bytes outside it,
  // and each merged range is erased at most once, so however the (untrusted) blocks overlap, n
  // of them cost O(n log n).
  std::map<Addr, Addr> covered;
  std::size_t unnoted = 0;
  auto note = [&](std::string text) {
    if (notes_.size() < kMaxNotes) {
      notes_.push_back(std::move(text));
    } else {
      ++unnoted;
    }
  };
  for (const SavedBlock& block : blocks) {
    if (block.bytes.empty()) continue;
    if (block.bytes.size() > ~Addr{0} - block.address) {
      note(name_ + ": block at " + hex(block.address) + " (" + hex(block.bytes.size()) +
           " bytes) wraps the address space; dropped");
      continue;
    }
    const Addr begin = block.address;
    const Addr end = begin + block.bytes.size();
    auto it = covered.upper_bound(begin);
    if (it != covered.begin() && std::prev(it)->second > begin) --it;  // one reaching in from below
    Addr cursor = begin;
    Addr merged_begin = begin;
    Addr merged_end = end;
    const bool overlaps = it != covered.end() && it->first < end;
    for (; it != covered.end() && it->first < end; it = covered.erase(it)) {
      if (it->first > cursor) blocks_.push_back({cursor, block.bytes.subspan(cursor - begin, it->first - cursor)});
      cursor = std::max(cursor, it->second);
      merged_begin = std::min(merged_begin, it->first);
      merged_end = std::max(merged_end, it->second);
    }
    if (cursor < end) blocks_.push_back({cursor, block.bytes.subspan(cursor - begin)});
    covered.emplace(merged_begin, merged_end);
    if (overlaps) {
      note(name_ + ": block at " + hex(begin) + "-" + hex(end) +
           " overlaps memory saved before it; the bytes they share are kept from the earlier");
    }
  }
  if (unnoted > 0) notes_.push_back(name_ + ": " + std::to_string(unnoted) + " more blocks overlapped or wrapped");
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
