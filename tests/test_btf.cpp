// BTF reader: hand-built blobs (one commented word per field) and corrupted copies of them.
#include <doctest/doctest.h>

#include "support.hpp"

#include <cstring>
#include <string>
#include <vector>

#include "vmi/btf.hpp"

using namespace vmi;

namespace {

// BTF kinds and INT encodings from include/uapi/linux/btf.h.
enum : std::uint32_t {
  INT = 1,
  PTR,
  ARRAY,
  STRUCT,
  UNION,
  ENUM,
  FWD,
  TYPEDEF,
  VOLATILE,
  CONST,
  RESTRICT,
  FUNC,
  FUNC_PROTO,
  VAR,
  DATASEC,
  FLOAT,
  DECL_TAG,
  TYPE_TAG,
  ENUM64
};
constexpr std::uint32_t kSigned = 1;

std::uint32_t info(std::uint32_t kind, std::uint32_t vlen = 0, bool kflag = false) {
  return (kflag ? 0x80000000u : 0u) | kind << 24 | vlen;
}
std::uint32_t int_bits(std::uint32_t encoding, std::uint32_t offset, std::uint32_t bits) {
  return encoding << 24 | offset << 16 | bits;
}

// Assembles a blob: 24-byte header, the type words, then the string section.
struct BtfBlob {
  std::vector<std::uint32_t> words;
  std::string strings = std::string(1, '\0');  // offset 0 is the empty name

