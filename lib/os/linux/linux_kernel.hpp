// Linux detection: banner, profile choice, KASLR shifts, page-table root and paging depth.
#pragma once

#include "vmi/kernel.hpp"
#include "vmi/profile_recovery.hpp"

namespace vmi::os_linux {

// Where a Linux kernel sits in an image, as detection found it.
struct KernelPlacement {
  Addr text_physical = 0;           // physical address of _text
  std::uint64_t virtual_shift = 0;  // run-time _text minus linked _text
  std::int64_t physical_shift = 0;  // physical _text minus its linked physical address
  Addr page_table_root = 0;         // physical address of init_top_pgt
  const PagingMode* paging = nullptr;
};

class LinuxKernel final : public Kernel {
 public:
  LinuxKernel(std::shared_ptr<const PhysicalImage> image, std::shared_ptr<const Profile> profile,
              std::string profile_source, KernelPlacement placement);
  std::string_view os() const override { return "linux"; }
  std::string_view banner() const override { return profile_->banner(); }
  const Profile& profile() const override { return *profile_; }
  const PagedLayer& kernel_layer() const override { return *layer_; }
  std::optional<Addr> symbol(std::string_view name) const override;
  std::vector<std::pair<std::string, std::string>> facts() const override;
  const KernelPlacement& placement() const { return placement_; }

 private:
  std::shared_ptr<const PhysicalImage> image_;
  std::shared_ptr<const Profile> profile_;
  std::string profile_source_;
  KernelPlacement placement_;
  std::unique_ptr<PagedLayer> layer_;
};

Expected<std::unique_ptr<Kernel>> detect_kernel(std::shared_ptr<const PhysicalImage> image, ProfileCatalog& profiles,
                                                Diagnostics& diagnostics);

// The first linux_banner in physical memory ("Linux version ...\n\0", naming the compiler),
// found by a chunked scan that releases pages behind it: names the kernel when no profile
// matches and anchors profile recovery.
struct BannerHit {
  std::string text;  // without the trailing newline
  Addr physical = 0;
};
std::optional<BannerHit> find_banner(const PhysicalImage& image);

// recover_linux_profile() (vmi/profile_recovery.hpp) from a banner already found, so detection
// does not scan the image twice.
Expected<RecoveredProfile> recover_profile_at(const std::shared_ptr<const PhysicalImage>& image,
                                              const BannerHit& banner);

}  // namespace vmi::os_linux
