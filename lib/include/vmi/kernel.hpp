// The seam between OS-neutral code and one operating system: a detected kernel.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <typeindex>
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
  // The kernel's page tables over the image's physical memory.
  virtual const PagedLayer& kernel_layer() const = 0;
  // Where kernel-virtual reads go: the page tables' view, or for a kernel known from memory a
  // format saved by virtual address (a Windows triage dump, with no physical pages, so every
  // read through kernel_layer() fails) that saved memory.
  virtual const Layer& kernel_memory() const { return kernel_layer(); }
  // A symbol's run-time address (KASLR shift applied), or nothing if the profile lacks it.
  virtual std::optional<Addr> symbol(std::string_view name) const = 0;
  // Name/value lines for `info`: release, shifts, page-table root, profile source, ...
  virtual std::vector<std::pair<std::string, std::string>> facts() const = 0;

  // A structure layout (field offsets) bound from this kernel's profile by Layout::bind(profile)
  // on first use and kept for the kernel's lifetime, so walks and plugins never look a field up
  // by name twice. The error, if binding failed, is kept too.
  // The address space a page-table root (physical) makes under the kernel's paging mode over the
  // same physical memory: a process's user space from its mm's pgd. Made once per root and kept
  // (at most kMaxAddressSpaces; past that each call makes a new one), so plugins that visit a
  // process twice walk its tables through one translation cache.
  std::shared_ptr<const PagedLayer> address_space(Addr page_table_root) const;
  static constexpr std::size_t kMaxAddressSpaces = 256;

  template <class Layout>
  const Expected<Layout>& layout() const {
    return *static_cast<const Expected<Layout>*>(layouts_.get(typeid(Layout), [this] {
      return std::static_pointer_cast<const void>(std::make_shared<const Expected<Layout>>(Layout::bind(profile())));
    }));
  }

 private:
  class LayoutCache {
   public:
    const void* get(std::type_index type, const std::function<std::shared_ptr<const void>()>& bind) {
      std::lock_guard lock(mutex_);
      auto& entry = layouts_[type];
      if (!entry) entry = bind();
      return entry.get();
    }

   private:
    std::mutex mutex_;
    std::map<std::type_index, std::shared_ptr<const void>> layouts_;
  };
  mutable LayoutCache layouts_;
  mutable std::mutex address_spaces_mutex_;
  mutable std::map<Addr, std::shared_ptr<const PagedLayer>> address_spaces_;
};

// One supported OS: how to find its kernel in an image. The table lives in os/kernels.cpp.
struct OperatingSystem {
  std::string_view name;
  Expected<std::unique_ptr<Kernel>> (*detect)(std::shared_ptr<const PhysicalImage> image, ProfileCatalog& profiles,
                                              Diagnostics& diagnostics);
  // A cheap look for this OS's signs (a format only it writes, a structure at a fixed place):
  // detectors that see theirs run first, so an image does not pay for the others' scans. Null
  // when there is no such sign.
  bool (*shows_signs)(const PhysicalImage& image) = nullptr;
};

std::span<const OperatingSystem> operating_systems();

}  // namespace vmi
