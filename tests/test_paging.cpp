// x86-64 paging: 4- and 5-level walks, 4 KiB / 2 MiB / 1 GiB pages, holes and non-canonical
// addresses, over page tables laid out by hand in an in-memory physical layer.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>

#include "vmi/paging.hpp"

using namespace vmi;

namespace {

constexpr std::uint64_t kPresentWritable = 0x3;
constexpr std::uint64_t kLarge = 0x80;

struct Memory {
  std::vector<std::byte> bytes = std::vector<std::byte>(16 << 20);  // 16 MiB of "physical memory"
  void set_entry(Addr table, unsigned index, std::uint64_t value) {
    std::memcpy(bytes.data() + table + index * 8, &value, 8);
  }
  void set_u64(Addr at, std::uint64_t value) { std::memcpy(bytes.data() + at, &value, 8); }
};

unsigned index_at(Addr va, int level) { return static_cast<unsigned>((va >> (12 + 9 * (level - 1))) & 0x1ff); }

}  // namespace

TEST_CASE("4-level paging translates 4 KiB, 2 MiB and 1 GiB pages") {
  Memory m;
  const Addr root = 0x1000, pdpt = 0x2000, pd = 0x3000, pt = 0x4000;
  const Addr va_small = 0xffffffff81234000;  // 4 KiB page -> 0x10000
  const Addr va_large = 0xffffffff81400000;  // 2 MiB page -> 0x600000
  const Addr va_huge = 0xffff888000000000;   // 1 GiB page -> 0x0
  m.set_entry(root, index_at(va_small, 4), pdpt | kPresentWritable);
  m.set_entry(pdpt, index_at(va_small, 3), pd | kPresentWritable);
  m.set_entry(pd, index_at(va_small, 2), pt | kPresentWritable);
  m.set_entry(pt, index_at(va_small, 1), 0x10000 | kPresentWritable | (1ull << 63));  // NX bit is not address
  m.set_entry(pd, index_at(va_large, 2), 0x600000 | kPresentWritable | kLarge);
  const Addr pdpt_direct = 0x5000;
  m.set_entry(root, index_at(va_huge, 4), pdpt_direct | kPresentWritable);
  m.set_entry(pdpt_direct, index_at(va_huge, 3), 0x0 | kPresentWritable | kLarge);
  m.set_u64(0x10000 + 0x18, 0x1122334455667788);
  m.set_u64(0x600000 + 0x12340, 0xaabbccddeeff0011);

  auto physical = std::make_shared<MemoryLayer>("fixture", m.bytes);
  PagedLayer layer(physical, root, kX86_64FourLevel);
  CHECK(layer.translate(va_small + 0x18)->physical == 0x10018);
  CHECK(layer.translate(va_small + 0x18)->page_size == 4096);
  CHECK(layer.translate(va_large + 0x12340)->physical == 0x612340);
  CHECK(layer.translate(va_large + 0x12340)->page_size == (2u << 20));
  CHECK(layer.translate(va_huge + 0xabc123)->physical == 0xabc123);
  CHECK(layer.translate(va_huge + 0xabc123)->page_size == (1u << 30));
  CHECK(read_value<std::uint64_t>(layer, va_small + 0x18).value() == 0x1122334455667788);
  CHECK(read_value<std::uint64_t>(layer, va_large + 0x12340).value() == 0xaabbccddeeff0011);
  // Second read of the same page comes from the translation cache and must agree.
  CHECK(read_value<std::uint64_t>(layer, va_small + 0x18).value() == 0x1122334455667788);

  auto hole = layer.translate(va_small + 0x1000);
  REQUIRE_FALSE(hole.has_value());
  CHECK(hole.error().message == "x86-64 4-level (root 0x1000): 0xffffffff81235000 is not mapped (level 1)");
  auto non_canonical = layer.translate(0x0000900000000000);
  REQUIRE_FALSE(non_canonical.has_value());
  CHECK(non_canonical.error().message == "x86-64 4-level (root 0x1000): 0x900000000000 is not a canonical address");

  auto ranges = layer.ranges();
  REQUIRE(ranges.size() == 3);
  CHECK(ranges[0] == Range{va_huge, va_huge + (1ull << 30)});
  CHECK(ranges[1] == Range{va_small, va_small + 4096});
  CHECK(ranges[2] == Range{va_large, va_large + (2ull << 20)});
}

