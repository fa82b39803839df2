// Recovers a Linux profile from a snapshot with no profile at all (see vmi/profile_recovery.hpp).
//
// Everything here is derived from memory and cross-checked before it is trusted: the root must
// map the banner where the image holds it, kallsyms must put _text where the page tables do, and
// the kernel's own __pgtable_l5_enabled must agree with the paging depth we assumed.
#include "vmi/profile_recovery.hpp"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "os/linux/linux_kernel.hpp"
#include "symbols/linux_profile.hpp"
#include "vmi/kallsyms.hpp"

namespace vmi {
namespace {

constexpr Addr kStartKernelMap = 0xffffffff80000000ull;    // __START_KERNEL_map
constexpr Addr kLinkedText = 0xffffffff81000000ull;        // _text with CONFIG_PHYSICAL_START=16 MiB
constexpr Addr kKernelSpaceStart = 0xffff800000000000ull;  // per-CPU symbols lie below
constexpr std::uint64_t kSlot = 2ull << 20;                // the kernel map uses 2 MiB pages
constexpr std::uint64_t kKernelMapSlots = 512;             // 1 GiB of kernel map
// The top-level table (init_top_pgt) is in the kernel image's data, which with its text and
// BSS spans a few tens of MiB around the banner.
constexpr std::uint64_t kRootSearchBefore = 64ull << 20;
constexpr std::uint64_t kRootSearchAfter = 96ull << 20;
constexpr std::size_t kRootChunk = 2u << 20;
constexpr std::size_t kMaxRootCandidates = 64;  // full checks; cheap pre-checks reject the rest
constexpr std::size_t kMaxKernelMaps = 8;       // every process's top table maps the kernel too
constexpr std::uint64_t kPresent = 1, kLargePage = 1ull << 7;
constexpr std::uint64_t kFrameMask = 0x000ffffffffff000ull;
constexpr std::size_t kMaxNotesBytes = 64u << 10;
constexpr std::size_t kMaxBannerBytes = 1024;

std::optional<std::uint64_t> entry(const Layer& physical, Addr table, unsigned index) {
  auto value = read_value<std::uint64_t>(physical, table + 8ull * index);
  if (!value || (*value & kPresent) == 0) return std::nullopt;
  return *value;
}

// Cheap shape test: the top-level table's last entry leads, through the kernel map's entries
// (511 at each level above the PDPT, then 510), to a page directory. Every entry on the way
// points to a table, never to a large page.
bool looks_like_root(const Layer& physical, std::uint64_t last_entry, int levels) {
  std::uint64_t e = last_entry;  // points to the table one level down
  for (int level = levels - 1; level >= 2; --level) {
    if ((e & kLargePage) != 0) return false;
    if (level == 2) return true;
    auto next = entry(physical, e & kFrameMask, level == 3 ? 510 : 511);
    if (!next) return false;
    e = *next;
  }
  return false;
}

struct KernelMap {
  Addr root = 0;
  const PagingMode* mode = nullptr;
  Addr text_virtual = 0;
  Addr text_physical = 0;
  std::uint64_t image_bytes = 0;  // how far the kernel map stays present after _text
};

// The kernel map is present from _text to _end (rounded to 2 MiB) and cleared around it; inside,
// only a freed init section may leave a slot or two without a page at its start.
std::uint64_t mapped_image_bytes(const PagedLayer& layer, Addr text_virtual) {
  constexpr std::uint64_t kMaxGapSlots = 2;
  std::uint64_t end = text_virtual + kSlot;
  std::uint64_t gap = 0;
  for (Addr va = end; va < kStartKernelMap + kKernelMapSlots * kSlot && gap <= kMaxGapSlots; va += kSlot) {
    if (layer.translate(va)) {
      end = va + kSlot;
      gap = 0;
    } else {
      ++gap;
    }
  }
  return end - text_virtual;
}

// _text is the first present 2 MiB slot of the kernel map; the image is contiguous, so the
// banner must map at the same distance from _text virtually and physically.
std::optional<KernelMap> kernel_map_of(const std::shared_ptr<const PhysicalImage>& image, Addr root,
                                       const PagingMode& mode, Addr banner_physical) {
  PagedLayer layer(image, root, mode);
  for (std::uint64_t slot = 0; slot < kKernelMapSlots; ++slot) {
    const Addr va = kStartKernelMap + slot * kSlot;
    auto text = layer.translate(va);
    if (!text) continue;
    if (text->physical > banner_physical) return std::nullopt;
    auto banner = layer.translate(va + (banner_physical - text->physical));
    if (!banner || banner->physical != banner_physical) return std::nullopt;
    return KernelMap{root, &mode, va, text->physical, mapped_image_bytes(layer, va)};
  }
  return std::nullopt;
}

// Every (root, mode) near the banner that maps it, in address order, deeper paging first.
std::vector<KernelMap> find_kernel_maps(const std::shared_ptr<const PhysicalImage>& image, Addr banner_physical) {
  std::vector<KernelMap> found;
  std::size_t checked = 0;
  const Addr low = banner_physical > kRootSearchBefore ? (banner_physical - kRootSearchBefore) & ~Addr{4095} : 0;
  const Addr high = banner_physical + kRootSearchAfter;
  std::vector<std::byte> chunk(kRootChunk);
  for (const Range& range : image->ranges()) {
    const Addr begin = std::max(range.begin, low);
    const Addr end = std::min(range.end, high);
    for (Addr at = begin & ~Addr{4095}; at < end && checked < kMaxRootCandidates && found.size() < kMaxKernelMaps;
         at += kRootChunk) {
      auto got = image->read(at, std::span(chunk).first(std::min<std::uint64_t>(kRootChunk, end - at)));
      if (image->file() != nullptr) image->file()->release(0, image->file()->size());
      if (!got) continue;
      for (std::size_t page = 0; page + 4096 <= *got && checked < kMaxRootCandidates; page += 4096) {
        std::uint64_t last;
        std::memcpy(&last, chunk.data() + page + 4088, sizeof last);
        if ((last & kPresent) == 0) continue;
        for (const PagingMode* mode : {&kX86_64FiveLevel, &kX86_64FourLevel}) {
          if (!looks_like_root(*image, last, mode->levels)) continue;
          ++checked;
          if (auto map = kernel_map_of(image, at + page, *mode, banner_physical)) found.push_back(*map);
        }
      }
    }
  }
  std::stable_sort(found.begin(), found.end(),
                   [](const KernelMap& a, const KernelMap& b) { return a.mode->levels > b.mode->levels; });
  return found;
}

std::string read_banner(const Layer& space, Addr address) {
  auto text = read_c_string(space, address, kMaxBannerBytes);
  if (!text) return {};
  return *text + '\0';  // linux_banner's bytes, with the NUL as the vmlinux reader keeps it
}

struct Kallsyms {
  std::vector<MapSymbol> symbols;  // link-time addresses, one per name (the last wins)
  std::unordered_map<std::string, Addr> runtime;
};

Kallsyms link_time_symbols(const KallsymsResult& recovered, std::uint64_t shift) {
  Kallsyms out;
  std::unordered_map<std::string_view, std::size_t> index;
  out.symbols.reserve(recovered.symbols.size());
  for (const KallsymsSymbol& symbol : recovered.symbols) {
    // Per-CPU symbols are offsets into the per-CPU area, not addresses: no shift applies.
    const Addr linked = symbol.address >= kKernelSpaceStart ? symbol.address - shift : symbol.address;
    out.runtime[symbol.name] = symbol.address;
    auto [it, inserted] = index.try_emplace(symbol.name, out.symbols.size());
    if (inserted) {
      out.symbols.push_back(MapSymbol{symbol.name, linked, symbol.type});
    } else {
      out.symbols[it->second].address = linked;  // as System.map readers do with repeated names
      out.symbols[it->second].type = symbol.type;
    }
  }
  return out;
}

}  // namespace

std::string read_build_id(const Layer& space, Addr begin, Addr end) {
  if (end <= begin || end - begin > kMaxNotesBytes) return {};
  std::vector<std::byte> notes(static_cast<std::size_t>(end - begin));
  if (!read_exact(space, begin, notes)) return {};
  return gnu_build_id(notes);
}

Expected<RecoveredProfile> recover_linux_profile(const std::shared_ptr<const PhysicalImage>& image) {
  auto banner = os_linux::find_banner(*image);
  if (!banner) {
    return make_error(Errc::not_found, std::string(image->name()) +
                                           ": no Linux kernel found (no 'Linux version' banner in physical memory)");
  }
  return os_linux::recover_profile_at(image, *banner);
}

namespace os_linux {

Expected<RecoveredProfile> recover_profile_at(const std::shared_ptr<const PhysicalImage>& image,
                                              const BannerHit& banner) {
  const std::string where(image->name());
  const std::string context = where + ": recovering a profile for '" + banner.text + "': ";

  const auto maps = find_kernel_maps(image, banner.physical);
  if (maps.empty()) {
    return make_error(Errc::not_found, context + "no page-table root near the banner (physical " +
                                           hex(banner.physical) + ") maps it through the kernel map");
  }
  // Try each candidate until kallsyms decodes and the kernel agrees with our paging depth.
  std::string last_error;
  for (const KernelMap& map : maps) {
    PagedLayer layer(image, map.root, *map.mode);
    // kallsyms lies in the image's read-only data: search only what the kernel map covers.
    auto kallsyms = recover_kallsyms(layer, map.text_virtual, KallsymsOptions{map.image_bytes});
    if (!kallsyms) {
      last_error = kallsyms.error().message;
      continue;
    }
    const std::uint64_t shift = map.text_virtual - std::min(map.text_virtual, kLinkedText);
    Kallsyms symbols = link_time_symbols(*kallsyms, shift);
    auto runtime = [&](std::string_view name) -> std::optional<Addr> {
      auto it = symbols.runtime.find(std::string(name));
      if (it == symbols.runtime.end()) return std::nullopt;
      return it->second;
    };
    if (auto l5 = runtime("__pgtable_l5_enabled")) {
      auto enabled = read_value<std::uint32_t>(layer, *l5);
      if (!enabled || (*enabled != 0) != (map.mode->levels == 5)) {
        last_error = "__pgtable_l5_enabled disagrees with " + std::string(map.mode->name) + " paging";
        continue;
      }
    }
    RecoveredProfile out;
    out.text_virtual = map.text_virtual;
    out.text_physical = map.text_physical;
    out.paging = map.mode;
    out.page_table_root = map.root;
    if (auto top = runtime("init_top_pgt")) {
      if (auto physical = layer.translate(*top)) out.page_table_root = physical->physical;
    }

    const auto start_btf = runtime("__start_BTF");
    const auto stop_btf = runtime("__stop_BTF");
    if (!start_btf || !stop_btf || *stop_btf <= *start_btf) {
      return make_error(
          Errc::not_found,
          context + "kallsyms has no __start_BTF/__stop_BTF (kernel built without CONFIG_DEBUG_INFO_BTF)");
    }
    if (*stop_btf - *start_btf > kMaxBtfBytes) {
      return make_error(Errc::limit_exceeded, context + "BTF at " + hex(*start_btf) + " claims " +
                                                  std::to_string(*stop_btf - *start_btf) + " bytes");
    }
    std::vector<std::byte> btf(static_cast<std::size_t>(*stop_btf - *start_btf));
    VMI_TRY_VOID(read_exact(layer, *start_btf, btf));
    out.btf_virtual = *start_btf;
    out.btf_bytes = btf.size();
    if (auto start = runtime("__start_notes"), stop = runtime("__stop_notes"); start && stop) {
      out.build_id = read_build_id(layer, *start, *stop);
    }

    LinuxProfileParts parts;
    if (auto address = runtime("linux_banner")) parts.banner = read_banner(layer, *address);
    parts.producer = "vmi-forensics snapshot";
    std::optional<Addr> percpu_start;
    for (const MapSymbol& s : symbols.symbols) {
      if (s.name == "__per_cpu_start") percpu_start = s.address;
    }
    const std::string origin = "snapshot BTF at " + hex(*start_btf);
    parts.add_types = [&](ProfileBuilder& builder) -> Expected<std::vector<TypedVariable>> {
      const BtfSummary summary = VMI_TRY(add_btf_types(btf, builder, origin));
      // The per-CPU variables, placed by their offset in .data..percpu.
      std::vector<TypedVariable> variables;
      for (const BtfVariable& variable : summary.variables) {
        if (variable.section == ".data..percpu" && percpu_start) {
          variables.push_back(TypedVariable{variable.name, *percpu_start + variable.offset, variable.type});
        }
      }
      return variables;
    };
    parts.symbols = std::move(symbols.symbols);
    parts.build_id = out.build_id;
    VmlinuxProfileNotes notes;
    auto profile = assemble_linux_profile(parts, notes);
    if (!profile) return make_error(profile.error().code, context + profile.error().message);
    out.profile = std::move(*profile);
    out.types = out.profile.aggregates.size() + out.profile.enums.size() + out.profile.base_types.size();
    out.symbols = out.profile.symbols.size();
    return out;
  }
  return make_error(Errc::bad_format,
                    context + "no candidate page-table root gave readable kallsyms (" + last_error + ")");
}

}  // namespace os_linux

}  // namespace vmi
