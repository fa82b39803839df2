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

}  // namespace vmi::test
