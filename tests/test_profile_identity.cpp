// Profile identity per OS: a Windows ISF by its PDB name, GUID and age; a Linux profile by its
// banner and GNU build id. Through the ISF reader and writer, the binary cache and the catalog,
// and Linux detection, which refuses a profile of the same banner but another build.
#include <doctest/doctest.h>

#include <filesystem>
#include <regex>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/isf.hpp"
#include "vmi/profile_store.hpp"
#include "vmi/session.hpp"
#include "vmi/vmlinux.hpp"

using namespace vmi;
namespace fs = std::filesystem;

namespace {

// A minimal Windows ISF as Volatility 3's symbol packs lay them out (metadata.windows.pdb).
std::string windows_isf(const std::string& guid, int age) {
  return R"({"metadata": {"format": "6.2.0", "producer": {"name": "pdbconv", "version": "0.1"},
  "windows": {"pdb": {"GUID": ")" +
         guid + R"(", "age": )" + std::to_string(age) + R"(, "database": "ntkrnlmp.pdb", "machine_type": 34404}}},
 "base_types": {"pointer": {"size": 8, "signed": false, "kind": "int", "endian": "little"},
                "unsigned long": {"size": 4, "signed": false, "kind": "int", "endian": "little"}},
 "user_types": {"_LIST_ENTRY": {"kind": "struct", "size": 16, "fields": {
   "Flink": {"offset": 0, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "_LIST_ENTRY"}}},
   "Blink": {"offset": 8, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "_LIST_ENTRY"}}}}}},
 "enums": {},
 "symbols": {"PsActiveProcessHead": {"address": 12935264}}})";
}

// `readelf -n`'s "Build ID:" line: binutils, not our note parser.
std::string readelf_build_id(const fs::path& elf) {
  const auto result = test::run_command({"readelf", "-n", elf.string()});
  REQUIRE_MESSAGE(result.exit_code == 0, result.err);
  std::smatch match;
  REQUIRE_MESSAGE(std::regex_search(result.out, match, std::regex("Build ID: ([0-9a-f]+)")), result.out);
  return match[1];
}

}  // namespace

TEST_CASE("a Windows ISF is identified by its PDB name, GUID and age, through the writer, the cache and the catalog") {
  const auto dir = test::scratch_dir("identity-windows");
  const std::string guid = "3844dbb920174967be7aa4a2c20430fa";  // as some packs write it: lower case
  auto profile = parse_isf(windows_isf(guid, 1), "windows.json");
  REQUIRE_MESSAGE(profile.has_value(), test::error_text(profile));
  const ProfileIdentity identity = profile->identity();
  CHECK(identity.os == "windows");
  CHECK(identity.pdb_name == "ntkrnlmp.pdb");
  CHECK(identity.pdb_guid == "3844DBB920174967BE7AA4A2C20430FA");
  CHECK(identity.pdb_age == 1);
  CHECK(identity.key() == "windows/ntkrnlmp.pdb/3844DBB920174967BE7AA4A2C20430FA1");

  // Written back as ISF and read again: the same identity.
  REQUIRE(save_isf_file(*profile, dir / "written.json").has_value());
  auto reread = load_isf_file(dir / "written.json");
  REQUIRE(reread.has_value());
  CHECK(reread->identity().key() == identity.key());

  // The cache entry carries it whole, and names it in its header.
  REQUIRE(write_cached_profile(dir / "entry.vmiprof", *profile).has_value());
  CHECK(read_cached_info(dir / "entry.vmiprof")->identity_key == identity.key());
  CHECK(read_cached_profile(dir / "entry.vmiprof")->identity().key() == identity.key());

  // A catalog of two builds and a Linux profile finds each Windows build by its PDB, whatever
  // the case of the name and GUID, and nothing for a third.
  const auto packs = test::scratch_dir("identity-windows-packs");
  test::write_file(packs / "ntkrnlmp-1.json", windows_isf(guid, 1));
  test::write_file(packs / "ntkrnlmp-2.json", windows_isf("00000000000000000000000000000002", 2));
  fs::copy_file(test::shipped_profile(), packs / fs::path(test::shipped_profile()).filename());
  ProfileCatalog catalog({packs}, CacheOptions{true, test::scratch_dir("identity-windows-cache")});
  ProfileIdentity wanted;
  wanted.os = "windows";
  wanted.pdb_name = "NTKRNLMP.PDB";
  wanted.pdb_guid = "00000000000000000000000000000002";
  wanted.pdb_age = 2;
  CHECK(catalog.find(wanted) == packs / "ntkrnlmp-2.json");
  wanted.pdb_guid = "3844DBB920174967BE7AA4A2C20430FA";
  wanted.pdb_age = 1;
  CHECK(catalog.find(wanted) == packs / "ntkrnlmp-1.json");
  wanted.pdb_age = 3;
  CHECK_FALSE(catalog.find(wanted).has_value());
  // The key is read from the cache header on the second look.
  CHECK(catalog.identity_key(packs / "ntkrnlmp-2.json").value() ==
        "windows/ntkrnlmp.pdb/000000000000000000000000000000022");
}

