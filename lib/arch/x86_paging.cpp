// x86-64 page-table walks (4- and 5-level, 2 MiB and 1 GiB pages, Windows software PTEs) with a
// translation cache.
#include <algorithm>

#include "vmi/paging.hpp"

namespace vmi {

namespace {

constexpr std::uint64_t kPresent = 1u << 0;
constexpr std::uint64_t kPageSizeBit = 1u << 7;
constexpr std::uint64_t kAddressMask = 0x000f'ffff'ffff'f000ull;  // bits 12..51
constexpr unsigned kPageShift = 12;
constexpr std::size_t kMaxTablesEnumerated = 1u << 18;  // 1 GiB of page tables: far past any real guest

// Windows x64 software PTEs (the _MMPTE_* unions of ntoskrnl's PDB): with Valid (bit 0) clear,
// Prototype (bit 10) says the upper bits point to a prototype PTE (shared memory: ProtoAddress,
// bits 16..63, a kernel address); else Transition (bit 11) says the page frame (bits 12..47)
// still holds the page (on a standby or modified list). These bits are the same from Windows 7 to
// 11. Any other non-zero PTE is a page out of memory: in a pagefile or the compressed store,
// whose field positions differ per build (not decoded here), or demand-zero; a zero PTE was never
// committed.
constexpr std::uint64_t kPrototypeBit = 1u << 10;
constexpr std::uint64_t kTransitionBit = 1u << 11;
constexpr std::uint64_t kTransitionFrameMask = 0x0000'ffff'ffff'f000ull;  // bits 12..47
// A prototype address of all ones (in its 48 bits) means "look in the VAD": no PTE to follow.
constexpr std::uint64_t kVadPrototype = 0xffff'ffff'0000ull;
constexpr int kMaxPrototypeDepth = 2;  // a prototype's own page, and that page table's page

// Bits 16..63 of a prototype PTE as the kernel address they name (sign-extended from bit 47).
Addr prototype_address(std::uint64_t pte) {
  const Addr low48 = pte >> 16;
  return (low48 & (Addr{1} << 47)) != 0 ? low48 | 0xffff'0000'0000'0000ull : low48;
}

}  // namespace

PagedLayer::PagedLayer(std::shared_ptr<const Layer> physical, Addr page_table_root, const PagingMode& mode)
    : physical_(std::move(physical)),
      root_(page_table_root & kAddressMask),
      mode_(mode),
      name_(std::string(mode.name) + " (root " + hex(page_table_root & kAddressMask) + ")"),
      cache_(kCacheEntries) {}

Expected<Translation> PagedLayer::walk(Addr va, int depth) const {
  const unsigned top_bit = mode_.virtual_bits - 1;
  const Addr high = va >> top_bit;
  const Addr all_ones = (~Addr{0}) >> top_bit;
  if (high != 0 && high != all_ones) {
    return make_error(Errc::unmapped, name_ + ": " + hex(va) + " is not a canonical address");
  }
  Addr table = root_;
  for (int level = mode_.levels; level >= 1; --level) {
    const unsigned shift = kPageShift + mode_.bits_per_level * (level - 1);
    const Addr index = (va >> shift) & ((Addr{1} << mode_.bits_per_level) - 1);
    auto entry = read_value<std::uint64_t>(*physical_, table + index * 8);
    if (!entry) {
      return make_error(Errc::unmapped, name_ + ": level-" + std::to_string(level) + " table entry for " + hex(va) +
                                            " at physical " + hex(table + index * 8) + " is outside the image");
    }
    if ((*entry & kPresent) == 0) {
      if (level == 1 && mode_.windows_software_ptes) return software_pte(va, *entry, depth, false);
      return make_error(Errc::unmapped,
                        name_ + ": " + hex(va) + " is not mapped (level " + std::to_string(level) + ")");
    }
    const bool large = level > 1 && (*entry & kPageSizeBit) != 0 && ((mode_.large_page_levels >> (level - 1)) & 1) != 0;
    if (level == 1 || large) {
      const std::uint64_t page_size = std::uint64_t{1} << shift;
      const Addr base = *entry & kAddressMask & ~(page_size - 1);
      return Translation{base | (va & (page_size - 1)), page_size};
    }
    table = *entry & kAddressMask;
  }
  return make_error(Errc::unmapped, name_ + ": " + hex(va) + " has no translation");
}

Expected<Translation> PagedLayer::software_pte(Addr va, std::uint64_t pte, int depth, bool through_prototype) const {
  const std::string where = name_ + ": " + hex(va);
  if ((pte & kPresent) != 0) return Translation{(pte & kAddressMask) | (va & 0xfff), 4096};  // a prototype's
  if ((pte & kPrototypeBit) != 0) {
    // A prototype PTE holds a hardware or transition PTE, never another prototype's address.
    if (through_prototype) return make_error(Errc::bad_format, where + ": a prototype PTE points to another");
    if ((pte >> 16) == kVadPrototype)
      return make_error(Errc::unmapped,
                        where + ": the PTE defers to the process's VAD (a file or section not read in)");
    // The prototype lives in kernel memory, whose own PTE may be a software one in turn: bounded.
    if (depth >= kMaxPrototypeDepth)
      return make_error(Errc::bad_format, where + ": prototype PTEs nest deeper than the kernel makes them");
    const Addr prototype = prototype_address(pte);
    const auto held = walk(prototype, depth + 1);
    if (!held)
      return make_error(Errc::unmapped,
                        where + ": its prototype PTE at " + hex(prototype) + " is unreadable: " + held.error().message);
    const auto value = read_value<std::uint64_t>(*physical_, held->physical);
    if (!value)
      return make_error(Errc::unmapped, where + ": its prototype PTE at " + hex(prototype) + " (physical " +
                                            hex(held->physical) + ") is not in the image");
    return software_pte(va, *value, depth, true);
  }
  if ((pte & kTransitionBit) != 0) return Translation{(pte & kTransitionFrameMask) | (va & 0xfff), 4096};
  if (pte == 0) return make_error(Errc::unmapped, where + " is not mapped (no page committed)");
  return make_error(Errc::unmapped, where + " is not in memory (software PTE " + hex(pte) +
                                        ": paged out, compressed or demand-zero): unavailable in this image");
}

Expected<Translation> PagedLayer::translate(Addr va) const {
  const Addr page = va >> kPageShift;
  CachedTranslation& slot = cache_[page % kCacheEntries];
  {
    std::lock_guard lock(cache_mutex_);
    if (slot.virtual_page == page) return Translation{slot.physical_page | (va & 0xfff), slot.page_size};
  }
  auto result = walk(va);
  if (result) {
    std::lock_guard lock(cache_mutex_);
    slot.virtual_page = page;
    slot.physical_page = result->physical & ~Addr{0xfff};
    slot.page_size = result->page_size;
  }
  return result;
}

Expected<std::size_t> PagedLayer::read(Addr addr, std::span<std::byte> dst) const {
  std::size_t done = 0;
  while (done < dst.size()) {
    const Addr at = addr + done;
    auto translation = translate(at);
    if (!translation) {
      if (done == 0) return std::move(translation).error();
      break;
    }
    const std::size_t in_page = 4096 - (at & 0xfff);
    const std::size_t want = std::min(in_page, dst.size() - done);
    auto got = physical_->read(translation->physical, dst.subspan(done, want));
    if (!got) {
      if (done == 0) {
        return make_error(Errc::unmapped, name_ + ": " + hex(at) + " maps to physical " + hex(translation->physical) +
                                              ", which the image does not hold");
      }
      break;
    }
    done += *got;
    if (*got < want) break;
  }
  return done;
}

void PagedLayer::enumerate(Addr table, int level, Addr prefix, std::vector<Range>& out,
                           std::size_t& tables_left) const {
  if (tables_left == 0) return;
  --tables_left;
  std::uint64_t entries[512];
  if (!read_exact(*physical_, table, std::as_writable_bytes(std::span(entries)))) return;
  const unsigned shift = kPageShift + mode_.bits_per_level * (level - 1);
  for (Addr index = 0; index < 512; ++index) {
    const std::uint64_t entry = entries[index];
    // A Windows page in transition is still in memory; a prototype's is found only by reading it.
    const bool transition =
        level == 1 && mode_.windows_software_ptes && (entry & kPrototypeBit) == 0 && (entry & kTransitionBit) != 0;
    if ((entry & kPresent) == 0 && !transition) continue;
    Addr va = prefix | (index << shift);
    if (level == mode_.levels && (va >> (mode_.virtual_bits - 1)) != 0) {
      va |= ~Addr{0} << mode_.virtual_bits;  // sign-extend the upper half
    }
    const bool large = level > 1 && (entry & kPageSizeBit) != 0 && ((mode_.large_page_levels >> (level - 1)) & 1) != 0;
    if (level == 1 || large) {
      const Addr end = va + (Addr{1} << shift);
      if (!out.empty() && out.back().end == va) {
        out.back().end = end;
      } else {
        out.push_back({va, end});
      }
    } else {
      enumerate(entry & kAddressMask, level - 1, va, out, tables_left);
    }
  }
}

std::span<const Range> PagedLayer::ranges() const {
  std::call_once(ranges_once_, [this] {
    std::size_t tables_left = kMaxTablesEnumerated;
    enumerate(root_, mode_.levels, 0, ranges_, tables_left);
  });
  return ranges_;
}

}  // namespace vmi
