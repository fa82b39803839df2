// profile import against the shipped ISF files: JPCERT's three Windows kernels (named by their
// PDB GUID and age, profiles/windows/README.md) and the pinned Linux kernel's dwarf2json ISF.
#include <doctest/doctest.h>

#include <cstdlib>

#include "support.hpp"
#include "vmi/profile_store.hpp"

using namespace vmi;
namespace fs = std::filesystem;

namespace {

// The shipped Windows tables by the GUID-age their file names carry (the PDB's own, as JPCERT
// named them).
const std::vector<std::pair<std::string, fs::path>>& windows_tables() {
  static const auto tables = [] {
    std::vector<std::pair<std::string, fs::path>> found;
    for (const auto& entry : fs::directory_iterator(test::source_dir() / "profiles/windows")) {
      const std::string name = entry.path().filename().string();
      if (name.ends_with(".json.xz")) found.emplace_back(name.substr(0, name.size() - 8), entry.path());
    }
    std::ranges::sort(found);
    return found;
  }();
  REQUIRE(tables.size() == 3);
  return tables;
}

ProfileIdentity windows_identity(const std::string& guid_age) {
  ProfileIdentity identity;
  identity.os = "windows";
  identity.pdb_name = "ntkrnlmp.pdb";
  identity.pdb_guid = guid_age.substr(0, guid_age.find('-'));
  identity.pdb_age = static_cast<std::uint32_t>(std::stoul(guid_age.substr(guid_age.find('-') + 1)));
  return identity;
}

}  // namespace

TEST_CASE("profile import files each Windows table under its PDB name, GUID and age, byte for byte") {
  const fs::path store = test::scratch_dir("profile-import-store");
  auto imports = import_profiles(test::source_dir() / "profiles/windows", store);
  REQUIRE_MESSAGE(imports.has_value(), test::error_text(imports));
  REQUIRE(imports->size() == 3);
  for (const auto& table : windows_tables()) {
    const std::string& guid_age = table.first;
    const fs::path& file = table.second;
    CAPTURE(guid_age);
    const fs::path expected = store / "windows" / "ntkrnlmp.pdb" / (guid_age + ".json.xz");
    const auto done = std::ranges::find(*imports, file, &ProfileImport::source);
    REQUIRE(done != imports->end());
    CHECK(done->copied);
    CHECK(done->stored == expected);
    CHECK(test::read_file(expected) == test::read_file(file));
    // The store is a search path like any other: the catalog finds each kernel by identity.
    ProfileCatalog catalog({store}, CacheOptions{false, std::nullopt});
    CHECK(catalog.find(windows_identity(guid_age)) == expected);
  }
}

TEST_CASE("profile import leaves out a kernel the store already has, in any compression, and skips what is not ISF") {
  const fs::path store = test::scratch_dir("profile-import-again");
  REQUIRE(import_profiles(test::source_dir() / "profiles", store).has_value());
  // The same Windows table uncompressed, a Linux ISF already there, and two files that are no profile.
  const fs::path source = test::scratch_dir("profile-import-source");
  const auto& [guid_age, xz_file] = windows_tables().front();
  auto plain = test::run_command({"xz", "-dc", xz_file.string()});
  REQUIRE(plain.exit_code == 0);
  test::write_file(source / (guid_age + ".json"), plain.out);
  fs::copy_file(test::shipped_profile(), source / "linux.json.xz");
  test::write_file(source / "junk.json", R"({"not": "an ISF"})");
  test::write_file(source / "empty.json.zst", "");
  auto imports = import_profiles(source, store);
  REQUIRE_MESSAGE(imports.has_value(), test::error_text(imports));
  REQUIRE(imports->size() == 4);
  for (const ProfileImport& done : *imports) {
    CAPTURE(done.source.string());
    CHECK_FALSE(done.copied);
    const std::string name = done.source.filename().string();
    if (name == guid_age + ".json") {
      CHECK(done.stored == store / "windows" / "ntkrnlmp.pdb" / (guid_age + ".json.xz"));
    } else if (name == "linux.json.xz") {
      REQUIRE(done.stored.has_value());
      CHECK(done.stored->parent_path() == store / "linux");
    } else {
      CHECK_FALSE(done.stored.has_value());
      CHECK(done.note.starts_with("not read as ISF: "));
    }
  }
  CHECK_FALSE(fs::exists(store / "windows" / "ntkrnlmp.pdb" / (guid_age + ".json")));
}

TEST_CASE("profile import of a path that is not there fails naming it; the store joins the default search paths") {
  const fs::path missing = test::scratch_dir("profile-import-missing") / "nothing-here";
  auto imports = import_profiles(missing, test::scratch_dir("profile-import-unused"));
  REQUIRE_FALSE(imports.has_value());
  CHECK(imports.error().message.find(missing.string()) != std::string::npos);

  const fs::path store = test::scratch_dir("profile-import-default");
  ::setenv("VMI_PROFILE_STORE", store.c_str(), 1);
  CHECK(user_profile_store() == store);
  const auto searched = [&] { return std::ranges::count(default_profile_paths(), store) == 1; };
  CHECK(searched());
  fs::remove_all(store);  // a store that does not exist is no search path (no warning on every run)
  CHECK_FALSE(searched());
  ::unsetenv("VMI_PROFILE_STORE");
}

TEST_CASE("vmi-forensics profile import lists what it copied, found present or skipped") {
  const fs::path store = test::scratch_dir("profile-import-cli");
  auto first = test::run_cli(
      {"profile", "import", (test::source_dir() / "profiles/windows").string(), "--store", store.string()});
  REQUIRE_MESSAGE(first.exit_code == 0, first.err);
  CHECK(std::ranges::count(first.out, '\n') == 3);
  CHECK(first.out.starts_with("imported "));
  CHECK(first.err.find("3 imported, 0 already in ") != std::string::npos);
  auto second = test::run_cli(
      {"profile", "import", (test::source_dir() / "profiles/windows").string(), "--store", store.string()});
  REQUIRE(second.exit_code == 0);
  CHECK(second.err.find("0 imported, 3 already in ") != std::string::npos);
  CHECK(test::run_cli({"profile", "import"}).exit_code == 1);
}
