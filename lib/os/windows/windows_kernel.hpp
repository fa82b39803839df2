// Windows x64 detection: page-table root, ntoskrnl's base, its PDB identity and the profile.
#pragma once

#include <map>

#include "layers/block_layer.hpp"
#include "os/windows/kernel_image.hpp"
#include "vmi/kernel.hpp"

namespace vmi::os_windows {

// Where the Windows kernel sits in an image, and how each part was found (for `info`).
struct KernelPlacement {
  Addr page_table_root = 0;  // physical: the kernel's PML4 (the System process's)
  std::string root_found_by;
  Addr base = 0;  // ntoskrnl's image base; profile symbols are offsets from it
  std::string base_found_by;
  PdbRecord pdb;  // empty when no kernel image was read (a triage dump holds none)
  // When the profile is another patch level's of the same build, its symbol offsets do not
  // apply: the globals found at run time (crash-dump header, KDBG block) stand in, by name.
  std::optional<std::map<std::string, Addr, std::less<>>> globals;
  std::string globals_found_by;
  std::optional<std::uint32_t> build;         // the crash-dump header's, where NtBuildNumber is unknown
  std::optional<std::uint8_t> header_cookie;  // ObHeaderCookie's value, when derived rather than read
};

// Kernel memory saved by virtual address (a triage dump), laid out for reading.
struct SavedKernelMemory {
  std::unique_ptr<BlockLayer> layer;
  std::vector<Addr> driver_entries;  // where each saved driver's loader entry was placed
};

// A value a Windows crash dump's header holds (its layer's facts).
std::optional<std::uint64_t> crash_dump_fact(const PhysicalImage& image, std::string_view name);

// The profile files of `build`, by the builds.tsv files beside the catalog's profile files.
std::vector<std::filesystem::path> same_build_profiles(ProfileCatalog& profiles, std::uint32_t build);

// A kernel of a patch level no profile matches (patch_level.cpp): its build, and the globals the
// profile's symbol offsets cannot give, found in memory.
struct BuildFound {
  std::uint32_t build = 0;
  std::string found_by;
};
// The crash-dump header's MinorVersion, else KUSER_SHARED_DATA's NtBuildNumber (Windows 10 on),
// else its version 6.1 (Windows 7, taken as SP1's build 7601).
std::optional<BuildFound> image_build(const PhysicalImage& image, const Layer& kernel);
// The fields of a _KDDEBUGGER_DATA64 (wdbgexts.h) the detectors use: addresses of globals.
struct KdbgBlock {
  Addr kern_base = 0, ps_loaded_module_list = 0, ps_active_process_head = 0, psp_cid_table = 0,
       obp_type_object_type = 0;
};
// The KDBG block at `at` as it lies (not encoded): nothing unless it has the "KDBG" tag and a
// plausible Size.
std::optional<KdbgBlock> read_plain_kdbg(const Layer& kernel, Addr at);

struct RuntimeGlobals {
  std::map<std::string, Addr, std::less<>> addresses;
  std::optional<std::uint8_t> header_cookie;
  std::string found_by;
};
// The KDBG block (the header's, else the one nt!KdCopyDataBlock copies, decoded when Windows 8 and
// later keep it encoded) for the list heads and PspCidTable; ObTypeIndexTable and ObHeaderCookie
// derived from the object type "Type" it names. `base` is ntoskrnl's.
Expected<RuntimeGlobals> find_runtime_globals(const PhysicalImage& image, const Layer& kernel, const Profile& profile,
                                              Addr base);

class WindowsKernel final : public Kernel {
 public:
  WindowsKernel(std::shared_ptr<const PhysicalImage> image, std::shared_ptr<const Profile> profile,
                std::string profile_source, KernelPlacement placement, SavedKernelMemory saved = {});
  std::string_view os() const override { return "windows"; }
  // NtBuildLab ("19041.1.amd64fre.vb_release.191206-1406"), else the PDB's identity.
  std::string_view banner() const override { return banner_; }
  const Profile& profile() const override { return *profile_; }
  const PagedLayer& kernel_layer() const override { return *layer_; }
  const Layer& kernel_memory() const override {
    if (saved_.layer) return *saved_.layer;
    return *layer_;
  }
  std::optional<Addr> symbol(std::string_view name) const override;
  std::vector<std::pair<std::string, std::string>> facts() const override;
  const KernelPlacement& placement() const { return placement_; }
  // NtBuildNumber's build (19041), when readable.
  std::optional<std::uint32_t> build() const { return build_; }
  // The loader entries of the drivers a triage dump saved, where they were placed in
  // kernel_memory(); nothing for an image with page tables (walk PsLoadedModuleList there).
  const std::vector<Addr>* saved_driver_entries() const { return saved_.layer ? &saved_.driver_entries : nullptr; }

 private:
  std::shared_ptr<const PhysicalImage> image_;
  std::shared_ptr<const Profile> profile_;
  std::string profile_source_;
  KernelPlacement placement_;
  std::unique_ptr<PagedLayer> layer_;
  SavedKernelMemory saved_;
  std::string banner_;
  std::optional<std::uint32_t> build_;
};

// A kernel known only from a triage dump's saved memory: the profile of the header's build,
// the globals from the header and the KDBG copy, the saved objects placed at their addresses.
Expected<std::unique_ptr<Kernel>> detect_triage_kernel(std::shared_ptr<const PhysicalImage> image,
                                                       ProfileCatalog& profiles, Diagnostics& diagnostics);

// Whether the image shows a Windows sign cheaply: a Windows crash dump, or a low stub
// (PROCESSOR_START_BLOCK) below 1 MiB.
bool shows_signs(const PhysicalImage& image);

Expected<std::unique_ptr<Kernel>> detect_kernel(std::shared_ptr<const PhysicalImage> image, ProfileCatalog& profiles,
                                                Diagnostics& diagnostics);

}  // namespace vmi::os_windows
