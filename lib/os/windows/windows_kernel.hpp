// Windows x64 detection: page-table root, ntoskrnl's base, its PDB identity and the profile.
#pragma once

#include "os/windows/kernel_image.hpp"
#include "vmi/kernel.hpp"

namespace vmi::os_windows {

// Where the Windows kernel sits in an image, and how each part was found (for `info`).
struct KernelPlacement {
  Addr page_table_root = 0;  // physical: the kernel's PML4 (the System process's)
  std::string root_found_by;
  Addr base = 0;  // ntoskrnl's image base; profile symbols are offsets from it
  std::string base_found_by;
  PdbRecord pdb;
};

class WindowsKernel final : public Kernel {
 public:
  WindowsKernel(std::shared_ptr<const PhysicalImage> image, std::shared_ptr<const Profile> profile,
                std::string profile_source, KernelPlacement placement);
  std::string_view os() const override { return "windows"; }
  // NtBuildLab ("19041.1.amd64fre.vb_release.191206-1406"), else the PDB's identity.
  std::string_view banner() const override { return banner_; }
  const Profile& profile() const override { return *profile_; }
  const PagedLayer& kernel_layer() const override { return *layer_; }
  std::optional<Addr> symbol(std::string_view name) const override;
  std::vector<std::pair<std::string, std::string>> facts() const override;
  const KernelPlacement& placement() const { return placement_; }
  // NtBuildNumber's build (19041), when readable.
  std::optional<std::uint32_t> build() const { return build_; }

 private:
  std::shared_ptr<const PhysicalImage> image_;
  std::shared_ptr<const Profile> profile_;
  std::string profile_source_;
  KernelPlacement placement_;
  std::unique_ptr<PagedLayer> layer_;
  std::string banner_;
  std::optional<std::uint32_t> build_;
};

Expected<std::unique_ptr<Kernel>> detect_kernel(std::shared_ptr<const PhysicalImage> image, ProfileCatalog& profiles,
                                                Diagnostics& diagnostics);

}  // namespace vmi::os_windows
