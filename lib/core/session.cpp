// Session: owns the image, the profile catalog and the kernel detected in the image.
#include "vmi/session.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vmi {

namespace {

// Presents a bare layer (an in-memory buffer, a decoder) as a physical image.
class LayerImage final : public PhysicalImage {
 public:
  explicit LayerImage(std::shared_ptr<const Layer> layer) : layer_(std::move(layer)) {}
  std::string_view name() const override { return layer_->name(); }
  std::string_view format() const override { return "layer"; }
  Expected<std::size_t> read(Addr addr, std::span<std::byte> dst) const override { return layer_->read(addr, dst); }
  std::span<const Range> ranges() const override { return layer_->ranges(); }

 private:
  std::shared_ptr<const Layer> layer_;
};

}  // namespace

struct Session::Impl {
  std::shared_ptr<const PhysicalImage> image;
  std::shared_ptr<ProfileCatalog> profiles;
  Diagnostics diagnostics;
  std::unique_ptr<Kernel> kernel;
  std::optional<Error> detection_error;

  Impl(std::shared_ptr<const PhysicalImage> image, SessionOptions options)
      : image(std::move(image)), profiles(std::move(options.shared_profiles)) {
    if (profiles) return;
    profiles = std::make_shared<ProfileCatalog>(
        options.profile_paths.empty() ? default_profile_paths() : std::move(options.profile_paths),
        std::move(options.cache));
    profiles->set_snapshot_recovery(options.recover_profile);
  }
};

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;
Session::~Session() = default;

Expected<Session> Session::open(const std::filesystem::path& image, SessionOptions options) {
  // A profile the user named must be there: a typo must not quietly become a recovered profile.
  for (const auto& path : options.profile_paths) {
    if (::access(path.c_str(), R_OK) != 0)
      return make_error(Errc::invalid_argument, "profile '" + path.string() + "': " + std::strerror(errno));
  }
  auto opened = VMI_TRY(open_image(image));
  return over(std::shared_ptr<const PhysicalImage>(std::move(opened)), std::move(options));
}

Session Session::over(std::shared_ptr<const PhysicalImage> image, SessionOptions options) {
  return Session(std::make_unique<Impl>(std::move(image), std::move(options)));
}

Session Session::over_layer(std::shared_ptr<const Layer> physical, SessionOptions options) {
  return over(std::make_shared<LayerImage>(std::move(physical)), std::move(options));
}

const PhysicalImage& Session::image() const { return *impl_->image; }
Diagnostics& Session::diagnostics() { return impl_->diagnostics; }
ProfileCatalog& Session::profiles() { return *impl_->profiles; }

Expected<const Kernel*> Session::kernel() {
  if (impl_->kernel) return impl_->kernel.get();
  if (impl_->detection_error) return *impl_->detection_error;
  // Whatever the catalog met on the way reaches the user, whichever profile was chosen.
  struct CatalogNotes {
    Impl& impl;
    ~CatalogNotes() {
      for (auto& note : impl.profiles->take_notes()) impl.diagnostics.warn(std::move(note));
    }
  } catalog_notes{*impl_};
  // A detector answers Errc::not_found when it saw no sign of its OS. When exactly one saw its
  // OS and then failed (a damaged profile, a kernel no profile matches), that failure is the
  // answer; otherwise every detector's reason is.
  std::vector<std::pair<std::string_view, Error>> failures;
  std::vector<const OperatingSystem*> order;
  for (const OperatingSystem& os : operating_systems()) order.push_back(&os);
  std::stable_partition(order.begin(), order.end(), [&](const OperatingSystem* os) {
    return os->shows_signs != nullptr && os->shows_signs(*impl_->image);
  });
  for (const OperatingSystem* os_entry : order) {
    const OperatingSystem& os = *os_entry;
    auto kernel = os.detect(impl_->image, *impl_->profiles, impl_->diagnostics);
    if (kernel) {
      impl_->kernel = std::move(*kernel);
      return impl_->kernel.get();
    }
    failures.emplace_back(os.name, kernel.error());
  }
  const auto signs = std::ranges::count_if(failures, [](const auto& f) { return f.second.code != Errc::not_found; });
  if (signs == 1) {
    impl_->detection_error =
        std::ranges::find_if(failures, [](const auto& f) { return f.second.code != Errc::not_found; })->second;
    return *impl_->detection_error;
  }
  const std::string name(impl_->image->name());
  std::string reasons;
  for (const auto& [os, error] : failures) {
    std::string_view why = error.message;
    if (why.starts_with(name + ": ")) why.remove_prefix(name.size() + 2);  // said once, in front
    reasons += (reasons.empty() ? "" : "; ") + std::string(os) + ": " + std::string(why);
  }
  impl_->detection_error = make_error(signs == 0 ? Errc::not_found : Errc::profile_mismatch,
                                      name + ": no supported kernel found (" + reasons + ")");
  return *impl_->detection_error;
}

}  // namespace vmi
