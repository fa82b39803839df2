// BlockLayer: kernel memory made of saved blocks (a Windows triage dump's), with holes between.
#include <doctest/doctest.h>

#include <numeric>
#include <string>
#include <vector>

#include "layers/block_layer.hpp"

namespace vmi {

namespace {

std::vector<std::byte> filled(std::size_t size, std::uint8_t first) {
  std::vector<std::byte> bytes(size);
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::byte>(first + i);
  return bytes;
}

std::vector<std::uint8_t> read_back(const BlockLayer& layer, Addr at, std::size_t size) {
  std::vector<std::byte> bytes(size);
  auto n = layer.read(at, bytes);
  REQUIRE(n.has_value());
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i < *n; ++i) out.push_back(std::to_integer<std::uint8_t>(bytes[i]));
  return out;
}

}  // namespace

TEST_CASE("a block layer reads across adjacent blocks, stops short at a hole and fails inside one") {
  const auto low = filled(0x10, 0x00);
  const auto high = filled(0x10, 0x10);
  const auto far = filled(0x8, 0x80);
  const BlockLayer layer("test", {{0x1010, high}, {0x1000, low}, {0x2000, far}});
  CHECK(layer.ranges().size() == 2);
  CHECK(layer.ranges()[0] == Range{0x1000, 0x1020});
  CHECK(layer.ranges()[1] == Range{0x2000, 0x2008});
  const auto across = read_back(layer, 0x100c, 8);  // four bytes of each block
  CHECK(across == std::vector<std::uint8_t>{0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13});
  CHECK(read_back(layer, 0x101c, 16).size() == 4);  // short: the hole after the second block
  std::byte one[1];
  const auto hole = layer.read(0x1800, one);
  REQUIRE_FALSE(hole.has_value());
  CHECK(hole.error().code == Errc::unmapped);
  CHECK(hole.error().message == "test: nothing saved at 0x1800");
  CHECK(layer.notes().empty());
}

TEST_CASE("overlapping blocks keep the earlier block's bytes and say so") {
  const auto first = filled(0x10, 0x00);   // 0x1000-0x1010
  const auto second = filled(0x20, 0x40);  // 0x1008-0x1028: only 0x1010-0x1028 is new
  const BlockLayer layer("test", {{0x1000, first}, {0x1008, second}});
  CHECK(layer.ranges().size() == 1);
  CHECK(layer.ranges()[0] == Range{0x1000, 0x1028});
  CHECK(read_back(layer, 0x100e, 4) == std::vector<std::uint8_t>{0x0e, 0x0f, 0x48, 0x49});
  REQUIRE(layer.notes().size() == 1);
  CHECK(layer.notes()[0] ==
        "test: block at 0x1008-0x1028 overlaps memory saved before it; the bytes they share are kept from the earlier");
}

TEST_CASE("tens of thousands of overlapping blocks are laid out at once, their notes capped") {
  const auto bytes = filled(0x1000, 0);
  std::vector<SavedBlock> blocks;
  for (Addr i = 0; i < 60000; ++i) blocks.push_back({0x100000 + (i % 7) * 0x10, bytes});
  const BlockLayer layer("test", blocks);
  CHECK(layer.ranges().size() == 1);
  CHECK(layer.ranges()[0] == Range{0x100000, 0x100000 + 6 * 0x10 + 0x1000});
  REQUIRE(layer.notes().size() == BlockLayer::kMaxNotes + 1);
  CHECK(layer.notes().back() ==
        "test: " + std::to_string(60000 - 1 - BlockLayer::kMaxNotes) + " more blocks overlapped or wrapped");
}

}  // namespace vmi