  std::uint32_t str(std::string_view text) {
    const auto offset = static_cast<std::uint32_t>(strings.size());
    strings.append(text);
    strings.push_back('\0');
    return offset;
  }
  BtfBlob& w(std::uint32_t word) {
    words.push_back(word);
    return *this;
  }
  std::vector<std::byte> bytes() const {
    std::vector<std::uint32_t> header = {
        0x0001eb9f,                                    // magic 0xeb9f, version 1, flags 0
        24,                                            // hdr_len
        0,                                             // type_off (from the end of the header)
        static_cast<std::uint32_t>(words.size() * 4),  // type_len
        static_cast<std::uint32_t>(words.size() * 4),  // str_off
        static_cast<std::uint32_t>(strings.size()),    // str_len
    };
    std::vector<std::byte> out(24 + words.size() * 4 + strings.size());
    std::memcpy(out.data(), header.data(), 24);
    std::memcpy(out.data() + 24, words.data(), words.size() * 4);
    std::memcpy(out.data() + 24 + words.size() * 4, strings.data(), strings.size());
    return out;
  }
};

// The main fixture: a task-like struct exercising every kind the converter resolves.
BtfBlob kernel_like() {
  BtfBlob b;
  // #1 int
  b.w(b.str("int")).w(info(INT)).w(4).w(int_bits(kSigned, 0, 32));
  // #2 unsigned int
  b.w(b.str("unsigned int")).w(info(INT)).w(4).w(int_bits(0, 0, 32));
  // #3 char
  b.w(b.str("char")).w(info(INT)).w(1).w(int_bits(kSigned, 0, 8));
  // #4 typedef int __kernel_pid_t
  b.w(b.str("__kernel_pid_t")).w(info(TYPEDEF)).w(1);
  // #5 typedef __kernel_pid_t pid_t
  b.w(b.str("pid_t")).w(info(TYPEDEF)).w(4);
  // #6 const pid_t
  b.w(0).w(info(CONST)).w(5);
  // #7 void *
  b.w(0).w(info(PTR)).w(0);
  // #8 int (*)(void *): FUNC_PROTO returning #1, one parameter
  b.w(0).w(info(FUNC_PROTO, 1)).w(1);
  b.w(0).w(7);  //   param: name "", type #7
  // #9 pointer to #8
  b.w(0).w(info(PTR)).w(8);
  // #10 char[16]
  b.w(0).w(info(ARRAY)).w(0);
  b.w(3).w(2).w(16);  //   elem #3, index #2, nelems 16
  // #11 enum state (kflag: signed), 4 bytes
  b.w(b.str("state")).w(info(ENUM, 2, true)).w(4);
  b.w(b.str("RUNNING")).w(0);
  b.w(b.str("DEAD")).w(0xffffffffu);  //   -1
  // #12 anonymous union, 8 bytes
  b.w(0).w(info(UNION, 2)).w(8);
  b.w(b.str("a")).w(1).w(0);  //   int a at bit 0
  b.w(b.str("p")).w(7).w(0);  //   void *p at bit 0
  // #13 struct task (kflag: member offsets carry bitfield sizes), 56 bytes, 8 members
  b.w(b.str("task")).w(info(STRUCT, 8, true)).w(56);
  b.w(b.str("pid")).w(6).w(0);                // const pid_t pid at bit 0
  b.w(b.str("flags")).w(2).w(3u << 24 | 32);  // unsigned flags:3 at bit 32
  b.w(b.str("mode")).w(2).w(5u << 24 | 35);   // unsigned mode:5 at bit 35
  b.w(0).w(12).w(64);                         // anonymous union at bit 64
  b.w(b.str("comm")).w(10).w(128);            // char comm[16] at bit 128
  b.w(b.str("fn")).w(9).w(256);               // int (*fn)(void *) at bit 256
  b.w(b.str("st")).w(11).w(320);              // enum state st at bit 320
  b.w(b.str("next")).w(14).w(384);            // struct task *next at bit 384
  // #14 struct task *
  b.w(0).w(info(PTR)).w(13);
  // #15 typedef <anonymous struct #16> kuid_t
  b.w(b.str("kuid_t")).w(info(TYPEDEF)).w(16);
  // #16 anonymous struct { unsigned int val; } (no kflag), 4 bytes
  b.w(0).w(info(STRUCT, 1)).w(4);
  b.w(b.str("val")).w(2).w(0);
  // #17 struct opaque; (forward declaration)
  b.w(b.str("opaque")).w(info(FWD)).w(0);
  // #18 struct legacy (no kflag: bitfields live in INT #19), 4 bytes
  b.w(b.str("legacy")).w(info(STRUCT, 3)).w(4);
  b.w(b.str("lo")).w(19).w(0);  // lo:3 at bit 0
  b.w(b.str("hi")).w(19).w(3);  // hi:3 at bit 3
  b.w(b.str("o")).w(20).w(0);   // struct opaque *o at bit 0 (a union-like overlap is fine)
  // #19 unsigned int, 3 bits: a pre-kflag bitfield integer
  b.w(b.str("unsigned int")).w(info(INT)).w(4).w(int_bits(0, 0, 3));
  // #20 struct opaque *
  b.w(0).w(info(PTR)).w(17);
  // #21 long int
  b.w(b.str("long int")).w(info(INT)).w(8).w(int_bits(kSigned, 0, 64));
  // #22 enum64 big (unsigned), 8 bytes
  b.w(b.str("big")).w(info(ENUM64, 1)).w(8);
  b.w(b.str("HIGH")).w(0).w(0xffffffffu);  //   0xffffffff00000000: negative as int64
  // #23 var my_task: struct task, global
  b.w(b.str("my_task")).w(info(VAR)).w(13);
  b.w(1);  //   linkage: global
  // #24 datasec .data..percpu, one variable
  b.w(b.str(".data..percpu")).w(info(DATASEC, 1)).w(56);
  b.w(23).w(0x100).w(56);  //   #23 at offset 0x100, 56 bytes
  // #25 double
  b.w(b.str("double")).w(info(FLOAT)).w(8);
  // #26 decl tag on struct task, whole type
  b.w(b.str("tag")).w(info(DECL_TAG)).w(13);
  b.w(0xffffffffu);  //   component_idx -1
  // #27 type tag "user" on int, #28 volatile, #29 restrict
  b.w(b.str("user")).w(info(TYPE_TAG)).w(1);
  b.w(0).w(info(VOLATILE)).w(27);
  b.w(0).w(info(RESTRICT)).w(7);
  // #30 func do_thing of proto #8; #31 struct holder { volatile int v; void *restrict r; }
  b.w(b.str("do_thing")).w(info(FUNC)).w(8);
  b.w(b.str("holder")).w(info(STRUCT, 2)).w(16);
  b.w(b.str("v")).w(28).w(0);
  b.w(b.str("r")).w(29).w(64);
  return b;
}

Profile build(const BtfBlob& blob, BtfSummary* summary = nullptr) {
  ProfileBuilder builder;
  auto added = add_btf_types(blob.bytes(), builder, "fixture.btf");
  REQUIRE_MESSAGE(added.has_value(), test::error_text(added));
  if (summary != nullptr) *summary = *added;
  auto profile = std::move(builder).build();
  REQUIRE_MESSAGE(profile.has_value(), test::error_text(profile));
  return std::move(*profile);
}

const Member& member(const Profile& p, std::string_view type, std::string_view name) {
  const Aggregate* aggregate = p.find_aggregate(type);
  REQUIRE(aggregate != nullptr);
  for (const Member& m : p.members(*aggregate)) {
    if (p.str(m.name) == name) return m;
  }
  FAIL("no member " << name << " in " << type);
  static const Member none;
  return none;
}

Error error_of(const std::vector<std::byte>& bytes) {
  ProfileBuilder builder;
  auto added = add_btf_types(bytes, builder, "bad.btf");
  REQUIRE_FALSE(added.has_value());
  return added.error();
}

void put32(std::vector<std::byte>& bytes, std::size_t at, std::uint32_t value) { std::memcpy(&bytes[at], &value, 4); }

}  // namespace

