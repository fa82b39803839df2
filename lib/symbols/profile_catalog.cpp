// Finds profile files, loads each once, and keeps their binary form in the cache.
#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <functional>
#include <utility>

#include "vmi/isf.hpp"
#include "vmi/profile_store.hpp"

#ifndef VMI_SOURCE_PROFILES_DIR
#define VMI_SOURCE_PROFILES_DIR ""
#endif

namespace vmi {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxProfileFiles = 4096;
constexpr int kMaxSearchDepth = 4;

bool is_profile_file(const fs::path& path) {
  const std::string name = path.filename().string();
  constexpr std::string_view kSuffixes[] = {".json", ".json.xz", ".json.zst"};
  return std::ranges::any_of(
      kSuffixes, [&](std::string_view suffix) { return name.size() > suffix.size() && name.ends_with(suffix); });
}

}  // namespace

fs::path default_cache_directory() {
  if (const char* dir = std::getenv("VMI_CACHE_DIR"); dir != nullptr && *dir != '\0') return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0')
    return fs::path(xdg) / "vmi-forensics";
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0')
    return fs::path(home) / ".cache" / "vmi-forensics";
  return fs::temp_directory_path() / "vmi-forensics-cache";
}

// Profiles installed beside this library: <prefix>/lib/libvmi-forensics.so finds
// <prefix>/share/vmi-forensics/profiles, wherever the prefix was moved to.
static std::optional<fs::path> installed_profiles_dir() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<const void*>(&default_profile_paths), &info) == 0 || info.dli_fname == nullptr)
    return std::nullopt;
  std::error_code ec;
  const fs::path library = fs::canonical(info.dli_fname, ec);
  if (ec) return std::nullopt;
  for (const fs::path& candidate :
       {library.parent_path().parent_path() / "share/vmi-forensics/profiles",
        library.parent_path().parent_path().parent_path() / "share/vmi-forensics/profiles"}) {
    if (fs::is_directory(candidate, ec)) return candidate;
  }
  return std::nullopt;
}

