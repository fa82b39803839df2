// DWARF import (libdw): a C fixture compiled by gcc here with DWARF 4 and 5, and Debian's debug
// vmlinux (linux-image-*-dbg, fetched by the sample script) against dwarf2json's ISF of it (read
// with simdjson, not our reader), binutils' nm of it, and its DWARF walked here with libdw.
#include <doctest/doctest.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/dwarf.hpp"
#include "vmi/isf.hpp"
#include "vmi/vmlinux.hpp"

using namespace vmi;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kFixture = R"(
struct list_head { struct list_head *next, *prev; };
typedef struct { int counter; } atomic_t;
enum mode { MODE_OFF = -1, MODE_ON = 1, MODE_MAX = 7 };
struct flags { unsigned int a : 3; unsigned int b : 5; int c : 12; unsigned long long d : 40; };
struct node {
  struct list_head list;
  atomic_t refs;
  union { long value; void *pointer; };
  struct { short x, y; } point;
  int grid[2][3];
  const volatile char name[16];
  enum mode mode;
  struct flags flags;
  int (*callback)(int);
  unsigned char tail[];
};
extern struct node global_node;
struct node global_node;
static struct flags local_flags;
int main(void) { return (int)sizeof(global_node) + local_flags.a; }
)";

// Compiles the fixture into an executable with the given DWARF version.
fs::path compile_fixture(const std::string& dwarf_version) {
  const fs::path dir = test::scratch_dir("dwarf-fixture-" + dwarf_version);
  test::write_file(dir / "fixture.c", std::string(kFixture));
  const auto result = test::run_command(
      {"gcc", "-g", "-gdwarf-" + dwarf_version, "-O0", "-o", (dir / "fixture").string(), (dir / "fixture.c").string()});
  REQUIRE_MESSAGE(result.exit_code == 0, result.err);
  return dir / "fixture";
}

// A type reference as text, anonymous structs/unions/enums spelled out, so that profiles that
// name anonymous types differently (dwarf2json hashes Go's rendering, we hash our own) compare.
std::string shape(const Profile& p, TypeId id, int depth = 0) {
  if (id == kNoType || depth > 8) return "?";
  const TypeDesc& t = p.type(id);
  const std::string name(p.str(t.name));
  switch (t.kind) {
    case TypeKind::pointer:
      return "*" + shape(p, t.subtype, depth + 1);
    case TypeKind::array:
      return "[" + std::to_string(t.count) + "]" + shape(p, t.subtype, depth + 1);
    case TypeKind::bitfield:
      return "bits" + std::to_string(t.bit_position) + ":" + std::to_string(t.bit_length) +
             shape(p, t.subtype, depth + 1);
    case TypeKind::struct_:
    case TypeKind::union_:
      if (name.starts_with("unnamed_")) {
        const Aggregate* a = p.find_aggregate(name);
        if (a == nullptr) return "missing " + name;
        std::map<std::string, std::string> fields;
        for (const Member& m : p.members(*a)) {
          fields[std::string(p.str(m.name))] = std::to_string(m.offset) + " " + shape(p, m.type, depth + 1);
        }
        std::string text = "{" + std::to_string(a->size);
        for (const auto& [field, value] : fields) text += " " + field + "@" + value;
        return text + "}";
      }
      return std::string(to_string(t.kind)) + " " + name;
    case TypeKind::enum_:
      if (name.starts_with("unnamed_")) {
        const EnumType* e = p.find_enum(name);
        if (e == nullptr) return "missing " + name;
        std::map<std::string, std::int64_t> values;
        for (const Enumerator& v : p.enumerators(*e)) values[std::string(p.str(v.name))] = v.value;
        std::string text = "enum{";
        for (const auto& [n, v] : values) text += n + "=" + std::to_string(v) + ";";
        return text + "}";
      }
      return "enum " + name;
    default:
      return std::string(to_string(t.kind)) + " " + name;
  }
}

std::map<std::string, std::string> named_fields(const Profile& p, const Aggregate& a) {
  std::map<std::string, std::string> fields;
  for (const Member& m : p.members(a))
    fields[std::string(p.str(m.name))] = std::to_string(m.offset) + " " + shape(p, m.type);
  return fields;
}