TEST_CASE("BTF struct members resolve like dwarf2json: typedefs away, bitfields, anonymous union") {
  BtfSummary summary;
  const Profile p = build(kernel_like(), &summary);
  CHECK(summary.btf_types == 31);

  const Aggregate* task = p.find_aggregate("task");
  REQUIRE(task != nullptr);
  CHECK(task->size == 56);
  CHECK(task->kind == TypeKind::struct_);
  CHECK(task->member_count == 8);

  const Member& pid = member(p, "task", "pid");  // const pid_t -> __kernel_pid_t -> int
  CHECK(pid.offset == 0);
  CHECK(p.type(pid.type).kind == TypeKind::base);
  CHECK(p.str(p.type(pid.type).name) == "int");

  const Member& flags = member(p, "task", "flags");
  CHECK(flags.offset == 4);
  CHECK(p.type(flags.type).kind == TypeKind::bitfield);
  CHECK(p.type(flags.type).bit_position == 0);
  CHECK(p.type(flags.type).bit_length == 3);
  CHECK(p.str(p.type(p.type(flags.type).subtype).name) == "unsigned int");
  const Member& mode = member(p, "task", "mode");  // bit 35: byte 4, bit 3
  CHECK(mode.offset == 4);
  CHECK(p.type(mode.type).bit_position == 3);
  CHECK(p.type(mode.type).bit_length == 5);

  const Member& anon = member(p, "task", "unnamed_field_0");
  CHECK(anon.anonymous == 1);
  CHECK(anon.offset == 8);
  CHECK(p.type(anon.type).kind == TypeKind::union_);
  const std::string union_name(p.str(p.type(anon.type).name));
  CHECK(union_name.size() == std::string("unnamed_").size() + 16);
  CHECK(union_name.rfind("unnamed_", 0) == 0);
  const Aggregate* inner = p.find_aggregate(union_name);
  REQUIRE(inner != nullptr);
  CHECK(inner->kind == TypeKind::union_);
  CHECK(inner->size == 8);
  auto a = p.find_field(*task, "a");  // flattened through the anonymous member
  REQUIRE(a.has_value());
  CHECK(a->offset == 8);
  CHECK(p.str(p.type(a->type).name) == "int");
  auto inner_p = p.field("task", "p");
  REQUIRE(inner_p.has_value());
  CHECK(inner_p->offset == 8);
  CHECK(p.type(inner_p->type).kind == TypeKind::pointer);
  CHECK(p.str(p.type(p.type(inner_p->type).subtype).name) == "void");

  const Member& comm = member(p, "task", "comm");
  CHECK(comm.offset == 16);
  CHECK(p.type(comm.type).kind == TypeKind::array);
  CHECK(p.type(comm.type).count == 16);
  CHECK(p.str(p.type(p.type(comm.type).subtype).name) == "char");
  CHECK(p.size_of(comm.type) == 16);

  const Member& fn = member(p, "task", "fn");
  CHECK(fn.offset == 32);
  CHECK(p.type(fn.type).kind == TypeKind::pointer);
  CHECK(p.type(p.type(fn.type).subtype).kind == TypeKind::function);

  const Member& st = member(p, "task", "st");
  CHECK(st.offset == 40);
  CHECK(p.type(st.type).kind == TypeKind::enum_);
  CHECK(p.str(p.type(st.type).name) == "state");

  const Member& next = member(p, "task", "next");
  CHECK(next.offset == 48);
  CHECK(p.type(next.type).kind == TypeKind::pointer);
  CHECK(p.aggregate_of(p.type(next.type).subtype) == task);
}