std::vector<fs::path> default_profile_paths() {
  std::vector<fs::path> paths;
  if (const char* env = std::getenv("VMI_PROFILE_PATH"); env != nullptr) {
    std::string_view rest(env);
    while (!rest.empty()) {
      const auto colon = rest.find(':');
      if (colon != 0) paths.emplace_back(rest.substr(0, colon));
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  }
  std::error_code ec;
  if (const fs::path store = user_profile_store(); fs::is_directory(store, ec)) paths.push_back(store);
  if (auto installed = installed_profiles_dir()) {
    paths.push_back(*installed);
    return paths;
  }
  if (fs::is_directory(VMI_SOURCE_PROFILES_DIR, ec)) paths.emplace_back(VMI_SOURCE_PROFILES_DIR);  // uninstalled build
  return paths;
}

ProfileCatalog::ProfileCatalog(const std::vector<fs::path>& search_paths, CacheOptions cache)
    : cache_(std::move(cache)) {
  for (const fs::path& root : search_paths) {
    std::error_code ec;
    const auto status = fs::status(root, ec);
    if (ec || !fs::exists(status)) {
      notes_.push_back("profile search path '" + root.string() +
                       "' cannot be read: " + (ec ? ec.message() : "no such file or directory"));
      continue;
    }
    if (fs::is_regular_file(status)) {
      files_.push_back(root);
      continue;
    }
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
    for (; !ec && it != fs::recursive_directory_iterator() && files_.size() < kMaxProfileFiles; it.increment(ec)) {
      if (it.depth() > kMaxSearchDepth) it.disable_recursion_pending();
      std::error_code entry_error;
      if (it->is_regular_file(entry_error) && is_profile_file(it->path())) files_.push_back(it->path());
    }
    if (ec) notes_.push_back("profile search path '" + root.string() + "' cannot be read: " + ec.message());
    if (files_.size() >= kMaxProfileFiles)
      notes_.push_back("profile search: more than " + std::to_string(kMaxProfileFiles) + " files; the rest ignored");
  }
  std::sort(files_.begin(), files_.end());
  files_.erase(std::unique(files_.begin(), files_.end()), files_.end());
}

std::optional<fs::path> ProfileCatalog::cache_directory() const {
  if (!cache_.enabled) return std::nullopt;
  return cache_.directory.value_or(default_cache_directory());
}

std::optional<fs::path> ProfileCatalog::cache_path(const fs::path& file) const {
  if (!cache_.enabled) return std::nullopt;
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (ec) return std::nullopt;
  const auto mtime = fs::last_write_time(file, ec).time_since_epoch().count();
  if (ec) return std::nullopt;
  const fs::path absolute = fs::absolute(file, ec);
  // The key names the file's identity; a changed file gets a new entry.
  const std::size_t key =
      std::hash<std::string>{}(absolute.string() + '\n' + std::to_string(size) + '\n' + std::to_string(mtime));
  char hex_key[17];
  std::snprintf(hex_key, sizeof hex_key, "%016zx", key);
  std::string stem = file.filename().string();
  stem = stem.substr(0, stem.find(".json"));
  return *cache_directory() / "profiles" / (stem + "-" + hex_key + ".vmiprof");
}

Expected<std::shared_ptr<const Profile>> ProfileCatalog::load(const fs::path& file) {
  for (const auto& [path, profile] : loaded_) {
    if (path == file) return profile;
  }
  const auto cached = cache_path(file);
  std::error_code ec;
  if (cached && fs::exists(*cached, ec)) {
    auto from_cache = read_cached_profile(*cached);
    if (from_cache) {
      auto profile = std::make_shared<const Profile>(std::move(*from_cache));
      loaded_.emplace_back(file, profile);
      return profile;
    }
    notes_.push_back("rebuilding damaged profile cache entry: " + from_cache.error().message);
  }
  auto parsed = VMI_TRY(load_isf_file(file));
  auto profile = std::make_shared<const Profile>(std::move(parsed));
  if (cached) {
    if (auto written = write_cached_profile(*cached, *profile); !written)
      notes_.push_back("profile cache not written: " + written.error().message);
  }
  loaded_.emplace_back(file, profile);
  return profile;
}

Expected<std::string> ProfileCatalog::banner(const fs::path& file) {
  if (const auto cached = cache_path(file)) {
    std::error_code ec;
    if (fs::exists(*cached, ec)) {
      if (auto info = read_cached_info(*cached)) return std::move(info->banner);
    }
  }
  const auto profile = VMI_TRY(load(file));
  return std::string(profile->banner());
}

Expected<std::string> ProfileCatalog::identity_key(const fs::path& file) {
  if (const auto cached = cache_path(file)) {
    std::error_code ec;
    if (fs::exists(*cached, ec)) {
      if (auto info = read_cached_info(*cached)) return std::move(info->identity_key);
    }
  }
  const auto profile = VMI_TRY(load(file));
  return profile->identity().key();
}

std::optional<fs::path> ProfileCatalog::find(const ProfileIdentity& found) {
  auto lower = [](std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
  };
  const std::string found_key = lower(found.key());
  for (const fs::path& file : files_) {
    // The cache header rules most files out without loading them: a Windows profile by its key,
    // a Linux one by its banner (its key holds the build id only when the profile knew it).
    if (found.os == "windows") {
      auto key = identity_key(file);
      if (!key || lower(*key) != found_key) continue;
    } else {
      auto banner = this->banner(file);
      if (!banner || *banner != found.banner) continue;
    }
    auto profile = load(file);
    if (profile && (*profile)->identity().matches(found)) return file;
  }
  return std::nullopt;
}

std::vector<std::string> ProfileCatalog::take_notes() { return std::exchange(notes_, {}); }

}  // namespace vmi