TEST_CASE("a read across a page boundary stops short at an unmapped page") {
  Memory m;
  const Addr root = 0x1000, pdpt = 0x2000, pd = 0x3000, pt = 0x4000;
  const Addr va = 0xffffc90000000000;
  m.set_entry(root, index_at(va, 4), pdpt | kPresentWritable);
  m.set_entry(pdpt, index_at(va, 3), pd | kPresentWritable);
  m.set_entry(pd, index_at(va, 2), pt | kPresentWritable);
  m.set_entry(pt, index_at(va, 1), 0x20000 | kPresentWritable);
  auto physical = std::make_shared<MemoryLayer>("fixture", m.bytes);
  PagedLayer layer(physical, root, kX86_64FourLevel);
  std::byte buffer[64];
  CHECK(layer.read(va + 4096 - 16, buffer).value() == 16);
  CHECK_FALSE(read_exact(layer, va + 4096 - 16, buffer).has_value());
}

TEST_CASE("5-level paging walks one more table and accepts 57-bit canonical addresses") {
  Memory m;
  const Addr root = 0x1000, p4d = 0x2000, pdpt = 0x3000, pd = 0x4000, pt = 0x5000;
  const Addr va = 0xff11000000001000;  // canonical only with LA57
  m.set_entry(root, index_at(va, 5), p4d | kPresentWritable);
  m.set_entry(p4d, index_at(va, 4), pdpt | kPresentWritable);
  m.set_entry(pdpt, index_at(va, 3), pd | kPresentWritable);
  m.set_entry(pd, index_at(va, 2), pt | kPresentWritable);
  m.set_entry(pt, index_at(va, 1), 0x30000 | kPresentWritable);
  m.set_u64(0x30008, 42);
  auto physical = std::make_shared<MemoryLayer>("fixture", m.bytes);
  PagedLayer five(physical, root, kX86_64FiveLevel);
  CHECK(read_value<std::uint64_t>(five, va + 8).value() == 42);
  PagedLayer four(physical, root, kX86_64FourLevel);
  CHECK(four.translate(va).error().message.ends_with("is not a canonical address"));
}

TEST_CASE("a page-table entry pointing outside the image is an error naming the entry") {
  Memory m;
  const Addr root = 0x1000;
  const Addr va = 0xffffffff81000000;
  m.set_entry(root, index_at(va, 4), 0x7fff0000000 | kPresentWritable);  // far past 16 MiB
  auto physical = std::make_shared<MemoryLayer>("fixture", m.bytes);
  PagedLayer layer(physical, root, kX86_64FourLevel);
  auto result = layer.translate(va);
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().message ==
        "x86-64 4-level (root 0x1000): level-3 table entry for 0xffffffff81000000 at physical 0x7fff0000ff0 is outside "
        "the image");
}