TEST_CASE("BTF typedef of a struct becomes a user type under the typedef's name") {
  const Profile p = build(kernel_like());
  const Aggregate* kuid = p.find_aggregate("kuid_t");
  REQUIRE(kuid != nullptr);
  CHECK(kuid->size == 4);
  CHECK(member(p, "kuid_t", "val").offset == 0);
  CHECK(p.str(p.type(member(p, "kuid_t", "val").type).name) == "unsigned int");
  // The anonymous struct itself is there too, under its generated name (as dwarf2json has it).
  std::size_t unnamed = 0;
  for (const Aggregate& aggregate : p.aggregates) unnamed += p.str(aggregate.name).rfind("unnamed_", 0) == 0;
  CHECK(unnamed == 2);
  CHECK(p.find_aggregate("opaque") == nullptr);  // a forward declaration adds no user type
  const Member& o = member(p, "legacy", "o");
  CHECK(p.type(p.type(o.type).subtype).kind == TypeKind::struct_);
  CHECK(p.str(p.type(p.type(o.type).subtype).name) == "opaque");
}

TEST_CASE("BTF pre-kflag bitfields take their bits from the INT type") {
  const Profile p = build(kernel_like());
  const Member& lo = member(p, "legacy", "lo");
  const Member& hi = member(p, "legacy", "hi");
  CHECK(lo.offset == 0);
  CHECK(p.type(lo.type).kind == TypeKind::bitfield);
  CHECK(p.type(lo.type).bit_position == 0);
  CHECK(p.type(lo.type).bit_length == 3);
  CHECK(hi.offset == 0);
  CHECK(p.type(hi.type).bit_position == 3);
  CHECK(p.type(hi.type).bit_length == 3);
  CHECK(p.str(p.type(p.type(hi.type).subtype).name) == "unsigned int");
}

TEST_CASE("BTF modifiers and type tags resolve to the tagged type") {
  const Profile p = build(kernel_like());
  const Member& v = member(p, "holder", "v");  // volatile -> type tag -> int
  CHECK(p.type(v.type).kind == TypeKind::base);
  CHECK(p.str(p.type(v.type).name) == "int");
  const Member& r = member(p, "holder", "r");  // restrict -> void *
  CHECK(r.offset == 8);
  CHECK(p.type(r.type).kind == TypeKind::pointer);
}