// One complete definition (not a declaration) of a named struct, union or enum in a DWARF file.
struct DwarfDefinition {
  int tag = 0;  // DW_TAG_structure_type, DW_TAG_union_type, DW_TAG_enumeration_type
  std::uint64_t size = 0;
  std::string layout;  // members (name, offset, bits, type with typedefs resolved) or enumerators, as text
  std::map<std::string, std::int64_t> constants;  // enums: each enumerator's value
};

// Every definition of the given names in a file's DWARF, read with libdw directly (no profile, no
// conversion): compile units in order, each walked depth first through every DIE, so function-local
// types count too. Structs/unions and enums are separate name spaces, as in C and in ISF.
class DwarfDefinitions {
 public:
  std::map<std::string, std::vector<DwarfDefinition>> aggregates, enums;

  DwarfDefinitions(const fs::path& elf, const std::set<std::string>& names) : names_(names) {
    const int fd = ::open(elf.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE_MESSAGE(fd >= 0, "cannot open " << elf);
    Dwarf* dwarf = dwarf_begin(fd, DWARF_C_READ);
    if (dwarf == nullptr) ::close(fd);
    REQUIRE_MESSAGE(dwarf != nullptr, elf << ": " << dwarf_errmsg(-1));
    Dwarf_Off offset = 0, next = 0;
    std::size_t header_size = 0;
    while (dwarf_next_unit(dwarf, offset, &next, &header_size, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr) ==
           0) {
      Dwarf_Die unit;
      if (dwarf_offdie(dwarf, offset + header_size, &unit) != nullptr) walk(&unit, 0);
      offset = next;
    }
    dwarf_end(dwarf);
    ::close(fd);
  }

 private:
  void walk(Dwarf_Die* parent, int depth) {
    Dwarf_Die child;
    if (depth > 256 || dwarf_child(parent, &child) != 0) return;
    do {
      const int tag = dwarf_tag(&child);
      const bool aggregate = tag == DW_TAG_structure_type || tag == DW_TAG_union_type;
      if ((aggregate || tag == DW_TAG_enumeration_type) && dwarf_hasattr(&child, DW_AT_declaration) == 0) {
        if (const char* name = dwarf_diename(&child); name != nullptr && names_.contains(name)) {
          const int size = dwarf_bytesize(&child);
          (aggregate ? aggregates : enums)[name].push_back(DwarfDefinition{
              tag, size < 0 ? 0 : static_cast<std::uint64_t>(size), layout(&child, 0), enumerators(&child)});
        }
      }
      walk(&child, depth + 1);
    } while (dwarf_siblingof(&child, &child) == 0);
  }

  static std::string number_attr(Dwarf_Die* die, unsigned name) {
    Dwarf_Attribute attr;
    Dwarf_Word value;
    if (dwarf_attr(die, name, &attr) == nullptr || dwarf_formudata(&attr, &value) != 0) return "-";
    return std::to_string(value);
  }

  // The members or enumerators of a definition, in DWARF order.
  static std::string layout(Dwarf_Die* die, int depth) {
    std::string text;
    Dwarf_Die child;
    if (depth > 8 || dwarf_child(die, &child) != 0) return text;
    do {
      const char* name = dwarf_diename(&child);
      const std::string label = name != nullptr ? name : "";
      if (dwarf_tag(&child) == DW_TAG_member) {
        Dwarf_Attribute attr;
        Dwarf_Die type;
        const bool typed =
            dwarf_attr(&child, DW_AT_type, &attr) != nullptr && dwarf_formref_die(&attr, &type) != nullptr;
        text += label + "@" + number_attr(&child, DW_AT_data_member_location) + "/" +
                number_attr(&child, DW_AT_data_bit_offset) + "/" + number_attr(&child, DW_AT_bit_offset) + ":" +
                number_attr(&child, DW_AT_bit_size) + " " + (typed ? type_text(&type, depth + 1) : "?") + "; ";
      } else if (dwarf_tag(&child) == DW_TAG_enumerator) {
        text += label + "=" + std::to_string(constant_value(&child)) + "; ";
      }
    } while (dwarf_siblingof(&child, &child) == 0);
    return text;
  }

  // An enumerator's value: DWARF's constant forms are unsigned (zero-extended, as Go's reader and
  // so dwarf2json take them); only sdata and implicit_const carry a sign.
  static std::int64_t constant_value(Dwarf_Die* enumerator) {
    Dwarf_Attribute attr;
    if (dwarf_attr(enumerator, DW_AT_const_value, &attr) == nullptr) return 0;
    const unsigned form = dwarf_whatform(&attr);
    if (form == DW_FORM_sdata || form == DW_FORM_implicit_const) {
      Dwarf_Sword value = 0;
      return dwarf_formsdata(&attr, &value) == 0 ? value : 0;
    }
    Dwarf_Word value = 0;
    return dwarf_formudata(&attr, &value) == 0 ? static_cast<std::int64_t>(value) : 0;
  }

  static std::map<std::string, std::int64_t> enumerators(Dwarf_Die* die) {
    std::map<std::string, std::int64_t> constants;
    Dwarf_Die child;
    if (dwarf_tag(die) != DW_TAG_enumeration_type || dwarf_child(die, &child) != 0) return constants;
    do {
      const char* name = dwarf_diename(&child);
      if (dwarf_tag(&child) == DW_TAG_enumerator && name != nullptr)
        constants.try_emplace(name, constant_value(&child));
    } while (dwarf_siblingof(&child, &child) == 0);
    return constants;
  }

  // A member's type with typedefs and qualifiers resolved away; anonymous types by their layout.
  static std::string type_text(Dwarf_Die* die, int depth) {
    if (depth > 8) return "...";
    Dwarf_Die current = *die;
    for (int hops = 0; hops < 64; ++hops) {
      const int tag = dwarf_tag(&current);
      Dwarf_Attribute attr;
      Dwarf_Die target;
      const bool has_target =
          dwarf_attr(&current, DW_AT_type, &attr) != nullptr && dwarf_formref_die(&attr, &target) != nullptr;
      switch (tag) {
        case DW_TAG_typedef:
        case DW_TAG_const_type:
        case DW_TAG_volatile_type:
        case DW_TAG_restrict_type:
        case DW_TAG_atomic_type:
          if (!has_target) return "void";
          current = target;
          continue;
        case DW_TAG_pointer_type:
          return "*" + (has_target ? type_text(&target, depth + 1) : std::string("void"));
        case DW_TAG_array_type: {
          Dwarf_Word bytes = 0;
          const std::string extent = dwarf_aggregate_size(&current, &bytes) == 0 ? std::to_string(bytes) : "?";
          return "[" + extent + " bytes]" + (has_target ? type_text(&target, depth + 1) : std::string("?"));
        }
        case DW_TAG_structure_type:
        case DW_TAG_union_type:
        case DW_TAG_enumeration_type: {
          const std::string kind = tag == DW_TAG_structure_type ? "struct "
                                   : tag == DW_TAG_union_type   ? "union "
                                                                : "enum ";
          if (const char* name = dwarf_diename(&current); name != nullptr) return kind + name;
          return kind + "{" + layout(&current, depth + 1) + "}";
        }
        case DW_TAG_subroutine_type:
          return "function";
        case DW_TAG_base_type: {
          const char* name = dwarf_diename(&current);
          return name != nullptr ? name : "?";
        }
        default:
          return "tag " + std::to_string(tag);
      }
    }
    return "...";
  }

  const std::set<std::string>& names_;
};

// Whether a name's definitions are not all the same.
bool defined_differently(const std::vector<DwarfDefinition>& definitions) {
  std::set<std::tuple<int, std::uint64_t, std::string>> distinct;
  for (const auto& d : definitions) distinct.emplace(d.tag, d.size, d.layout);
  return distinct.size() >= 2;
}

}  // namespace

