// The seam between OS-neutral code and one operating system: a detected kernel.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "vmi/diagnostics.hpp"
#include "vmi/image.hpp"
#include "vmi/paging.hpp"
#include "vmi/profile.hpp"
#include "vmi/profile_store.hpp"

namespace vmi {

// A kernel found in a physical image, with the profile that describes it and the address
// space it runs in. Linux and Windows implement it side by side.
class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual std::string_view os() const = 0;      // "linux", "windows"
  virtual std::string_view banner() const = 0;  // the kernel's own version string
  virtual const Profile& profile() const = 0;
  virtual const PagedLayer& kernel_layer() const = 0;
  // A symbol's run-time address (KASLR shift applied), or nothing if the profile lacks it.
  virtual std::optional<Addr> symbol(std::string_view name) const = 0;
  // Name/value lines for `info`: release, shifts, page-table root, profile source, ...
  virtual std::vector<std::pair<std::string, std::string>> facts() const = 0;
};

// One supported OS: how to find its kernel in an image. The table lives in os/kernels.cpp.
struct OperatingSystem {
  std::string_view name;
  Expected<std::unique_ptr<Kernel>> (*detect)(std::shared_ptr<const PhysicalImage> image, ProfileCatalog& profiles,
                                              Diagnostics& diagnostics);
};

std::span<const OperatingSystem> operating_systems();

}  // namespace vmi
