// Virtual address spaces: x86-64 paging over a physical layer, modes described as data.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "vmi/layer.hpp"

namespace vmi {

// A paging mode is data: how many levels, how many index bits each, which levels may map a
// large page. One walker serves them all.
struct PagingMode {
  std::string_view name;
  std::uint8_t levels;             // tables walked from the root
  std::uint8_t bits_per_level;     // index bits per table (512 entries of 8 bytes)
  std::uint8_t virtual_bits;       // canonical address width
  std::uint8_t large_page_levels;  // bit n set: a level-n entry (1 = PTE) may map a whole page
  // Windows x64: a PTE the hardware ignores (present bit clear) may still say where the page is:
  // in transition (still in RAM), through a prototype PTE, or in a pagefile (see x86_paging.cpp).
  bool windows_software_ptes = false;
};

inline constexpr PagingMode kX86_64FourLevel{"x86-64 4-level", 4, 9, 48, 0b0110};
inline constexpr PagingMode kX86_64FiveLevel{"x86-64 5-level (LA57)", 5, 9, 57, 0b0110};
inline constexpr PagingMode kWindowsX64{"x86-64 4-level (Windows)", 4, 9, 48, 0b0110, true};

struct Translation {
  Addr physical = 0;
  std::uint64_t page_size = 0;  // 4 KiB, 2 MiB or 1 GiB
};

class PagedLayer final : public Layer {
 public:
  PagedLayer(std::shared_ptr<const Layer> physical, Addr page_table_root, const PagingMode& mode);

  std::string_view name() const override { return name_; }
  Expected<std::size_t> read(Addr addr, std::span<std::byte> dst) const override;
  // Every mapped run, merged; computed on first use by walking all tables (bounded).
  std::span<const Range> ranges() const override;

  Expected<Translation> translate(Addr va) const;
  Addr page_table_root() const { return root_; }
  const PagingMode& mode() const { return mode_; }
  const Layer& physical() const { return *physical_; }
  const std::shared_ptr<const Layer>& shared_physical() const { return physical_; }

 private:
  // `depth` counts the prototype PTEs being followed (Windows), each read through another walk.
  Expected<Translation> walk(Addr va, int depth = 0) const;
  // A Windows PTE with its present bit clear: the page if it is still in memory.
  Expected<Translation> software_pte(Addr va, std::uint64_t pte, int depth, bool through_prototype) const;
  void enumerate(Addr table, int level, Addr prefix, std::vector<Range>& out, std::size_t& tables_left) const;

  std::shared_ptr<const Layer> physical_;
  Addr root_;
  PagingMode mode_;
  std::string name_;

  // A small direct-mapped cache of 4 KiB translations: plugins revisit the same pages (a task
  // list's links, a struct's fields) far more often than they touch new ones.
  struct CachedTranslation {
    Addr virtual_page = ~Addr{0};
    Addr physical_page = 0;
    std::uint64_t page_size = 0;  // of the mapping the page belongs to
  };
  static constexpr std::size_t kCacheEntries = 1024;
  mutable std::mutex cache_mutex_;
  mutable std::vector<CachedTranslation> cache_;

  mutable std::once_flag ranges_once_;
  mutable std::vector<Range> ranges_;
};

}  // namespace vmi
