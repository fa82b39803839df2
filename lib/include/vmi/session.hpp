// A Session: one image, the profiles to read it with, the detected kernel, and diagnostics.
#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "vmi/diagnostics.hpp"
#include "vmi/image.hpp"
#include "vmi/kernel.hpp"
#include "vmi/profile_store.hpp"

namespace vmi {

struct SessionOptions {
  std::vector<std::filesystem::path> profile_paths;  // files or directories; empty: defaults
  CacheOptions cache;
  // When no profile file matches, rebuild one from the snapshot's kallsyms and BTF.
  bool recover_profile = true;
  // A catalog shared with other sessions, so each profile is loaded once for many snapshots of
  // one guest (a diff, a series, a fuzzer). When set, the three options above are the catalog's.
  std::shared_ptr<ProfileCatalog> shared_profiles;
};

class Session {
 public:
  // Opens an image file, detecting its format from content. Nothing is detected yet.
  static Expected<Session> open(const std::filesystem::path& image, SessionOptions options = {});
  // A session over any physical layer: in-memory buffers for tests and fuzzers, decoders.
  static Session over(std::shared_ptr<const PhysicalImage> image, SessionOptions options = {});
  // A session over any layer taken as guest-physical memory (its format reads "layer").
  static Session over_layer(std::shared_ptr<const Layer> physical, SessionOptions options = {});

  Session(Session&& other) noexcept;
  Session& operator=(Session&& other) noexcept;
  ~Session();

  const PhysicalImage& image() const;
  // Detects the OS kernel on first use (trying each supported OS) and keeps it.
  Expected<const Kernel*> kernel();
  Diagnostics& diagnostics();
  ProfileCatalog& profiles();

 private:
  struct Impl;
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vmi