TEST_CASE("BTF enums, enum64 and base types") {
  BtfSummary summary;
  const Profile p = build(kernel_like(), &summary);
  const EnumType* state = p.find_enum("state");
  REQUIRE(state != nullptr);
  CHECK(state->size == 4);
  CHECK(p.str(state->base) == "int");  // it has a negative value
  auto values = p.enumerators(*state);
  REQUIRE(values.size() == 2);
  CHECK(p.str(values[0].name) == "RUNNING");
  CHECK(values[0].value == 0);
  CHECK(p.str(values[1].name) == "DEAD");
  CHECK(values[1].value == -1);

  const EnumType* big = p.find_enum("big");
  REQUIRE(big != nullptr);
  CHECK(big->size == 8);
  CHECK(p.str(big->base) == "long int");
  REQUIRE(p.enumerators(*big).size() == 1);
  CHECK(p.enumerators(*big)[0].value == static_cast<std::int64_t>(0xffffffff00000000ull));

  CHECK(summary.base_types == 7);  // void, pointer, int, unsigned int, char, long int, double
  const BaseType* character = p.find_base_type("char");
  REQUIRE(character != nullptr);
  CHECK(character->kind == BaseKind::character);
  CHECK(character->is_signed == 1);
  const BaseType* uint = p.find_base_type("unsigned int");
  REQUIRE(uint != nullptr);
  CHECK(uint->size == 4);  // the 3-bit INT of the same name does not add a second one
  CHECK(uint->is_signed == 0);
  const BaseType* dbl = p.find_base_type("double");
  REQUIRE(dbl != nullptr);
  CHECK(dbl->kind == BaseKind::floating);
  CHECK(dbl->size == 8);
  const BaseType* pointer = p.find_base_type("pointer");
  REQUIRE(pointer != nullptr);
  CHECK(pointer->size == 8);
  CHECK(p.find_base_type("void")->size == 0);
}

TEST_CASE("BTF DATASEC variables carry section, offset and type") {
  BtfSummary summary;
  const Profile p = build(kernel_like(), &summary);
  REQUIRE(summary.variables.size() == 1);
  CHECK(summary.variables[0].name == "my_task");
  CHECK(summary.variables[0].section == ".data..percpu");
  CHECK(summary.variables[0].offset == 0x100);
  CHECK(p.aggregate_of(summary.variables[0].type) == p.find_aggregate("task"));
}

TEST_CASE("BTF anonymous names hash the layout, not the type id") {
  // Two blobs whose one anonymous union has a different id but the same content.
  BtfBlob one, two;
  for (BtfBlob* b : {&one, &two}) {
    if (b == &two) b->w(b->str("pad")).w(info(INT)).w(2).w(int_bits(0, 0, 16));  // shifts ids by one
    const std::uint32_t base = b == &two ? 1 : 0;
    b->w(b->str("int")).w(info(INT)).w(4).w(int_bits(kSigned, 0, 32));
    b->w(0).w(info(UNION, 1)).w(4);
    b->w(b->str("x")).w(base + 1).w(0);
    b->w(b->str("outer")).w(info(STRUCT, 1)).w(4);
    b->w(0).w(base + 2).w(0);
  }
  const Profile p1 = build(one), p2 = build(two);
  const auto name1 = p1.type(member(p1, "outer", "unnamed_field_0").type).name;
  const auto name2 = p2.type(member(p2, "outer", "unnamed_field_0").type).name;
  CHECK(p1.str(name1) == p2.str(name2));
  CHECK(p1.str(name1).rfind("unnamed_", 0) == 0);
}

TEST_CASE("BTF duplicate names keep the first full definition and are reported") {
  BtfBlob b;
  b.w(b.str("int")).w(info(INT)).w(4).w(int_bits(kSigned, 0, 32));  // #1
  b.w(b.str("dup")).w(info(FWD)).w(0);                              // #2 declaration first
  b.w(b.str("dup")).w(info(STRUCT, 1)).w(4);                        // #3 first definition
  b.w(b.str("a")).w(1).w(0);
  b.w(b.str("dup")).w(info(STRUCT, 1)).w(8);  // #4 another layout
  b.w(b.str("b")).w(1).w(32);
  b.w(b.str("same")).w(info(STRUCT, 1)).w(4);  // #5 and an identical twin
  b.w(b.str("a")).w(1).w(0);
  b.w(b.str("same")).w(info(STRUCT, 1)).w(4);  // #6
  b.w(b.str("a")).w(1).w(0);
  BtfSummary summary;
  const Profile p = build(b, &summary);
  const Aggregate* dup = p.find_aggregate("dup");
  REQUIRE(dup != nullptr);
  CHECK(dup->size == 4);
  CHECK(member(p, "dup", "a").offset == 0);
  CHECK(summary.duplicates == std::vector<std::string>{"dup"});
  CHECK(summary.aggregates == 2);
}

