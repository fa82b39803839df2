// Finds a Windows x64 kernel in physical memory with no help from the user, in three steps,
// each trying its sources in order and recording which one answered:
//
//  1. the kernel's page-table root: a crash dump's DirectoryTableBase; else the low stub's
//     PROCESSOR_START_BLOCK, which the boot processor leaves in a page below 1 MiB with the
//     kernel's CR3 and an address inside the kernel (checks as MemProcFS's vmmwininit.c makes
//     them); else a top-level table one of whose kernel-half entries maps the table itself (the
//     self-referencing PML4 entry every Windows x64 kernel keeps);
//  2. ntoskrnl's image base: a crash dump's PsLoadedModuleList (its first entry is the kernel)
//     or plain KDBG block's KernBase; else the PE image the low stub's kernel address falls in;
//     else the first kernel PE image among the mapped pages of the kernel's region;
//  3. the profile: the image's CodeView record (read with LIEF) names the PDB, GUID and age,
//     which the profile catalog matches.
#include "os/windows/windows_kernel.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

namespace vmi::os_windows {

namespace {

constexpr Addr kPageSize = 0x1000;
constexpr Addr kLowStubEnd = 0x100000;  // the start block lies below 1 MiB
constexpr std::uint64_t kStartBlockSignature = 0x00000001000600e9ull, kStartBlockMask = 0xffffffffffff00ffull;
constexpr std::size_t kStartBlockEntry = 0x70, kStartBlockCr3 = 0xa0;
constexpr Addr kKernelRegion = 0xfffff80000000000ull, kKernelRegionEnd = 0xfffff80800000000ull;
constexpr Addr kMaxBackScan = 64ull << 20;           // ntoskrnl is smaller than 64 MiB
constexpr std::uint64_t kMaxPagesProbed = 1u << 20;  // in the kernel region scan
constexpr std::size_t kMaxSelfReferencingRoots = 8;  // every process's PML4 references itself
constexpr std::uint64_t kFrameMask = 0x000ffffffffff000ull;
constexpr std::size_t kLdrDllBase = 0x30;  // _KLDR_DATA_TABLE_ENTRY.DllBase on x64

struct RootCandidate {
  Addr root = 0;
  std::string found_by;
  std::optional<Addr> kernel_hint;  // the low stub's address inside the kernel
};

std::vector<RootCandidate> low_stub_roots(const PhysicalImage& image) {
  std::vector<RootCandidate> found;
  std::array<std::byte, kStartBlockCr3 + 8> block{};
  for (Addr page = kPageSize; page < kLowStubEnd; page += kPageSize) {  // page 0 never holds it
    if (!read_exact(image, page, block)) continue;
    std::uint64_t signature = 0;
    std::uint64_t entry = 0;
    std::uint64_t cr3 = 0;
    std::memcpy(&signature, block.data(), 8);
    std::memcpy(&entry, block.data() + kStartBlockEntry, 8);
    std::memcpy(&cr3, block.data() + kStartBlockCr3, 8);
    if ((signature & kStartBlockMask) != kStartBlockSignature) continue;
    if ((entry & 0xfffff80000000003ull) != 0xfffff80000000000ull) continue;
    if ((cr3 & 0xffffff0000000fffull) != 0 || cr3 == 0) continue;
    found.push_back({cr3, "low stub (PROCESSOR_START_BLOCK at physical " + hex(page) + ")", entry});
  }
  return found;
}

std::vector<RootCandidate> self_referencing_roots(const PhysicalImage& image) {
  std::vector<RootCandidate> found;
  std::array<std::uint64_t, 512> table{};
  for (const Range& range : image.ranges()) {
    for (Addr page = (range.begin + kPageSize - 1) & ~(kPageSize - 1); page + kPageSize <= range.end;
         page += kPageSize) {
      if (!read_exact(image, page, std::as_writable_bytes(std::span(table)))) continue;
      for (std::size_t index = 256; index < 512; ++index) {
        const std::uint64_t entry = table[index];
        if ((entry & 1) == 0 || (entry & kFrameMask) != page) continue;
        found.push_back(
            {page,
             "self-referencing top-level table (entry " + hex(index) + " at physical " + hex(page + index * 8) + ")",
             std::nullopt});
        if (found.size() == kMaxSelfReferencingRoots) return found;
        break;
      }
    }
  }
  return found;
}

// A kernel image at `base`: its PDB record, when the PDB is the kernel's.
std::optional<PdbRecord> kernel_image_at(const Layer& kernel, Addr base, std::string& why_not) {
  auto record = read_pdb_record(kernel, base);
  if (!record) {
    why_not = record.error().message;
    return std::nullopt;
  }
  if (!is_kernel_pdb(pdb_file_name(*record))) {
    why_not = "the PE image at " + hex(base) + " is " + pdb_file_name(*record) + ", not the kernel";
    return std::nullopt;
  }
  return std::move(*record);
}

bool starts_with_mz(const Layer& kernel, Addr at) {
  std::array<char, 2> magic{};
  return read_exact(kernel, at, std::as_writable_bytes(std::span(magic))) && magic[0] == 'M' && magic[1] == 'Z';
}

struct BaseFound {
  Addr base = 0;
  std::string found_by;
  PdbRecord pdb;
};

Expected<BaseFound> find_kernel_base(const PhysicalImage& image, const Layer& kernel, const RootCandidate& root) {
  std::vector<std::string> tried;
  std::string why_not;
  if (auto head = crash_dump_fact(image, "PsLoadedModuleList")) {
    const auto first = read_value<std::uint64_t>(kernel, *head);
    const auto base = first ? read_value<std::uint64_t>(kernel, *first + kLdrDllBase) : first;
    if (base) {
      if (auto pdb = kernel_image_at(kernel, *base, why_not))
        return BaseFound{*base, "first entry of PsLoadedModuleList (crash-dump header)", std::move(*pdb)};
      tried.push_back("PsLoadedModuleList: " + why_not);
    } else {
      tried.push_back("PsLoadedModuleList at " + hex(*head) + ": its first entry is unreadable");
    }
  }
  if (auto kdbg = crash_dump_fact(image, "KdDebuggerDataBlock")) {
    if (const auto block = read_plain_kdbg(kernel, *kdbg)) {
      if (auto pdb = kernel_image_at(kernel, block->kern_base, why_not))
        return BaseFound{block->kern_base, "KernBase of the KDBG block at " + hex(*kdbg) + " (crash-dump header)",
                         std::move(*pdb)};
      tried.push_back("KDBG KernBase: " + why_not);
    } else {
      tried.push_back("KDBG at " + hex(*kdbg) + ": unreadable or encoded");
    }
  }
  if (root.kernel_hint) {
    const Addr hint = *root.kernel_hint & ~(kPageSize - 1);
    std::string outcome = "no PE image within " + hex(kMaxBackScan) + " below it";
    for (Addr at = hint; at + kMaxBackScan > hint && at >= kKernelRegion; at -= kPageSize) {
      if (!starts_with_mz(kernel, at)) continue;
      if (auto pdb = kernel_image_at(kernel, at, why_not))
        return BaseFound{at, "the PE image holding the low stub's kernel entry " + hex(*root.kernel_hint),
                         std::move(*pdb)};
      outcome = why_not;  // the first image below the entry is the one holding it
      break;
    }
    tried.push_back("low stub's kernel entry " + hex(*root.kernel_hint) + ": " + outcome);
  }
  // Last: the first kernel image among the mapped pages of the region ntoskrnl loads in.
  std::uint64_t probed = 0;
  const auto ranges = kernel.ranges();
  for (const Range& range : ranges) {
    const Addr begin = std::max(range.begin, kKernelRegion);
    const Addr end = std::min(range.end, kKernelRegionEnd);
    for (Addr at = (begin + kPageSize - 1) & ~(kPageSize - 1); at < end; at += kPageSize) {
      if (++probed > kMaxPagesProbed) break;
      if (!starts_with_mz(kernel, at)) continue;
      if (auto pdb = kernel_image_at(kernel, at, why_not))
        return BaseFound{at, "scan of the kernel region's mapped pages", std::move(*pdb)};
    }
  }
  tried.push_back("no kernel PE image among " + std::to_string(probed) + " mapped pages of " + hex(kKernelRegion) +
                  "-" + hex(kKernelRegionEnd));
  std::string reasons;
  for (const auto& reason : tried) reasons += (reasons.empty() ? "" : "; ") + reason;
  return make_error(Errc::not_found, "ntoskrnl's base: " + reasons);
}

std::string hex_without_prefix(std::uint32_t value) {
  char text[9];
  auto [end, ec] = std::to_chars(std::begin(text), std::end(text), value, 16);
  std::string out(text, end);
  std::ranges::transform(out, out.begin(), [](char c) { return c >= 'a' && c <= 'f' ? static_cast<char>(c - 32) : c; });
  return out;
}

// A kernel whose GUID no profile matches: a profile of its build for the layouts, the globals
// from memory (patch_level.cpp).
Expected<std::unique_ptr<Kernel>> other_patch_level(const std::shared_ptr<const PhysicalImage>& image,
                                                    const Layer& kernel, const RootCandidate& root, BaseFound& found,
                                                    ProfileCatalog& profiles) {
  const auto build = image_build(*image, kernel);
  if (!build) {
    return make_error(
        Errc::not_found,
        "its build is unknown (no crash-dump header, no Windows 10 KUSER_SHARED_DATA at 0xfffff78000000000)");
  }
  const auto candidates = same_build_profiles(profiles, build->build);
  if (candidates.empty()) {
    return make_error(Errc::not_found, "no builds.tsv beside the profiles lists build " + std::to_string(build->build) +
                                           " (" + build->found_by + ")");
  }
  auto profile = VMI_TRY(profiles.load(candidates.front()));
  auto globals = VMI_TRY(find_runtime_globals(*image, kernel, *profile, found.base));
  KernelPlacement placement;
  placement.page_table_root = root.root;
  placement.root_found_by = root.found_by;
  placement.base = found.base;
  placement.base_found_by = found.found_by;
  placement.pdb = std::move(found.pdb);
  placement.globals = std::move(globals.addresses);
  placement.globals_found_by = std::move(globals.found_by);
  placement.header_cookie = globals.header_cookie;
  placement.build = build->build;
  const std::string source = "build " + std::to_string(build->build) + " (" + build->found_by +
                             "), another patch level: " + candidates.front().string();
  return std::unique_ptr<Kernel>(
      std::make_unique<WindowsKernel>(image, std::move(profile), source, std::move(placement)));
}

}  // namespace

std::optional<std::uint64_t> crash_dump_fact(const PhysicalImage& image, std::string_view name) {
  if (image.format() != "windows-crashdump") return std::nullopt;
  for (const auto& [key, value] : image.facts()) {
    if (key != name || !value.starts_with("0x")) continue;
    std::uint64_t number = 0;
    auto [end, ec] = std::from_chars(value.data() + 2, value.data() + value.size(), number, 16);
    if (ec == std::errc() && end == value.data() + value.size()) return number;
  }
  return std::nullopt;
}

WindowsKernel::WindowsKernel(std::shared_ptr<const PhysicalImage> image, std::shared_ptr<const Profile> profile,
                             std::string profile_source, KernelPlacement placement, SavedKernelMemory saved)
    : image_(std::move(image)),
      profile_(std::move(profile)),
      profile_source_(std::move(profile_source)),
      placement_(std::move(placement)),
      layer_(std::make_unique<PagedLayer>(image_, placement_.page_table_root, kWindowsX64)),
      saved_(std::move(saved)) {
  build_ = placement_.build;
  if (auto number = symbol("NtBuildNumber")) {
    if (auto value = read_value<std::uint32_t>(kernel_memory(), *number)) build_ = *value & 0xffff;
  }
  if (auto lab = symbol("NtBuildLab")) {
    std::array<char, 128> text{};
    if (auto n = kernel_memory().read(*lab, std::as_writable_bytes(std::span(text)))) {
      const std::string_view read(text.data(), std::min<std::size_t>(*n, text.size()));
      banner_ = std::string(read.substr(0, read.find('\0')));
    }
  }
  if (banner_.empty() && placement_.pdb.path.empty())
    banner_ = "Windows build " + (build_ ? std::to_string(*build_) : std::string("unknown"));
  else if (banner_.empty())
    banner_ = "Windows " + pdb_file_name(placement_.pdb) + " " + guid_text(placement_.pdb) + "-" +
              std::to_string(placement_.pdb.age);
}

std::optional<Addr> WindowsKernel::symbol(std::string_view name) const {
  if (placement_.globals) {
    const auto found = placement_.globals->find(name);
    return found == placement_.globals->end() ? std::nullopt : std::optional<Addr>(found->second);
  }
  // Windows ISF symbols are offsets from the kernel's image base.
  if (auto offset = profile_->symbol_address(name)) return placement_.base + *offset;
  return std::nullopt;
}

std::vector<std::pair<std::string, std::string>> WindowsKernel::facts() const {
  std::vector<std::pair<std::string, std::string>> facts;
  facts.emplace_back("os", "windows");
  facts.emplace_back("build", build_ ? std::to_string(*build_) : "unreadable (NtBuildNumber)");
  facts.emplace_back("NtBuildLab", banner_);
  facts.emplace_back("PDB", placement_.pdb.path.empty()
                                ? "unknown (no kernel image read)"
                                : pdb_file_name(placement_.pdb) + " " + guid_text(placement_.pdb) + " age " +
                                      std::to_string(placement_.pdb.age));
  facts.emplace_back("profile", profile_source_);
  facts.emplace_back("paging", std::string(kWindowsX64.name));
  // Zero is what a triage dump leaves when its header or KDBG copy does not say: not an address.
  auto address = [](Addr value, const std::string& how) {
    return (value != 0 ? hex(value) : "unknown") + " (" + how + ")";
  };
  facts.emplace_back("page-table root", address(placement_.page_table_root, placement_.root_found_by));
  facts.emplace_back("kernel base", address(placement_.base, placement_.base_found_by));
  if (placement_.globals) {
    std::string names;
    for (const auto& [name, address] : *placement_.globals) names += (names.empty() ? "" : ", ") + name;
    facts.emplace_back("globals", names + " (" + placement_.globals_found_by + ")");
  }
  if (saved_.layer) {
    facts.emplace_back("kernel memory", "saved by virtual address: " + std::to_string(saved_.layer->ranges().size()) +
                                            " runs, " + std::to_string(saved_.driver_entries.size()) +
                                            " driver entries placed");
  }
  return facts;
}

bool shows_signs(const PhysicalImage& image) {
  return image.format() == "windows-crashdump" || !low_stub_roots(image).empty();
}

Expected<std::unique_ptr<Kernel>> detect_kernel(std::shared_ptr<const PhysicalImage> image, ProfileCatalog& profiles,
                                                Diagnostics& diagnostics) {
  if (image->saved_virtual_memory() != nullptr) return detect_triage_kernel(std::move(image), profiles, diagnostics);
  std::vector<RootCandidate> roots;
  if (auto dtb = crash_dump_fact(*image, "DirectoryTableBase"))
    roots.push_back({*dtb & kFrameMask, "crash-dump header DirectoryTableBase", std::nullopt});
  for (auto& root : low_stub_roots(*image)) roots.push_back(std::move(root));
  if (roots.empty()) roots = self_referencing_roots(*image);
  if (roots.empty()) {
    return make_error(Errc::not_found, std::string(image->name()) +
                                           ": page-table root: no crash-dump header, no low stub "
                                           "(PROCESSOR_START_BLOCK) below 1 MiB and no self-referencing top-level "
                                           "table");
  }
  std::string reasons;
  for (const RootCandidate& root : roots) {
    const PagedLayer kernel(image, root.root, kWindowsX64);
    auto found = find_kernel_base(*image, kernel, root);
    if (!found) {
      reasons += (reasons.empty() ? "" : "; ") + std::string("root ") + hex(root.root) + " (" + root.found_by +
                 "): " + found.error().message;
      continue;
    }
    ProfileIdentity identity;
    identity.os = "windows";
    identity.pdb_name = pdb_file_name(found->pdb);
    identity.pdb_guid = guid_text(found->pdb);
    identity.pdb_age = found->pdb.age;
    const std::string named = identity.pdb_name + " " + identity.pdb_guid + " age " + std::to_string(identity.pdb_age);
    auto path = profiles.find(identity);
    if (!path) {
      auto other = other_patch_level(image, kernel, root, *found, profiles);
      if (other) return other;
      return make_error(Errc::profile_mismatch,
                        std::string(image->name()) + ": profile: no profile for " + named + " (ntoskrnl at " +
                            hex(found->base) +
                            ") in the search paths; `vmi-forensics profile import` a Volatility 3 "
                            "ISF file for windows/" +
                            identity.pdb_name + "/" + identity.pdb_guid + hex_without_prefix(identity.pdb_age) +
                            " (another patch level of its build: " + other.error().message + ")");
    }
    auto profile = VMI_TRY(profiles.load(*path));
    KernelPlacement placement;
    placement.page_table_root = root.root;
    placement.root_found_by = root.found_by;
    placement.base = found->base;
    placement.base_found_by = found->found_by;
    placement.pdb = std::move(found->pdb);
    return std::unique_ptr<Kernel>(
        std::make_unique<WindowsKernel>(std::move(image), std::move(profile), path->string(), std::move(placement)));
  }
  // Roots from a crash-dump header or a low stub say this is Windows; a self-referencing table
  // alone may be chance.
  const bool windows =
      std::ranges::any_of(roots, [](const RootCandidate& root) { return !root.found_by.starts_with("self"); });
  return make_error(windows ? Errc::bad_format : Errc::not_found, std::string(image->name()) + ": " + reasons);
}

}  // namespace vmi::os_windows
