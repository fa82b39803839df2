// DWARF import (libdw): a C fixture compiled by gcc here with DWARF 4 and 5, and Debian's debug
// vmlinux (linux-image-*-dbg, fetched by the sample script) against dwarf2json's ISF of it.
#include <doctest/doctest.h>

#include <map>
#include <set>

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
  const Profile* ours = &test::debug_vmlinux_profile(samples.front());
  auto theirs = load_isf_file(test::shipped_profile());
  REQUIRE(theirs.has_value());
  CHECK(ours->banner() == theirs->banner());
  CHECK(ours->producer() == "vmi-forensics dwarf");
  MESSAGE(ours->aggregates.size() << " user types, " << ours->symbols.size() << " symbols");

  // The same named user types; each with the same size and fields, except names that several
  // files define with different layouts (dwarf2json keeps the last definition, we the first).
  std::set<std::string> our_names, their_names;
  for (const Aggregate& a : ours->aggregates) {
    if (!ours->str(a.name).starts_with("unnamed_")) our_names.emplace(ours->str(a.name));
  }
  for (const Aggregate& a : theirs->aggregates) {
    if (!theirs->str(a.name).starts_with("unnamed_")) their_names.emplace(theirs->str(a.name));
  }
  CHECK(our_names == their_names);
  std::vector<std::string> differing;
  for (const std::string& name : our_names) {
    const Aggregate* a = ours->find_aggregate(name);
    const Aggregate* b = theirs->find_aggregate(name);
    if (a->size != b->size || named_fields(*ours, *a) != named_fields(*theirs, *b)) differing.push_back(name);
  }
  MESSAGE(our_names.size() << " named user types, " << differing.size() << " defined differently by several files");
  CHECK(our_names.size() == 8096);
  CHECK(differing == std::vector<std::string>{"controller", "d_partition", "disklabel", "dma_chan", "elf_note_info",
                                              "elf_thread_core_info", "getdents_callback", "intel_community_context",
                                              "intel_pad_context", "irq_info", "irte", "netlbl_domhsh_walk_arg",
                                              "pci_root_info", "perf_aux_event", "remap_data", "slot", "syscall_tp_t"});

  // Base types and enums: identical (anonymous enums compared by their values).
  CHECK(ours->base_types.size() == theirs->base_types.size());
  for (const BaseType& b : theirs->base_types) {
    const BaseType* a = ours->find_base_type(theirs->str(b.name));
    REQUIRE(a != nullptr);
    CHECK(a->size == b.size);
    CHECK(a->kind == b.kind);
    CHECK(a->is_signed == b.is_signed);
  }
  CHECK(ours->enums.size() == theirs->enums.size());

  // Symbols: every symbol-table entry at dwarf2json's address (it adds file names and
  // declarations without an address, which we leave out).
  std::size_t compared = 0, moved = 0;
  for (const Symbol& s : ours->symbols) {
    const Symbol* t = theirs->find_symbol(ours->str(s.name));
    REQUIRE(t != nullptr);
    ++compared;
    if (s.address != t->address) ++moved;
  }
  MESSAGE(compared << " symbols compared, " << moved << " at another address (names that several files define)");
  CHECK(compared == ours->symbols.size());
  CHECK(moved == 162);
}