TEST_CASE("BTF malformed blobs are errors naming origin and byte offset") {
  const std::vector<std::byte> good = kernel_like().bytes();

  SUBCASE("bad magic") {
    auto bytes = good;
    bytes[0] = std::byte{0x34};
    bytes[1] = std::byte{0x12};
    const Error e = error_of(bytes);
    CHECK(e.code == Errc::bad_format);
    CHECK(e.message == "bad.btf: BTF magic 0x1234 is not 0xeb9f at byte 0x0");
  }
  SUBCASE("big-endian blob") {
    auto bytes = good;
    std::swap(bytes[0], bytes[1]);
    CHECK(error_of(bytes).code == Errc::unsupported);
  }
  SUBCASE("truncated header") {
    const std::vector<std::byte> bytes(good.begin(), good.begin() + 10);
    const Error e = error_of(bytes);
    CHECK(e.code == Errc::truncated);
    CHECK(e.message == "bad.btf: BTF header (24 bytes) runs past end of blob (10 bytes) at byte 0x0");
  }
  SUBCASE("type section past end") {
    auto bytes = good;
    put32(bytes, 12, static_cast<std::uint32_t>(good.size()));  // type_len
    const Error e = error_of(bytes);
    CHECK(e.code == Errc::truncated);
    CHECK(e.message.find("bad.btf: BTF type section [0x18, ") == 0);
    CHECK(e.message.find("runs past end of blob (0x") != std::string::npos);
    CHECK(e.message.find("at byte 0x8") != std::string::npos);
  }
  SUBCASE("string offset past end") {
    auto bytes = good;
    put32(bytes, 24, 0x7fff);  // name_off of type #1
    const Error e = error_of(bytes);
    CHECK(e.code == Errc::truncated);
    CHECK(e.message.find("bad.btf: BTF name offset 0x7fff past end of string section") == 0);
    CHECK(e.message.find("at byte 0x18") != std::string::npos);
  }
  SUBCASE("absurd vlen") {
    BtfBlob b;
    b.w(b.str("huge")).w(info(STRUCT, 0xffff)).w(8);  // claims 65535 members, has one
    b.w(b.str("a")).w(0).w(0);
    const Error e = error_of(b.bytes());
    CHECK(e.code == Errc::truncated);
    CHECK(e.message == "bad.btf: BTF type #1 (STRUCT, vlen 65535) runs past end of type section (0x30) at byte 0x18");
  }
  SUBCASE("reference to a missing type") {
    BtfBlob b;
    b.w(0).w(info(PTR)).w(999);
    const Error e = error_of(b.bytes());
    CHECK(e.code == Errc::bad_format);
    CHECK(e.message == "bad.btf: BTF type #1 refers to type #999 of 1 at byte 0x18");
  }
  SUBCASE("unknown kind") {
    BtfBlob b;
    b.w(0).w(25u << 24).w(0);
    CHECK(error_of(b.bytes()).message == "bad.btf: BTF type #1 has invalid info word 0x19000000 at byte 0x18");
  }
  SUBCASE("string section without final NUL") {
    auto bytes = good;
    bytes.back() = std::byte{'x'};
    CHECK(error_of(bytes).code == Errc::bad_format);
  }
  SUBCASE("typedef cycle") {
    BtfBlob b;
    b.w(b.str("a_t")).w(info(TYPEDEF)).w(2);  // #1 -> #2
    b.w(b.str("b_t")).w(info(TYPEDEF)).w(1);  // #2 -> #1
    b.w(b.str("s")).w(info(STRUCT, 1)).w(4);  // #3 uses #1
    b.w(b.str("m")).w(1).w(0);
    const Error e = error_of(b.bytes());
    CHECK(e.code == Errc::bad_format);
    CHECK(e.message.find("refers to itself") != std::string::npos);
  }
  SUBCASE("anonymous struct containing itself") {
    BtfBlob b;
    b.w(0).w(info(STRUCT, 1)).w(4);  // #1 { #1 x; }
    b.w(b.str("x")).w(1).w(0);
    const Error e = error_of(b.bytes());
    CHECK(e.code == Errc::bad_format);
    CHECK(e.message.find("bad.btf: BTF type #1 (STRUCT)") == 0);
  }
  SUBCASE("pointer chain deeper than the cap") {
    BtfBlob b;
    b.w(b.str("int")).w(info(INT)).w(4).w(int_bits(kSigned, 0, 32));
    for (std::uint32_t id = 2; id < 2 + kMaxBtfTypeDepth + 4; ++id) b.w(0).w(info(PTR)).w(id - 1);
    b.w(b.str("s")).w(info(STRUCT, 1)).w(8);
    b.w(b.str("p")).w(kMaxBtfTypeDepth + 5).w(0);
    CHECK(error_of(b.bytes()).code == Errc::limit_exceeded);
  }
  SUBCASE("member that is not byte-aligned") {
    BtfBlob b;
    b.w(b.str("int")).w(info(INT)).w(4).w(int_bits(kSigned, 0, 32));
    b.w(b.str("s")).w(info(STRUCT, 1, true)).w(8);
    b.w(b.str("m")).w(1).w(3);  // bit 3, bitfield size 0
    CHECK(error_of(b.bytes()).message.find("is not byte-aligned (bit 3)") != std::string::npos);
  }
}