// Windows x64 software PTEs, laid out as ntoskrnl's _MMPTE_TRANSITION, _MMPTE_PROTOTYPE and
// _MMPTE_SOFTWARE describe them (Valid bit 0 clear; Prototype bit 10; Transition bit 11; the
// frame in bits 12..47; ProtoAddress in bits 16..63; Windows 7's PageFileLow in bits 1..4 and
// PageFileHigh in bits 32..63). Synthetic: no Windows guest is booted here.
TEST_CASE("Windows paging reads pages in transition and through prototype PTEs; pagefile pages are unavailable") {
  Memory m;
  const Addr root = 0x1000, pdpt = 0x2000, pd = 0x3000, pt = 0x4000;
  const Addr base = 0x00007ff6'12340000;  // a user-space run of PTEs, one table
  m.set_entry(root, index_at(base, 4), pdpt | kPresentWritable);
  m.set_entry(pdpt, index_at(base, 3), pd | kPresentWritable);
  m.set_entry(pd, index_at(base, 2), pt | kPresentWritable);
  const auto page = [&](unsigned n) { return base + n * 0x1000; };
  const auto set_pte = [&](unsigned n, std::uint64_t value) { m.set_entry(pt, index_at(page(n), 1), value); };
  // Kernel paged pool holding prototype PTEs: its own page mapped by a present PTE.
  const Addr pool = 0xffffa000'00001000;
  const Addr kpdpt = 0x5000, kpd = 0x6000, kpt = 0x7000, pool_frame = 0x8000;
  m.set_entry(root, index_at(pool, 4), kpdpt | kPresentWritable);
  m.set_entry(kpdpt, index_at(pool, 3), kpd | kPresentWritable);
  m.set_entry(kpd, index_at(pool, 2), kpt | kPresentWritable);
  m.set_entry(kpt, index_at(pool, 1), pool_frame | kPresentWritable);
  const auto prototype_pte = [](Addr prototype) { return ((prototype & 0xffff'ffff'ffffull) << 16) | (1u << 10); };

  set_pte(0, 0x20000 | kPresentWritable);                    // hardware PTE
  set_pte(1, 0x21000 | (1u << 11) | (4u << 5));              // transition, protection 4 (read-write)
  m.set_u64(pool_frame + 0x10, 0x22000 | kPresentWritable);  // prototype PTE: valid
  set_pte(2, prototype_pte(pool + 0x10));
  m.set_u64(pool_frame + 0x18, 0x23000 | (1u << 11));  // prototype PTE: in transition
  set_pte(3, prototype_pte(pool + 0x18));
  set_pte(4, (std::uint64_t{0x1234} << 32) | (1u << 1) | (4u << 5));  // Windows 7: pagefile 1, page 0x1234
  set_pte(5, (std::uint64_t{0x99} << 32) | (4u << 5));                // Windows 7: pagefile 0, page 0x99
  set_pte(6, prototype_pte(0xffff'ffff'0000ull));                     // MiPteLookupNeeded: "look in the VAD"
  set_pte(7, prototype_pte(0xffffa000'00ff0000));                     // prototype in unmapped pool
  m.set_u64(pool_frame + 0x20, prototype_pte(pool + 0x20));           // a prototype naming a prototype
  set_pte(8, prototype_pte(pool + 0x20));
  set_pte(9, 4u << 5);  // demand-zero
  for (unsigned n = 0; n < 4; ++n) m.set_u64(0x20000 + n * 0x1000 + 8, 0x5151'0000 + n);

  auto physical = std::make_shared<MemoryLayer>("fixture", m.bytes);
  PagedLayer windows(physical, root, kWindowsX64);
  for (unsigned n = 0; n < 4; ++n) {
    CAPTURE(n);
    CHECK(read_value<std::uint64_t>(windows, page(n) + 8).value() == 0x5151'0000 + n);
  }
  const auto failure = [&](unsigned n) {
    auto translated = windows.translate(page(n));
    REQUIRE_FALSE(translated.has_value());
    return translated.error().message;
  };
  for (unsigned n : {4u, 5u, 9u}) {
    CAPTURE(n);
    CHECK(failure(n).ends_with(": paged out, compressed or demand-zero): unavailable in this image"));
  }
  CHECK(failure(4).find("software PTE 0x123400000082") != std::string::npos);
  CHECK(failure(6).find("defers to the process's VAD") != std::string::npos);
  CHECK(failure(7).find("its prototype PTE at 0xffffa00000ff0000 is unreadable") != std::string::npos);
  CHECK(failure(8).find("a prototype PTE points to another") != std::string::npos);
  CHECK(failure(10).ends_with(" is not mapped (no page committed)"));
  // The pages in transition are mapped runs; a prototype's are found only by reading it.
  const auto ranges = windows.ranges();
  CHECK(std::ranges::any_of(ranges, [&](const Range& r) { return r.begin <= page(1) && page(1) + 0x1000 <= r.end; }));

  // The same tables read as Linux reads them: only hardware PTEs map.
  PagedLayer plain(physical, root, kX86_64FourLevel);
  CHECK(read_value<std::uint64_t>(plain, page(0) + 8).value() == 0x5151'0000);
  for (unsigned n = 1; n < 4; ++n) CHECK_FALSE(plain.translate(page(n)).has_value());
}