TEST_CASE(
    "DWARF fixture: members, bitfields, anonymous members, arrays, enums and variables come out as dwarf2json writes "
    "them") {
  for (const std::string version : {"4", "5"}) {
    CAPTURE(version);
    VmlinuxProfileNotes notes;
    auto profile = build_profile_from_vmlinux(compile_fixture(version), std::nullopt, &notes);
    REQUIRE_MESSAGE(profile.has_value(), test::error_text(profile));
    CHECK(notes.type_source == "DWARF");
    CHECK(profile->producer() == "vmi-forensics dwarf");
    const Aggregate* node = profile->find_aggregate("node");
    REQUIRE(node != nullptr);
    CHECK(node->size == 96);
    const std::map<std::string, std::string> expected = {
        {"list", "0 struct list_head"},
        {"refs", "16 struct atomic_t"},
        {"unnamed_field_0", "24 {8 pointer@0 *base void value@0 base long int}"},
        {"point", "32 {4 x@0 base short int y@2 base short int}"},
        {"grid", "36 [2][3]base int"},
        {"name", "60 [16]base char"},
        {"mode", "76 enum mode"},
        {"flags", "80 struct flags"},
        {"callback", "88 *function "},
        {"tail", "96 [0]base unsigned char"},
    };
    CHECK(named_fields(*profile, *node) == expected);
    for (const Member& m : profile->members(*node))
      CHECK((m.anonymous == 1) == (profile->str(m.name) == "unnamed_field_0"));
    const Aggregate* flags = profile->find_aggregate("flags");
    REQUIRE(flags != nullptr);
    // c holds bits 8..19 and d bits 20..59 of the 8-byte unit.
    CHECK(named_fields(*profile, *flags) ==
          std::map<std::string, std::string>{{"a", "0 bits0:3base unsigned int"},
                                             {"b", "0 bits3:5base unsigned int"},
                                             {"c", "1 bits0:12base int"},
                                             {"d", "2 bits4:40base long long unsigned int"}});
    const Aggregate* atomic = profile->find_aggregate("atomic_t");  // a typedef naming an anonymous struct
    REQUIRE(atomic != nullptr);
    CHECK(atomic->size == 4);
    const EnumType* mode = profile->find_enum("mode");
    REQUIRE(mode != nullptr);
    CHECK(mode->size == 4);
    CHECK(profile->str(mode->base) == "int");                                            // signed: MODE_OFF is -1
    CHECK(shape(*profile, profile->find_symbol("global_node")->type) == "struct node");  // extern, then defined
    CHECK(shape(*profile, profile->find_symbol("local_flags")->type) == "struct flags");
    CHECK(shape(*profile, profile->find_symbol("main")->type) == "base void");
    CHECK(notes.typed_symbols == 2);
    CHECK(profile->find_base_type("pointer")->size == 8);
  }
}

