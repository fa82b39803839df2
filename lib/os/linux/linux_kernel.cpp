// Finds a Linux kernel in physical memory with no help from the user.
//
// The kernel image is physically contiguous and laid out exactly as linked, so for a profile
// the banner sits at a known distance from _text. Probing every 2 MiB-aligned physical base
// (CONFIG_PHYSICAL_ALIGN) for that banner finds the physical KASLR shift in a few hundred
// reads; init_top_pgt, at its own known distance, is the page-table root; the virtual shift
// is the 2 MiB step at which _text's virtual address maps to the physical one.
#include "os/linux/linux_kernel.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "vmi/profile_recovery.hpp"

namespace vmi::os_linux {

namespace {

constexpr Addr kStartKernelMap = 0xffffffff80000000ull;  // __START_KERNEL_map
constexpr std::uint64_t kKernelAlign = 2ull << 20;       // smallest CONFIG_PHYSICAL_ALIGN on x86-64
constexpr std::uint64_t kMaxVirtualShift = 1ull << 30;   // KASLR keeps the kernel in its 1 GiB window
constexpr std::string_view kBannerPrefix = "Linux version ";
constexpr std::size_t kMaxBannerSize = 512;
constexpr std::size_t kScanChunk = 8u << 20;

struct ProfileAnchors {
  Addr text, banner, top_pgt;
  std::optional<Addr> l5_flag;
};

Expected<ProfileAnchors> anchors(const Profile& profile) {
  auto need = [&](std::string_view name) -> Expected<Addr> {
    if (auto address = profile.symbol_address(name)) return *address;
    return make_error(Errc::not_found, "profile has no symbol '" + std::string(name) + "'");
  };
  ProfileAnchors a{};
  a.text = VMI_TRY(need("_text"));
  a.banner = VMI_TRY(need("linux_banner"));
  a.top_pgt = VMI_TRY(need("init_top_pgt"));
  a.l5_flag = profile.symbol_address("__pgtable_l5_enabled");
  if (a.banner < a.text || a.top_pgt < a.text)
    return make_error(Errc::bad_format, "profile places linux_banner or init_top_pgt before _text");
  return a;
}

// The physical address of _text, if `banner` is found `banner_offset` bytes past a 2 MiB-aligned
// physical base.
std::optional<Addr> find_text_physical(const PhysicalImage& image, Addr banner_offset, std::string_view banner) {
  const std::string_view expected = banner.empty() ? kBannerPrefix : banner;
  std::string bytes(expected.size(), '\0');
  // Each probe of a mapped file faults in the pages around it too (the kernel's fault-around,
  // 64 KiB, which MADV_RANDOM does not turn off): 13 MiB of RSS to reach a kernel at 416 MiB.
  // Probed pages are dropped every 16 probes; the few needed again fault back from the page cache.
  constexpr unsigned kProbesPerRelease = 16;
  unsigned probes = 0;
  auto release_probed = [&] {
    if (image.file() != nullptr) image.file()->release(0, image.file()->size());
  };
  for (const Range& range : image.ranges()) {
    const Addr first = (range.begin + kKernelAlign - 1) / kKernelAlign * kKernelAlign;
    for (Addr base = first; base < range.end; base += kKernelAlign) {
      auto span = std::as_writable_bytes(std::span(bytes.data(), bytes.size()));
      const bool found = read_exact(image, base + banner_offset, span) && bytes == expected;
      if (found || ++probes % kProbesPerRelease == 0) release_probed();
      if (found) return base;
    }
  }
  release_probed();
  return std::nullopt;
}

std::optional<std::uint64_t> find_virtual_shift(const PagedLayer& layer, const ProfileAnchors& a, Addr text_physical) {
  for (std::uint64_t shift = 0; shift < kMaxVirtualShift; shift += kKernelAlign) {
    auto t = layer.translate(a.text + shift);
    if (t && t->physical == text_physical) {
      auto b = layer.translate(a.banner + shift);  // a second anchor guards against a stray mapping
      if (b && b->physical == text_physical + (a.banner - a.text)) return shift;
    }
  }
  return std::nullopt;
}

struct Match {
  std::shared_ptr<const Profile> profile;
  std::string source;
  KernelPlacement placement;
};

Expected<Match> place_kernel(const std::shared_ptr<const PhysicalImage>& image, std::shared_ptr<const Profile> profile,
                             std::string source) {
  const ProfileAnchors a = VMI_TRY(anchors(*profile));
  const auto text_physical = find_text_physical(*image, a.banner - a.text, profile->banner());
  if (!text_physical) return make_error(Errc::profile_mismatch, "banner of " + source + " not found in the image");

  KernelPlacement placement;
  placement.text_physical = *text_physical;
  placement.physical_shift = static_cast<std::int64_t>(*text_physical - (a.text - kStartKernelMap));
  placement.page_table_root = *text_physical + (a.top_pgt - a.text);

  std::vector<const PagingMode*> modes = {&kX86_64FiveLevel, &kX86_64FourLevel};
  if (a.l5_flag) {
    // The kernel's own record of the paging depth it chose at boot.
    if (auto l5 = read_value<std::uint32_t>(*image, *text_physical + (*a.l5_flag - a.text))) {
      modes = {*l5 != 0 ? &kX86_64FiveLevel : &kX86_64FourLevel};
    }
  }
  for (const PagingMode* mode : modes) {
    PagedLayer layer(image, placement.page_table_root, *mode);
    if (auto shift = find_virtual_shift(layer, a, *text_physical)) {
      placement.virtual_shift = *shift;
      placement.paging = mode;
      return Match{std::move(profile), std::move(source), placement};
    }
  }
  return make_error(Errc::profile_mismatch, "kernel of " + source + " found at physical " + hex(*text_physical) +
                                                ", but init_top_pgt at " + hex(placement.page_table_root) +
                                                " does not map _text in any 2 MiB KASLR slot");
}

namespace fs = std::filesystem;

constexpr std::size_t kMaxRecoveredEntries = 256;  // cache entries tried before recovering anew

std::string banner_key(std::string_view banner) {
  std::uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a
  for (char c : banner) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

constexpr std::uint64_t kMaxBtfHashBytes = 64ull << 20;  // vmlinux BTF is a few MiB

// What names a recovered profile's kernel build in the cache: the GNU build id from the kernel's
// notes, or, for kernels built without one, "btf-" and an FNV-1a hash of the BTF blob the types
// came from (read-only and identical for identical builds). Empty when neither can be read.
// The GNU build id in the kernel's notes in memory; empty when it cannot be read.
std::string memory_build_id(const std::shared_ptr<const PhysicalImage>& image, const Profile& profile,
                            const KernelPlacement& placement) {
  const auto start = profile.symbol_address("__start_notes");
  const auto stop = profile.symbol_address("__stop_notes");
  if (!start || !stop) return {};
  PagedLayer layer(image, placement.page_table_root, *placement.paging);
  return read_build_id(layer, *start + placement.virtual_shift, *stop + placement.virtual_shift);
}

std::string kernel_identity(const std::shared_ptr<const PhysicalImage>& image, const Profile& profile,
                            const KernelPlacement& placement) {
  if (std::string build_id = memory_build_id(image, profile, placement); !build_id.empty()) return build_id;
  PagedLayer layer(image, placement.page_table_root, *placement.paging);
  const auto btf_start = profile.symbol_address("__start_BTF");
  const auto btf_stop = profile.symbol_address("__stop_BTF");
  if (!btf_start || !btf_stop || *btf_stop <= *btf_start || *btf_stop - *btf_start > kMaxBtfHashBytes) return {};
  std::uint64_t hash = 0xcbf29ce484222325ull;
  std::vector<std::byte> chunk(1u << 16);
  for (Addr at = *btf_start; at < *btf_stop; at += chunk.size()) {
    const auto size = static_cast<std::size_t>(std::min<Addr>(chunk.size(), *btf_stop - at));
    if (!read_exact(layer, at + placement.virtual_shift, std::span(chunk.data(), size))) return {};
    for (std::size_t i = 0; i < size; ++i) hash = (hash ^ static_cast<std::uint8_t>(chunk[i])) * 0x100000001b3ull;
  }
  char text[21];
  std::snprintf(text, sizeof text, "btf-%016llx", static_cast<unsigned long long>(hash));
  return text;
}

std::string recovered_note(const Profile& profile, std::string_view suffix) {
  const std::size_t types = profile.aggregates.size() + profile.enums.size() + profile.base_types.size();
  return "profile recovered from snapshot: " + std::to_string(types) + " types, " +
         std::to_string(profile.symbols.size()) + " symbols" + std::string(suffix);
}

fs::path recovered_directory(const fs::path& cache) { return cache / "recovered"; }

// A profile recovered earlier from a snapshot of this kernel: entries whose banner is found in the
// image where their header says (no decompression for the others), that place the kernel, and
// whose build id in memory equals the one in their name.
std::optional<Match> cached_recovered_match(const std::shared_ptr<const PhysicalImage>& image, ProfileCatalog& profiles,
                                            Diagnostics& diagnostics) {
  const auto cache = profiles.cache_directory();
  std::error_code ec;
  if (!cache || !fs::is_directory(recovered_directory(*cache), ec)) return std::nullopt;
  std::size_t seen = 0;
  for (const auto& file : fs::directory_iterator(recovered_directory(*cache), ec)) {
    const std::string name = file.path().filename().string();
    if (!name.ends_with(".vmiprof") || name.size() < 18 || ++seen > kMaxRecoveredEntries) continue;
    auto info = read_cached_info(file.path());
    if (!info || !info->banner_offset || !find_text_physical(*image, *info->banner_offset, info->banner)) continue;
    auto cached = read_cached_profile(file.path());
    if (!cached) {
      diagnostics.warn("ignoring damaged recovered-profile cache entry: " + cached.error().message);
      continue;
    }
    auto profile = std::make_shared<const Profile>(std::move(*cached));
    auto match =
        place_kernel(image, profile, "profile recovered from snapshot (cached in '" + file.path().string() + "')");
    const std::string identity = name.substr(17, name.size() - 17 - 8);
    if (match && kernel_identity(image, *match->profile, match->placement) == identity) {
      diagnostics.note(recovered_note(*match->profile, " (from cache)"));
      return std::move(*match);
    }
  }
  return std::nullopt;
}

// Rebuilds the profile from the snapshot (profile_recovery.cpp) and caches it as
// recovered/<hash of banner>-<build id>.vmiprof.
Expected<Match> recovered_match(const std::shared_ptr<const PhysicalImage>& image, ProfileCatalog& profiles,
                                Diagnostics& diagnostics, const BannerHit& banner) {
  auto recovered = VMI_TRY(recover_profile_at(image, banner));
  auto profile = std::make_shared<const Profile>(std::move(recovered.profile));
  diagnostics.note(recovered_note(*profile, ""));
  auto match = VMI_TRY(place_kernel(image, profile, "profile recovered from snapshot"));
  if (const auto cache = profiles.cache_directory()) {
    const std::string identity = kernel_identity(image, *profile, match.placement);
    if (identity.empty()) {
      diagnostics.warn("recovered profile not cached: the kernel has no build id in memory and its BTF (" +
                       std::to_string(recovered.btf_bytes) + " bytes) cannot be read whole to identify it");
    } else {
      const fs::path path = recovered_directory(*cache) / (banner_key(banner.text) + "-" + identity + ".vmiprof");
      if (auto written = write_cached_profile(path, *profile); !written)
        diagnostics.warn("recovered profile not cached: " + written.error().message);
    }
  }
  return match;
}

}  // namespace

LinuxKernel::LinuxKernel(std::shared_ptr<const PhysicalImage> image, std::shared_ptr<const Profile> profile,
                         std::string profile_source, KernelPlacement placement)
    : image_(std::move(image)),
      profile_(std::move(profile)),
      profile_source_(std::move(profile_source)),
      placement_(placement),
      layer_(std::make_unique<PagedLayer>(image_, placement.page_table_root, *placement.paging)) {}

std::optional<Addr> LinuxKernel::symbol(std::string_view name) const {
  auto address = profile_->symbol_address(name);
  if (!address) return std::nullopt;
  return *address + placement_.virtual_shift;
}

std::vector<std::pair<std::string, std::string>> LinuxKernel::facts() const {
  std::vector<std::pair<std::string, std::string>> facts;
  std::string_view banner = profile_->banner();
  std::string release;
  if (banner.starts_with(kBannerPrefix)) {
    auto rest = banner.substr(kBannerPrefix.size());
    release = std::string(rest.substr(0, rest.find(' ')));
  }
  facts.emplace_back("os", "linux");
  facts.emplace_back("kernel release", release);
  facts.emplace_back("banner", std::string(banner));
  facts.emplace_back("profile", profile_source_);
  facts.emplace_back("paging", std::string(placement_.paging->name));
  facts.emplace_back("page-table root (init_top_pgt)", hex(placement_.page_table_root));
  facts.emplace_back("KASLR virtual shift", hex(placement_.virtual_shift));
  facts.emplace_back("KASLR physical shift", hex(static_cast<std::uint64_t>(placement_.physical_shift)));
  facts.emplace_back("_text", hex(*symbol("_text")) + " (physical " + hex(placement_.text_physical) + ")");
  if (auto page_offset_base = symbol("page_offset_base")) {
    if (auto value = read_value<std::uint64_t>(*layer_, *page_offset_base))
      facts.emplace_back("direct map base", hex(*value));
  }
  return facts;
}

std::optional<BannerHit> find_banner(const PhysicalImage& image) {
  std::string chunk;
  for (const Range& range : image.ranges()) {
    for (Addr at = range.begin; at < range.end; at += kScanChunk) {
      // Overlap chunks by the banner's length so a banner across a boundary is still seen.
      const std::uint64_t size = std::min<std::uint64_t>(kScanChunk + kMaxBannerSize, range.end - at);
      chunk.resize(size);
      auto got = image.read(at, std::as_writable_bytes(std::span(chunk.data(), chunk.size())));
      if (image.file() != nullptr) image.file()->release(0, image.file()->size());
      if (!got) continue;
      std::string_view view(chunk.data(), *got);
      for (std::size_t hit = view.find(kBannerPrefix); hit != std::string_view::npos;
           hit = view.find(kBannerPrefix, hit + 1)) {
        auto text = view.substr(hit, kMaxBannerSize);
        const auto newline = text.find('\n');
        // linux_banner is one line ending in "\n\0" and naming the compiler ("(gcc-12 ...",
        // "(x86_64-linux-gnu-gcc-12 ...", "(Debian clang ..."); copies in logs and buffers run
        // on into other text, format strings say "%s".
        if (newline == std::string_view::npos || newline + 1 >= text.size() || text[newline + 1] != '\0') continue;
        text = text.substr(0, newline);
        if (text.find("gcc") != std::string_view::npos || text.find("clang") != std::string_view::npos) {
          return BannerHit{std::string(text), at + hit};
        }
      }
    }
  }
  return std::nullopt;
}

// NOLINTNEXTLINE(performance-unnecessary-value-param): the OS table's detector signature
Expected<std::unique_ptr<Kernel>> detect_kernel(std::shared_ptr<const PhysicalImage> image, ProfileCatalog& profiles,
                                                Diagnostics& diagnostics) {
  std::vector<std::string> rejected;
  // A single profile the user named is the only candidate: its failure is the answer.
  const bool single = profiles.files().size() == 1;
  for (const auto& file : profiles.files()) {
    auto banner = profiles.banner(file);
    if (!banner) {
      if (single) return std::move(banner).error();
      diagnostics.warn(banner.error().message);
      continue;
    }
    // Not a Linux profile (e.g. a Windows ISF) unless the user named this one alone.
    if (!banner->starts_with(kBannerPrefix) && !(single && banner->empty())) continue;
    auto profile = profiles.load(file);
    if (!profile) {
      if (single) return std::move(profile).error();
      diagnostics.warn(profile.error().message);
      continue;
    }
    auto match = place_kernel(image, *profile, "profile '" + file.string() + "'");
    // Same banner, other build: a profile that knows its build id must carry the one in memory.
    if (match && !(*profile)->build_id().empty()) {
      const std::string in_memory = memory_build_id(image, **profile, match->placement);
      if (!in_memory.empty() && in_memory != (*profile)->build_id()) {
        match = make_error(Errc::profile_mismatch, "profile '" + file.string() + "' is for build " +
                                                       std::string((*profile)->build_id()) +
                                                       ", the kernel in memory is build " + in_memory);
      }
    }
    if (match) {
      return std::unique_ptr<Kernel>(
          std::make_unique<LinuxKernel>(image, std::move(match->profile), std::move(match->source), match->placement));
    }
    rejected.push_back(match.error().message);
  }
  const bool recover = !single && profiles.snapshot_recovery();
  if (recover) {
    if (auto match = cached_recovered_match(image, profiles, diagnostics)) {
      return std::unique_ptr<Kernel>(
          std::make_unique<LinuxKernel>(image, std::move(match->profile), std::move(match->source), match->placement));
    }
  }
  const std::string where = std::string(image->name());
  auto banner = find_banner(*image);
  if (!banner)
    return make_error(Errc::not_found,
                      where + ": no Linux kernel found (no 'Linux version' banner in physical memory)");
  if (recover) {
    auto match = recovered_match(image, profiles, diagnostics, *banner);
    if (match) {
      return std::unique_ptr<Kernel>(
          std::make_unique<LinuxKernel>(image, std::move(match->profile), std::move(match->source), match->placement));
    }
    rejected.push_back(match.error().message);
  }
  std::string message = where + ": no profile matches the kernel '" + banner->text + "' (" +
                        std::to_string(profiles.files().size()) + " profile(s) searched)";
  if (rejected.size() == 1) message += "; " + rejected.front();
  if (rejected.size() > 1) message += "; " + rejected.back();
  return make_error(Errc::profile_mismatch, message);
}

}  // namespace vmi::os_linux
