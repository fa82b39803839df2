#include "synthetic_session.hpp"

#include <doctest/doctest.h>

#include "support.hpp"
#include "vmi/isf.hpp"

namespace vmi::test {

namespace {

std::shared_ptr<ProfileCatalog> shared_catalog() {
  static const auto catalog = [] {
    auto made = std::make_shared<ProfileCatalog>(std::vector<std::filesystem::path>{shipped_profile()},
                                                 CacheOptions{true, scratch_dir("synthetic-states-cache")});
    made->set_snapshot_recovery(false);
    return made;
  }();
  return catalog;
}

// A layer taken as guest-physical memory, with the vCPU state a snapshot format would carry.
class ImageWithCpus final : public PhysicalImage {
 public:
  ImageWithCpus(std::shared_ptr<const Layer> memory, std::vector<CpuState> cpus)
      : memory_(std::move(memory)), cpus_(std::move(cpus)) {}
  std::string_view name() const override { return "synthetic image with vCPUs"; }
  Expected<std::size_t> read(Addr addr, std::span<std::byte> dst) const override { return memory_->read(addr, dst); }
  std::span<const Range> ranges() const override { return memory_->ranges(); }
  std::string_view format() const override { return "synthetic"; }
  std::span<const CpuState> cpu_states() const override { return cpus_; }

 private:
  std::shared_ptr<const Layer> memory_;
  std::vector<CpuState> cpus_;
};

}  // namespace

std::shared_ptr<const Profile> shipped_isf() {
  static const std::shared_ptr<const Profile> profile = [] {
    auto loaded = load_isf_file(shipped_profile());
    REQUIRE_MESSAGE(loaded.has_value(), error_text(loaded));
    return std::make_shared<const Profile>(std::move(*loaded));
  }();
  return profile;
}

Session open_synthetic(const vmi_synthetic::SyntheticKernel& kernel) {
  SessionOptions options;
  options.shared_profiles = shared_catalog();
  Session session = Session::over_layer(kernel.image(), options);
  REQUIRE_MESSAGE(session.kernel().has_value(), error_text(session.kernel()));
  return session;
}

Session open_synthetic(const vmi_synthetic::SyntheticKernel& kernel, std::vector<CpuState> cpus) {
  SessionOptions options;
  options.shared_profiles = shared_catalog();
  Session session = Session::over(std::make_shared<ImageWithCpus>(kernel.image(), std::move(cpus)), options);
  REQUIRE_MESSAGE(session.kernel().has_value(), error_text(session.kernel()));
  return session;
}

}  // namespace vmi::test