TEST_CASE("DWARF 4 and DWARF 5 of one program give the same ISF") {
  auto four = build_profile_from_vmlinux(compile_fixture("4"), std::nullopt);
  auto five = build_profile_from_vmlinux(compile_fixture("5"), std::nullopt);
  REQUIRE(four.has_value());
  REQUIRE(five.has_value());
  const fs::path dir = test::scratch_dir("dwarf-4-5");
  REQUIRE(save_isf_file(*four, dir / "four.json").has_value());
  REQUIRE(save_isf_file(*five, dir / "five.json").has_value());
  CHECK(test::read_file(dir / "four.json") == test::read_file(dir / "five.json"));
}

TEST_CASE("DWARF errors: a file without DWARF and asking for DWARF or BTF a file lacks") {
  const fs::path dir = test::scratch_dir("dwarf-errors");
  test::write_file(dir / "text", "no ELF here, just text long enough for a header 0123456789abcdef0123456789");
  ProfileBuilder builder;
  auto none = add_dwarf_types(dir / "text", builder);
  REQUIRE_FALSE(none.has_value());
  CHECK(none.error().code == Errc::not_found);
  CHECK(none.error().message.starts_with((dir / "text").string() + ": no DWARF debug information"));
  auto missing = add_dwarf_types(dir / "absent", builder);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().message == (dir / "absent").string() + ": cannot open");

  const fs::path fixture = compile_fixture("5");
  auto btf = build_profile_from_vmlinux(fixture, std::nullopt, nullptr, VmlinuxTypes::btf);
  REQUIRE_FALSE(btf.has_value());
  CHECK(btf.error().message == fixture.string() + ": no .BTF section");
  const auto samples = test::load_samples();
  REQUIRE(!samples.empty());
  const fs::path stripped = fs::path(samples.front().env.at("KERNEL_DIR")) / "vmlinux";  // BTF, no DWARF
  auto dwarf = build_profile_from_vmlinux(stripped, std::nullopt, nullptr, VmlinuxTypes::dwarf);
  REQUIRE_FALSE(dwarf.has_value());
  CHECK(dwarf.error().message == stripped.string() + ": no DWARF (.debug_info); Debian ships it in linux-image-*-dbg");
}

