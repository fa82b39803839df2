// Profiles: ISF parsing (fixtures and the real dwarf2json file), lookups, the binary cache.
#include <doctest/doctest.h>

#include "support.hpp"
#include "vmi/isf.hpp"
#include "vmi/profile_store.hpp"

using namespace vmi;

namespace {

// A miniature of what dwarf2json writes: an anonymous union inside a struct, a bitfield, a
// pointer, an array, an enum and a symbol with constant_data ("Linux version 1\n\0").
constexpr std::string_view kIsf = R"({
  "metadata": {"format": "6.2.0", "producer": {"name": "dwarf2json", "version": "0.9.0"}, "linux": {"symbols": []}},
  "base_types": {
    "int": {"kind": "int", "size": 4, "signed": true, "endian": "little"},
    "unsigned int": {"kind": "int", "size": 4, "signed": false, "endian": "little"},
    "char": {"kind": "char", "size": 1, "signed": true, "endian": "little"},
    "pointer": {"kind": "int", "size": 8, "signed": false, "endian": "little"}
  },
  "user_types": {
    "task": {"kind": "struct", "size": 64, "fields": {
      "pid": {"type": {"kind": "base", "name": "int"}, "offset": 4},
      "comm": {"type": {"kind": "array", "count": 16, "subtype": {"kind": "base", "name": "char"}}, "offset": 16},
      "parent": {"type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "task"}}, "offset": 32},
      "unnamed_field_0": {"type": {"kind": "union", "name": "unnamed_abc"}, "offset": 40, "anonymous": true},
      "state": {"type": {"kind": "bitfield", "bit_position": 3, "bit_length": 4, "type": {"kind": "base", "name": "unsigned int"}}, "offset": 0}
    }},
    "unnamed_abc": {"kind": "union", "size": 8, "fields": {
      "hidden": {"type": {"kind": "base", "name": "unsigned int"}, "offset": 4}
    }}
  },
  "enums": {"colour": {"size": 4, "base": "int", "constants": {"red": 0, "blue": -1}}},
  "symbols": {
    "linux_banner": {"address": 18446744071597070592, "constant_data": "TGludXggdmVyc2lvbiAxCgA="},
    "init_task": {"address": 18446744071606217280, "type": {"kind": "struct", "name": "task"}}
  }
})";

}  // namespace

TEST_CASE("ISF fixture: fields, anonymous members, bitfields, enums and symbols are read as written") {
  auto profile = parse_isf(kIsf, "fixture");
  REQUIRE(profile.has_value());
  CHECK(profile->format_version() == "6.2.0");
  CHECK(profile->producer() == "dwarf2json 0.9.0");
  CHECK(profile->os() == "linux");
  CHECK(profile->banner() == "Linux version 1");
  CHECK(profile->symbol_address("init_task") == 0xffffffff82a1aa40ull);
  CHECK(profile->find_aggregate("task")->size == 64);
  CHECK(profile->field("task", "pid")->offset == 4);
  CHECK(profile->field("task", "hidden")->offset == 44);  // 40 (anonymous union) + 4
  auto state = profile->field("task", "state");
  REQUIRE(state.has_value());
  CHECK(profile->type(state->type).kind == TypeKind::bitfield);
  CHECK(profile->type(state->type).bit_position == 3);
  CHECK(profile->type(state->type).bit_length == 4);
  CHECK(profile->size_of(profile->field("task", "comm")->type) == 16);
  CHECK(profile->size_of(profile->field("task", "parent")->type) == 8);
  const EnumType* colour = profile->find_enum("colour");
  REQUIRE(colour != nullptr);
  CHECK(profile->enumerators(*colour).size() == 2);
  CHECK(profile->field("task", "missing").error().message == "profile type 'task' has no field 'missing'");
}

TEST_CASE("ISF that is not JSON, or JSON that is not ISF, is rejected naming the source") {
  CHECK(parse_isf("{\"metadata\": ", "broken.json").error().message.starts_with("broken.json: not valid ISF JSON"));
  CHECK(parse_isf("{\"hello\": 1}", "other.json").error().message == "other.json: no metadata.format: not an ISF file");
  CHECK(
      parse_isf(
          R"({"metadata": {"format": "6.2.0"}, "user_types": {"a": {"kind": "struct", "size": 4, "fields": {"x": {"offset": 0, "type": {"kind": "weird"}}}}}})",
          "odd.json")
          .error()
          .message == "odd.json: unknown type kind 'weird'");
}