TEST_CASE("BTF typedef copies cannot blow a small blob up past the member cap") {
  BtfBlob b;
  b.w(b.str("int")).w(info(INT)).w(4).w(int_bits(kSigned, 0, 32));  // #1
  b.w(b.str("huge")).w(info(STRUCT, 0xffff)).w(4);                  // #2: 65535 members
  for (std::uint32_t i = 0; i < 0xffff; ++i) b.w(b.str("m" + std::to_string(i))).w(1).w(0);
  const std::uint32_t copies = kMaxBtfMembers / 0xffff + 1;  // one typedef too many
  for (std::uint32_t i = 0; i < copies; ++i) b.w(b.str("huge_" + std::to_string(i))).w(info(TYPEDEF)).w(2);
  ProfileBuilder builder;
  auto added = add_btf_types(b.bytes(), builder, "amplify.btf");
  REQUIRE_FALSE(added.has_value());
  CHECK(added.error().code == Errc::limit_exceeded);
  CHECK(added.error().message.find("amplify.btf: BTF type #2 (STRUCT) as 'huge_") == 0);
}

TEST_CASE("BTF every truncation and every single-byte corruption is handled without crashing") {
  const std::vector<std::byte> good = kernel_like().bytes();
  for (std::size_t size = 0; size < good.size(); ++size) {
    ProfileBuilder builder;
    auto added = add_btf_types(std::span(good).first(size), builder, "cut.btf");
    REQUIRE_FALSE(added.has_value());  // the header's section sizes no longer fit
    CHECK(added.error().message.rfind("cut.btf: BTF ", 0) == 0);
  }
  std::size_t rejected = 0;
  for (std::size_t at = 0; at < good.size(); ++at) {
    for (std::uint8_t value : {std::uint8_t{0x00}, std::uint8_t{0xff}, std::uint8_t{0x80}}) {
      auto bytes = good;
      bytes[at] = std::byte{value};
      ProfileBuilder builder;
      auto added = add_btf_types(bytes, builder, "flip.btf");
      if (!added) {
        ++rejected;
        CHECK(added.error().message.rfind("flip.btf: BTF ", 0) == 0);
      } else {
        CHECK(std::move(builder).build().has_value());  // accepted blobs still make a valid profile
      }
    }
  }
  CHECK(rejected > 0);
}
