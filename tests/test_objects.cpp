// Typed object views and the bounded, cycle-safe list walker over in-memory fixtures.
#include <doctest/doctest.h>

#include <cstring>

#include "support.hpp"
#include "vmi/isf.hpp"
#include "vmi/object.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"

using namespace vmi;

namespace {

constexpr std::string_view kIsf = R"({
  "metadata": {"format": "6.2.0", "linux": {}},
  "base_types": {"int": {"kind": "int", "size": 4, "signed": true}, "char": {"kind": "char", "size": 1, "signed": true},
                 "unsigned int": {"kind": "int", "size": 4, "signed": false}, "pointer": {"kind": "int", "size": 8, "signed": false}},
  "user_types": {
    "list_head": {"kind": "struct", "size": 16, "fields": {
      "next": {"type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "list_head"}}, "offset": 0},
      "prev": {"type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "list_head"}}, "offset": 8}}},
    "item": {"kind": "struct", "size": 48, "fields": {
      "value": {"type": {"kind": "base", "name": "int"}, "offset": 0},
      "flags": {"type": {"kind": "bitfield", "bit_position": 4, "bit_length": 3, "type": {"kind": "base", "name": "int"}}, "offset": 4},
      "name": {"type": {"kind": "array", "count": 8, "subtype": {"kind": "base", "name": "char"}}, "offset": 8},
      "link": {"type": {"kind": "struct", "name": "list_head"}, "offset": 16},
      "self": {"type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "item"}}, "offset": 32}}}
  },
  "symbols": {}
})";

struct Fixture {
  std::vector<std::byte> bytes = std::vector<std::byte>(0x1000);
  void u64(Addr at, std::uint64_t v) { std::memcpy(bytes.data() + at, &v, 8); }
  void u32(Addr at, std::uint32_t v) { std::memcpy(bytes.data() + at, &v, 4); }
  void text(Addr at, const char* s) { std::memcpy(bytes.data() + at, s, std::strlen(s) + 1); }
};

std::vector<Addr> collect(const Layer& layer, Addr head, std::size_t cap, ListWalk& walk) {
  std::vector<Addr> nodes;
  walk = walk_list(layer, head, cap, [&](Addr node) {
    nodes.push_back(node);
    return true;
  });
  return nodes;
}

}  // namespace

TEST_CASE("object views read scalars, signed bitfields, strings, members and pointers by name") {
  auto profile = parse_isf(kIsf, "fixture");
  REQUIRE(profile.has_value());
  Fixture f;
  f.u32(0x100, static_cast<std::uint32_t>(-7));
  f.u32(0x104, 0b1010000);  // bits 4..6 = 0b101 -> signed 3-bit value -3
  f.text(0x108, "kthread");
  f.u64(0x120, 0x100);  // self
  MemoryLayer layer("fixture", f.bytes);
  auto item = ObjectView::make(layer, *profile, "item", 0x100);
  REQUIRE(item.has_value());
  CHECK(item->read_signed("value").value() == -7);
  CHECK(item->read_unsigned("flags").value() == 5);
  CHECK(item->read_signed("flags").value() == -3);
  CHECK(item->read_string("name").value() == "kthread");
  CHECK(item->member("link")->address() == 0x110);
  CHECK(item->member("link")->type_name() == "list_head");
  CHECK(item->dereference("self")->address() == 0x100);
  CHECK(item->read_unsigned("missing").error().message == "profile type 'item' has no field 'missing'");
  CHECK(bind_offset(*profile, "item", "link").value() == 16);
}

TEST_CASE("the list walker visits every node once and reports how the walk ended") {
  Fixture f;
  const Addr head = 0x10, a = 0x100, b = 0x200, c = 0x300;
  SUBCASE("complete circular list") {
    f.u64(head, a);
    f.u64(a, b);
    f.u64(b, c);
    f.u64(c, head);
    MemoryLayer layer("fixture", f.bytes);
    ListWalk walk;
    CHECK(collect(layer, head, 100, walk) == std::vector<Addr>{a, b, c});
    CHECK(walk.end == ListEnd::complete);
  }
  SUBCASE("a link back into the middle is a cycle, and what came before is kept") {
    f.u64(head, a);
    f.u64(a, b);
    f.u64(b, a);
    MemoryLayer layer("fixture", f.bytes);
    ListWalk walk;
    CHECK(collect(layer, head, 100, walk) == std::vector<Addr>{a, b});
    CHECK(walk.end == ListEnd::cycle);
    CHECK(walk.problem == "list at 0x10: link at 0x200 points back to 0x100, a cycle");
  }
  SUBCASE("a node linking to itself is a cycle") {
    f.u64(head, a);
    f.u64(a, a);
    MemoryLayer layer("fixture", f.bytes);
    ListWalk walk;
    CHECK(collect(layer, head, 100, walk) == std::vector<Addr>{a});
    CHECK(walk.end == ListEnd::cycle);
  }
  SUBCASE("a link into unmapped memory ends the walk with the bad address named") {
    f.u64(head, a);
    f.u64(a, 0xdead0000);
    MemoryLayer layer("fixture", f.bytes);
    ListWalk walk;
    CHECK(collect(layer, head, 100, walk) == std::vector<Addr>{a, 0xdead0000});
    CHECK(walk.end == ListEnd::unreadable);
    CHECK(walk.problem.starts_with("list at 0x10: link at 0xdead0000 is unreadable"));
  }
  SUBCASE("the cap stops a long list") {
    f.u64(head, a);
    f.u64(a, b);
    f.u64(b, c);
    f.u64(c, head);
    MemoryLayer layer("fixture", f.bytes);
    ListWalk walk;
    CHECK(collect(layer, head, 2, walk) == std::vector<Addr>{a, b});
    CHECK(walk.end == ListEnd::limit);
    CHECK(walk.problem == "list at 0x10 has more than 2 entries; stopped");
  }
}

TEST_CASE("a session over an in-memory layer with no kernel says so and names the layer") {
  std::vector<std::byte> zeros(4 << 20);
  auto layer = std::make_shared<MemoryLayer>("test buffer", zeros);
  SessionOptions options;
  options.profile_paths = {test::shipped_profile()};
  options.cache.enabled = false;
  Session session = Session::over_layer(layer, options);
  CHECK(session.image().format() == "layer");
  auto kernel = session.kernel();
  REQUIRE_FALSE(kernel.has_value());
  CHECK(kernel.error().code == Errc::not_found);
  CHECK(kernel.error().message ==
        "test buffer: no supported kernel found (linux: no Linux kernel found (no 'Linux version' banner in physical "
        "memory); windows: page-table root: no crash-dump header, no low stub (PROCESSOR_START_BLOCK) below 1 MiB and "
        "no self-referencing top-level table)");
  auto table = vmi::run_plugin(session, "pslist");
  REQUIRE_FALSE(table.has_value());
  CHECK(table.error().message == kernel.error().message);
  CHECK(vmi::run_plugin(session, "no-such-plugin").error().message == "no plugin named 'no-such-plugin'");
}