TEST_CASE("DWARF of Debian's debug vmlinux equals dwarf2json's ISF of it, type by type") {
  const auto samples = test::load_samples();
  REQUIRE(!samples.empty());
  REQUIRE_MESSAGE(samples.front().env.at("PINNED") == "1", "the dwarf2json ISF describes the pinned build");
  const fs::path debug_vmlinux = fs::path(samples.front().env.at("KERNEL_DIR")) / "vmlinux.dbg";
  const Profile* ours = &test::debug_vmlinux_profile(samples.front());
  auto theirs = load_isf_file(test::shipped_profile());
  REQUIRE(theirs.has_value());
  // dwarf2json's file also read without our ISF reader: xz and simdjson's DOM parser.
  const test::IsfModel& isf = test::shipped_isf_model();
  const test::IsfModel our_model = test::isf_model_of(*ours);
  CHECK(ours->banner() == test::isf_banner(isf));
  CHECK(ours->producer() == "vmi-forensics dwarf");
  MESSAGE(ours->aggregates.size() << " user types, " << ours->symbols.size() << " symbols");

  // The same named user types as the file has; each with the same size and fields, except names
  // that several definitions in the DWARF give different layouts (dwarf2json keeps the last
  // definition, we the first): those are checked against the DWARF itself below.
  std::set<std::string> our_names, isf_names;
  for (const Aggregate& a : ours->aggregates) {
    if (!ours->str(a.name).starts_with("unnamed_")) our_names.emplace(ours->str(a.name));
  }
  for (const auto& entry : isf.user_types) {
    if (!entry.first.starts_with("unnamed_")) isf_names.insert(entry.first);
  }
  CHECK_MESSAGE(our_names == isf_names, "only ours: ", test::names_missing(our_names, isf_names),
                "; only dwarf2json's: ", test::names_missing(isf_names, our_names));
  std::vector<std::string> differing;
  for (const std::string& name : our_names) {
    const Aggregate* a = ours->find_aggregate(name);
    const Aggregate* b = theirs->find_aggregate(name);
    if (b == nullptr) continue;  // reported above
    if (a->size != b->size || named_fields(*ours, *a) != named_fields(*theirs, *b)) differing.push_back(name);
  }
  MESSAGE(our_names.size() << " named user types, " << differing.size() << " defined differently by several files");

  // Base types: identical. Named enums: the same names, each with the same size, base and
  // constants (name and value), except names the DWARF defines more than once differently.
  // Anonymous enums (each tool names them by a hash of its own rendering): the same contents.
  const auto base_differences =
      test::isf_model_differences(test::IsfModel{"", "", "", our_model.base_types, {}, {}, {}},
                                  test::IsfModel{"", "", "", isf.base_types, {}, {}, {}});
  for (const auto& difference : base_differences) MESSAGE(difference);
  CHECK(base_differences.empty());
  using EnumContents = std::tuple<std::uint64_t, std::string, std::map<std::string, std::int64_t>>;
  std::set<std::string> our_enums, isf_enums;
  std::set<EnumContents> our_anonymous, isf_anonymous;
  for (const auto& [name, e] : our_model.enums) {
    if (name.starts_with("unnamed_")) {
      our_anonymous.emplace(e.size, e.base, e.constants);
    } else {
      our_enums.insert(name);
    }
  }
  for (const auto& [name, e] : isf.enums) {
    if (name.starts_with("unnamed_")) {
      isf_anonymous.emplace(e.size, e.base, e.constants);
    } else {
      isf_enums.insert(name);
    }
  }
  CHECK_MESSAGE(our_enums == isf_enums, "only ours: ", test::names_missing(our_enums, isf_enums),
                "; only dwarf2json's: ", test::names_missing(isf_enums, our_enums));
  CHECK(our_anonymous.size() == our_model.enums.size() - our_enums.size());  // no two with the same contents
  std::size_t anonymous_only_ours = 0, anonymous_only_theirs = 0;
  for (const auto& contents : our_anonymous) anonymous_only_ours += isf_anonymous.count(contents) == 0;
  for (const auto& contents : isf_anonymous) anonymous_only_theirs += our_anonymous.count(contents) == 0;
  CHECK(anonymous_only_ours == 0);
  CHECK(anonymous_only_theirs == 0);
  std::vector<std::string> differing_enums;
  for (const std::string& name : our_enums) {
    const auto found = isf.enums.find(name);
    if (found != isf.enums.end() && !(our_model.enums.at(name) == found->second)) differing_enums.push_back(name);
  }
  MESSAGE(our_enums.size() << " named enums, " << differing_enums.size() << " with other constants in dwarf2json's");

  // Every name whose layout differs is defined more than once, differently, in the DWARF (read
  // here with libdw directly): we kept the first definition and dwarf2json the last.
  std::set<std::string> wanted(differing.begin(), differing.end());
  wanted.insert(differing_enums.begin(), differing_enums.end());
  const DwarfDefinitions dwarf(debug_vmlinux, wanted);
  for (const std::string& name : differing) {
    CAPTURE(name);
    const auto found = dwarf.aggregates.find(name);
    REQUIRE(found != dwarf.aggregates.end());
    const auto& definitions = found->second;
    CHECK(defined_differently(definitions));
    const Aggregate* a = ours->find_aggregate(name);
    CHECK(a->size == definitions.front().size);
    CHECK((a->kind == TypeKind::union_) == (definitions.front().tag == DW_TAG_union_type));
    const test::IsfUserType& last = isf.user_types.at(name);
    CHECK(last.size == definitions.back().size);
    CHECK((last.kind == "union") == (definitions.back().tag == DW_TAG_union_type));
  }
  for (const std::string& name : differing_enums) {
    CAPTURE(name);
    const auto found = dwarf.enums.find(name);
    REQUIRE(found != dwarf.enums.end());
    const auto& definitions = found->second;
    CHECK(defined_differently(definitions));
    CHECK(our_model.enums.at(name).size == definitions.front().size);
    CHECK(our_model.enums.at(name).constants == definitions.front().constants);
    const auto& their_constants = isf.enums.at(name).constants;
    CHECK(std::any_of(definitions.begin(), definitions.end(),
                      [&](const DwarfDefinition& d) { return d.constants == their_constants; }));
  }

  // Symbols: the ELF symbol table as binutils' nm lists it (no file or section symbols, as we
  // read it), one symbol per name, each at an address nm gives that name. Where ours is not
  // dwarf2json's (which comes from the -dbg System.map), nm lists the name at several addresses
  // (static symbols of several files) and dwarf2json's is one of them.
  const auto listed = test::nm_symbols(debug_vmlinux);
  std::set<std::string> our_symbols;
  std::size_t not_listed = 0, wrong_address = 0, moved = 0, moved_but_unique = 0, theirs_unlisted = 0,
              theirs_missing = 0;
  for (const Symbol& s : ours->symbols) {
    const std::string name(ours->str(s.name));
    our_symbols.insert(name);
    const auto nm = listed.find(name);
    if (nm == listed.end()) {
      if (++not_listed <= 5) MESSAGE("not listed by nm: " << name);
      continue;
    }
    const auto& addresses = nm->second;
    if (std::find(addresses.begin(), addresses.end(), s.address) == addresses.end() && ++wrong_address <= 5)
      MESSAGE(name << " at " << hex(s.address) << ", which nm does not list for it");
    const auto t = isf.symbols.find(name);
    if (t == isf.symbols.end()) {
      if (++theirs_missing <= 5) MESSAGE("not in dwarf2json's ISF: " << name);
      continue;
    }
    if (s.address == t->second.address) continue;
    ++moved;
    if (std::set<std::uint64_t>(addresses.begin(), addresses.end()).size() < 2 && ++moved_but_unique <= 5) {
      MESSAGE(name << ": ours " << hex(s.address) << ", dwarf2json's " << hex(t->second.address)
                   << ", but nm lists the name at one address");
    }
    if (std::find(addresses.begin(), addresses.end(), t->second.address) == addresses.end() && ++theirs_unlisted <= 5)
      MESSAGE(name << ": dwarf2json's address " << hex(t->second.address) << " is not one nm lists");
  }
  MESSAGE(our_symbols.size() << " symbols, " << listed.size() << " names listed by nm, " << moved
                             << " at another address in dwarf2json's ISF (names that several files define)");
  CHECK(our_symbols.size() == ours->symbols.size());  // one symbol per name
  std::set<std::string> nm_names;
  for (const auto& entry : listed) nm_names.insert(entry.first);
  CHECK_MESSAGE(our_symbols == nm_names, "nm names we lack: ", test::names_missing(nm_names, our_symbols));
  CHECK(not_listed == 0);
  CHECK(wrong_address == 0);
  CHECK(theirs_missing == 0);
  CHECK(moved_but_unique == 0);
  CHECK(theirs_unlisted == 0);
}