TEST_CASE("a Linux profile knows the build id readelf reports, whether built from vmlinux or recovered from memory") {
  const auto samples = test::load_samples();
  const auto& sample = samples.front();
  const fs::path kernel_dir = sample.env.at("KERNEL_DIR");
  const std::string build_id = readelf_build_id(kernel_dir / "vmlinux");
  CHECK(build_id.size() == 40);

  auto built = build_profile_from_vmlinux(kernel_dir / "vmlinux", kernel_dir / "System.map");
  REQUIRE_MESSAGE(built.has_value(), test::error_text(built));
  CHECK(built->build_id() == build_id);
  CHECK(built->identity().key() == "linux/" + build_id);
  CHECK(built->identity().banner + "\n" == sample.version);

  SessionOptions options;
  options.profile_paths = {test::scratch_dir("identity-no-profiles")};
  options.cache.enabled = false;
  auto session = Session::open(sample.dir / "memory.raw", options);
  REQUIRE(session.has_value());
  auto kernel = session->kernel();
  REQUIRE_MESSAGE(kernel.has_value(), test::error_text(kernel));
  CHECK((*kernel)->profile().build_id() == build_id);

  // dwarf2json's ISF records no build id: its identity is the banner, and it fits either way.
  auto shipped = load_isf_file(test::shipped_profile());
  REQUIRE(shipped.has_value());
  CHECK(shipped->build_id().empty());
  CHECK(shipped->identity().key().starts_with("linux/banner-"));
  CHECK(shipped->identity().matches(built->identity()));
  ProfileIdentity other = built->identity();
  other.build_id = std::string(40, '0');
  CHECK_FALSE(other.matches(built->identity()));
}

TEST_CASE("detection refuses a profile with the kernel's banner but another build id") {
  const auto samples = test::load_samples();
  const auto& sample = samples.front();
  const std::string build_id = readelf_build_id(fs::path(sample.env.at("KERNEL_DIR")) / "vmlinux");
  const auto cache = test::scratch_dir("identity-tampered-cache");
  const auto profiles = test::scratch_dir("identity-tampered-profiles");
  const fs::path profile_file = profiles / "kernel.json.xz";
  fs::copy_file(test::shipped_profile(), profile_file);
  SessionOptions options;
  options.profile_paths = {profile_file};
  options.cache = CacheOptions{true, cache};
  {
    auto session = Session::open(sample.dir / "memory.raw", options);  // leaves the cache entry
    REQUIRE(session.has_value());
    REQUIRE(session->kernel().has_value());
  }
  fs::path entry;
  for (const auto& file : fs::recursive_directory_iterator(cache))
    if (file.path().extension() == ".vmiprof") entry = file.path();
  REQUIRE(!entry.empty());
  auto profile = read_cached_profile(entry);
  REQUIRE(profile.has_value());
  // The cache entry now claims a build: the right one is accepted, another refused.
  for (const std::string& claimed : {build_id, std::string(40, 'a')}) {
    CAPTURE(claimed);
    Profile tampered = *profile;
    tampered.build_id_ =
        StrRef{static_cast<std::uint32_t>(tampered.strings.size()), static_cast<std::uint32_t>(claimed.size())};
    tampered.strings += claimed;
    REQUIRE(write_cached_profile(entry, tampered).has_value());
    auto session = Session::open(sample.dir / "memory.raw", options);
    REQUIRE(session.has_value());
    auto kernel = session->kernel();
    if (claimed == build_id) {
      CHECK(kernel.has_value());
    } else {
      REQUIRE_FALSE(kernel.has_value());
      CHECK(kernel.error().message.find("is for build " + claimed + ", the kernel in memory is build " + build_id) !=
            std::string::npos);
    }
  }
}
