// Where profiles come from at run time: search paths of ISF files, and the binary cache that
// makes the second load of any profile cost milliseconds.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vmi/expected.hpp"
#include "vmi/profile.hpp"

namespace vmi {

struct CacheOptions {
  bool enabled = true;
  std::optional<std::filesystem::path> directory;  // default: default_cache_directory()
};

// $VMI_CACHE_DIR, else $XDG_CACHE_HOME/vmi-forensics, else ~/.cache/vmi-forensics.
std::filesystem::path default_cache_directory();

// The compact binary form: the profile's arrays copied out, zstd-compressed with a content
// checksum. A damaged or foreign entry fails to load (and is rebuilt by the catalog).
Expected<void> write_cached_profile(const std::filesystem::path& path, const Profile& profile);
Expected<Profile> read_cached_profile(const std::filesystem::path& path);
// What a cache entry's header says, readable without decompressing: the banner and, for Linux
// profiles, linux_banner's distance from _text (enough to probe an image for that kernel).
struct CachedProfileInfo {
  std::string banner;
  std::string identity_key;  // ProfileIdentity::key() of the profile inside
  std::optional<std::uint64_t> banner_offset;
};
Expected<CachedProfileInfo> read_cached_info(const std::filesystem::path& path);

// Profiles available to a session: files under the search paths (ISF .json/.json.xz/.json.zst,
// or a single file), each loaded at most once and cached in binary form.
class ProfileCatalog {
 public:
  ProfileCatalog(const std::vector<std::filesystem::path>& search_paths, CacheOptions cache);

  // Profile files in the search paths, sorted; directories are searched recursively (bounded).
  const std::vector<std::filesystem::path>& files() const { return files_; }
  // Loads one file's profile (from cache when valid). Later calls return the same object.
  Expected<std::shared_ptr<const Profile>> load(const std::filesystem::path& file);
  // The banner of a file's profile, from the cache header when possible.
  Expected<std::string> banner(const std::filesystem::path& file);
  // The key of a file's profile identity (ProfileIdentity::key()), from the cache header when
  // possible: "linux/<build id>", "windows/ntkrnlmp.pdb/<GUID><age>".
  Expected<std::string> identity_key(const std::filesystem::path& file);
  // The first profile file whose identity fits `found` (ProfileIdentity::matches), loading
  // only those whose cached key or banner could fit; nothing when none does.
  std::optional<std::filesystem::path> find(const ProfileIdentity& found);
  // What went wrong on the way that did not stop it (a search path that cannot be read, a
  // damaged cache entry rebuilt, a cache entry that cannot be written), for the session's
  // diagnostics. take_notes() hands them over once.
  const std::vector<std::string>& notes() const { return notes_; }
  std::vector<std::string> take_notes();
  // Where binary entries go; nothing when caching is off.
  std::optional<std::filesystem::path> cache_directory() const;
  // Whether OS detection may rebuild a profile from the snapshot itself when no file matches
  // (on by default; a profile named alone is always the only candidate).
  bool snapshot_recovery() const { return snapshot_recovery_; }
  void set_snapshot_recovery(bool enabled) { snapshot_recovery_ = enabled; }

 private:
  std::optional<std::filesystem::path> cache_path(const std::filesystem::path& file) const;

  std::vector<std::filesystem::path> files_;
  CacheOptions cache_;
  std::vector<std::pair<std::filesystem::path, std::shared_ptr<const Profile>>> loaded_;
  std::vector<std::string> notes_;
  bool snapshot_recovery_ = true;
};

// Search paths used when the user names none: $VMI_PROFILE_PATH (colon-separated), the user's
// profile store when it exists, the installed profiles directory, and the source tree's
// profiles/ for uninstalled builds.
std::vector<std::filesystem::path> default_profile_paths();

// The user's profile store, where `profile import` puts profiles: $VMI_PROFILE_STORE, else
// $XDG_DATA_HOME/vmi-forensics/profiles, else ~/.local/share/vmi-forensics/profiles.
std::filesystem::path user_profile_store();

// What importing one file did.
struct ProfileImport {
  std::filesystem::path source;
  // Where the profile now is in the store (copied there, or already there); empty when skipped.
  std::optional<std::filesystem::path> stored;
  bool copied = false;
  std::string note;  // why it was skipped, or which stored file already had its identity
};

// Adds the ISF files under `source` (a file, or a directory searched as a search path is: .json,
// .json.xz, .json.zst, at most 4096 files, 4 levels deep) to `store`, each under its identity
// as Volatility 3's symbol cache lays it out: windows/<pdb name>/<GUID>-<age><suffix> for a
// Windows kernel, linux/<build id or banner hash><suffix> for a Linux one. The bytes are copied
// unchanged (compressed or not) through a temporary file renamed into place; a file whose
// identity the store already holds, in any compression, is left out. A file that does not parse
// as ISF, or names no kernel, is skipped with the reason. Fails only when `source` cannot be
// read or the store cannot be written.
Expected<std::vector<ProfileImport>> import_profiles(const std::filesystem::path& source,
                                                     const std::filesystem::path& store);

}  // namespace vmi
