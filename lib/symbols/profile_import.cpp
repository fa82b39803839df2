// profile import: ISF files a user has (a Volatility 3 symbol cache, JPCERT's Windows tables, a
// dwarf2json run) copied into the user's profile store under their kernel's identity.
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "vmi/isf.hpp"
#include "vmi/profile_store.hpp"

namespace vmi {

namespace fs = std::filesystem;

namespace {

// The suffixes the catalog recognises a profile file by.
constexpr std::string_view kSuffixes[] = {".json.xz", ".json.zst", ".json"};

// ".json.xz" for "x.json.xz".
std::string_view suffix_of(const fs::path& file) {
  const std::string name = file.filename().string();
  for (std::string_view suffix : kSuffixes)
    if (name.ends_with(suffix)) return suffix;
  return ".json";
}

// Where a profile of this identity lives in the store, without its suffix; empty when the
// identity names no kernel. A PDB name or GUID is a single path component or nothing.
std::optional<fs::path> stored_stem(const ProfileIdentity& identity) {
  if (identity.os == "windows" && !identity.pdb_name.empty() && !identity.pdb_guid.empty() &&
      identity.pdb_name.find('/') == std::string::npos && identity.pdb_name != "." && identity.pdb_name != ".." &&
      identity.pdb_guid.find('/') == std::string::npos)
    return fs::path("windows") / identity.pdb_name / (identity.pdb_guid + "-" + std::to_string(identity.pdb_age));
  if (identity.os == "linux" && !identity.banner.empty()) return fs::path(identity.key());  // "linux/<id>"
  return std::nullopt;
}

// A file of the store with this stem, in any compression.
std::optional<fs::path> existing(const fs::path& stem) {
  for (std::string_view suffix : kSuffixes) {
    fs::path candidate = stem;
    candidate += suffix;
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec)) return candidate;
  }
  return std::nullopt;
}

// Copies `from` to `to` through a temporary file in `to`'s directory, renamed into place.
Expected<void> copy_into_place(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to.parent_path(), ec);
  if (ec)
    return make_error(Errc::io, "profile store: cannot create '" + to.parent_path().string() + "': " + ec.message());
  fs::path temporary = to;
  temporary += ".tmp-" + std::to_string(::getpid());
  fs::copy_file(from, temporary, fs::copy_options::overwrite_existing, ec);
  if (!ec) fs::rename(temporary, to, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    return make_error(Errc::io, "profile store: cannot write '" + to.string() + "': " + ec.message());
  }
  return {};
}

}  // namespace

fs::path user_profile_store() {
  if (const char* dir = std::getenv("VMI_PROFILE_STORE"); dir != nullptr && *dir != '\0') return dir;
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg != nullptr && *xdg != '\0')
    return fs::path(xdg) / "vmi-forensics" / "profiles";
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0')
    return fs::path(home) / ".local" / "share" / "vmi-forensics" / "profiles";
  return fs::temp_directory_path() / "vmi-forensics-profiles";
}

Expected<std::vector<ProfileImport>> import_profiles(const fs::path& source, const fs::path& store) {
  std::error_code ec;
  if (!fs::exists(source, ec))
    return make_error(Errc::io, "profile import: '" + source.string() +
                                    "': " + (ec ? ec.message() : std::string("no such file or directory")));
  // The catalog's search finds the files (bounded as every search is) and reports what it could
  // not read; it loads nothing.
  ProfileCatalog found({source}, CacheOptions{false, std::nullopt});
  if (found.files().empty() && !found.notes().empty())
    return make_error(Errc::io, "profile import: " + found.notes().front());
  std::vector<ProfileImport> imports;
  for (const fs::path& file : found.files()) {
    ProfileImport& done = imports.emplace_back(ProfileImport{file, std::nullopt, false, {}});
    auto profile = load_isf_file(file);
    if (!profile) {
      done.note = "not read as ISF: " + profile.error().message;
      continue;
    }
    const ProfileIdentity identity = profile->identity();
    const auto stem = stored_stem(identity);
    if (!stem) {
      done.note = "names no kernel (neither a Linux banner nor a Windows PDB name and GUID)";
      continue;
    }
    if (const auto already = existing(store / *stem)) {
      done.stored = *already;
      done.note = "the store already has this kernel's profile";
      continue;
    }
    fs::path destination = store / *stem;
    destination += suffix_of(file);
    VMI_TRY_VOID(copy_into_place(file, destination));
    done.stored = destination;
    done.copied = true;
  }
  return imports;
}

}  // namespace vmi