TEST_CASE("the real dwarf2json ISF of Debian 6.1.0-56 loads unchanged: every type, field, enum and symbol as written") {
  auto profile = load_isf_file(test::shipped_profile());
  REQUIRE(profile.has_value());
  CHECK(profile->producer() == "dwarf2json 0.9.0");
  CHECK(profile->banner().starts_with("Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org)"));
  // Element by element against the file read without our reader (xz, simdjson's DOM parser):
  // every base type, user type (kind, size, each field's offset, type and anonymity), enum (size,
  // base, each constant's value) and symbol (address, type, constant data).
  const test::IsfModel& file = test::shipped_isf_model();
  const auto differences = test::isf_model_differences(test::isf_model_of(*profile), file);
  for (const auto& difference : differences) MESSAGE(difference);
  CHECK(differences.empty());
  CHECK(profile->banner() == test::isf_banner(file));
  // A few values looked up by hand in the file (xz -dc | jq), through the lookups plugins use.
  CHECK(profile->find_aggregate("task_struct")->size == 9792);
  CHECK(profile->field("task_struct", "tasks")->offset == 2192);
  CHECK(profile->field("task_struct", "comm")->offset == 2976);
  CHECK(profile->field("task_struct", "real_parent")->offset == 2432);
  CHECK(profile->symbol_address("init_task") == 18446744071606217280ull);
  CHECK(profile->symbol_address("_text") == 18446744071578845184ull);
}

TEST_CASE("the binary cache round-trips a profile and a damaged entry is refused") {
  auto profile = parse_isf(kIsf, "fixture");
  REQUIRE(profile.has_value());
  const auto dir = test::scratch_dir("cache");
  const auto entry = dir / "fixture.vmiprof";
  REQUIRE(write_cached_profile(entry, *profile).has_value());
  CHECK(read_cached_info(entry).value().banner == "Linux version 1");
  auto loaded = read_cached_profile(entry);
  REQUIRE(loaded.has_value());
  CHECK(loaded->field("task", "hidden")->offset == 44);
  CHECK(loaded->symbol_address("init_task") == 0xffffffff82a1aa40ull);
  CHECK(loaded->types.size() == profile->types.size());

  std::string bytes = test::read_file(entry);
  bytes[bytes.size() - 5] ^= 0x40;  // inside the zstd frame: the content checksum must catch it
  test::write_file(entry, bytes);
  auto damaged = read_cached_profile(entry);
  REQUIRE_FALSE(damaged.has_value());
  CHECK(damaged.error().message.find("damaged") != std::string::npos);
}

TEST_CASE("the catalog rebuilds a damaged cache entry instead of trusting it") {
  const auto dir = test::scratch_dir("catalog");
  test::write_file(dir / "mini.json", std::string(kIsf));
  ProfileCatalog first({dir / "mini.json"}, CacheOptions{true, dir / "cache"});
  REQUIRE(first.load(dir / "mini.json").has_value());
  std::vector<std::filesystem::path> entries;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir / "cache")) {
    if (e.is_regular_file()) entries.push_back(e.path());
  }
  REQUIRE(entries.size() == 1);
  std::string bytes = test::read_file(entries[0]);
  bytes.resize(bytes.size() / 2);
  test::write_file(entries[0], bytes);

  ProfileCatalog second({dir / "mini.json"}, CacheOptions{true, dir / "cache"});
  auto reloaded = second.load(dir / "mini.json");
  REQUIRE(reloaded.has_value());
  CHECK((*reloaded)->field("task", "pid")->offset == 4);
  REQUIRE(second.notes().size() == 1);
  CHECK(second.notes()[0].starts_with("rebuilding damaged profile cache entry"));
  CHECK(read_cached_profile(entries[0]).has_value());  // rewritten whole
}

TEST_CASE("the shipped Windows ISF tables (JPCERT/CC, from Microsoft's PDBs) load unchanged") {
  struct WindowsTable {
    const char* file;
    std::uint32_t eprocess_size, active_process_links, unique_process_id;
    std::uint64_t ps_active_process_head;  // an RVA in Windows ISF
  };
  const WindowsTable tables[] = {
      {"339E74133576439CBCDF7E0229DA3773-1.json.xz", 1272, 392, 384, 2210112},     // Windows 7 SP1
      {"BBED7C2955FBE4522AAA23F4B8677AD9-1.json.xz", 2624, 1096, 1088, 12705888},  // Windows 10 2004
      {"0CE4A95C0CD782A7596B034D8648E585-1.json.xz", 2944, 1096, 1088, 12697504},  // Windows 11 21H2
  };
  for (const auto& t : tables) {
    CAPTURE(t.file);
    auto profile = load_isf_file(test::source_dir() / "profiles/windows" / t.file);
    REQUIRE(profile.has_value());
    CHECK(profile->os() == "windows");
    CHECK(profile->banner().empty());
    CHECK(profile->find_aggregate("_EPROCESS")->size == t.eprocess_size);
    CHECK(profile->field("_EPROCESS", "ActiveProcessLinks")->offset == t.active_process_links);
    CHECK(profile->field("_EPROCESS", "UniqueProcessId")->offset == t.unique_process_id);
    CHECK(profile->symbol_address("PsActiveProcessHead") == t.ps_active_process_head);
    // Everything else element by element against the file read without our reader.
    const auto differences = test::isf_model_differences(
        test::isf_model_of(*profile), test::read_isf_model(test::source_dir() / "profiles/windows" / t.file));
    for (const auto& difference : differences) MESSAGE(difference);
    CHECK(differences.empty());
  }
}
