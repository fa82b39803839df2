// VMware layers: .vmem + .vmss/.vmsn pairs, embedded memory, vCPU registers, malformed state files.
// The fixtures are synthetic (no VMware product runs here): built byte by byte from the layout
// crash's vmware_vmss.c, Volatility 3's vmware.py and rekall's vmem.py read.
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "support.hpp"
#include "vmi/image.hpp"

using namespace vmi;

namespace {

constexpr std::uint64_t kMiB = 1 << 20;
constexpr std::uint64_t kGiB = std::uint64_t{1} << 30;

std::string pattern(std::size_t size, std::uint8_t seed) {
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 13 + seed + (i >> 12)) & 0xff);
  return bytes;
}

template <class T>
std::string le(T value) {
  std::string bytes(sizeof value, '\0');
  std::memcpy(bytes.data(), &value, sizeof value);
  return bytes;
}

// One tag: u16 {name length << 8 | index count << 6 | value size}, the name, u32 indices, the value.
std::string tag(const std::string& name, const std::vector<std::uint32_t>& indices, const std::string& value) {
  std::string bytes = le(static_cast<std::uint16_t>(name.size() << 8 | indices.size() << 6 | value.size()));
  bytes += name;
  for (std::uint32_t index : indices) bytes += le(index);
  return bytes + value;
}

// A block tag (value size 63, or 62 compressed): u64 size on disk, u64 size in memory, u16 padding
// length, the padding, then the data.
// Version-0 files (magic 0xbed2bed0) write the two sizes as u32.
std::string block_tag(const std::string& name, const std::vector<std::uint32_t>& indices, const std::string& data,
                      std::uint16_t padding, bool compressed = false, bool version0 = false) {
  std::string bytes = le(static_cast<std::uint16_t>(name.size() << 8 | indices.size() << 6 | (compressed ? 62 : 63)));
  bytes += name;
  for (std::uint32_t index : indices) bytes += le(index);
  const std::string size = version0 ? le(static_cast<std::uint32_t>(data.size())) : le(std::uint64_t{data.size()});
  bytes += size + size + le(padding);
  return bytes + std::string(padding, '\0') + data;
}

struct StateFixture {
  std::uint32_t magic = 0xbed2bed2;
  std::string memory_tags;  // the "memory" group's tags, without the end tag
  std::string cpu_tags;     // the "cpu" group's tags, without the end tag
};

// A state file: 12-byte header {magic, version, 3 groups}, three 80-byte group descriptors
// {name[64], position, size} ("Checkpoint" ignored, "cpu", "memory"), then each group's tags
// ending in the zero tag.
std::string state_file(const StateFixture& f) {
  const std::string groups[3][2] = {
      {"Checkpoint", tag("version", {}, le(std::uint32_t{8}))}, {"cpu", f.cpu_tags}, {"memory", f.memory_tags}};
  std::string bytes = le(f.magic) + le(std::uint32_t{8}) + le(std::uint32_t{3});
  std::uint64_t position = 12 + 3 * 80;
  std::string body;
  for (const auto& [name, tags] : groups) {
    std::string descriptor = name;
    descriptor.resize(64, '\0');
    const std::string group = tags + std::string(2, '\0');  // the end-of-group tag
    bytes += descriptor + le(position) + le(std::uint64_t{group.size()});
    body += group;
    position += group.size();
  }
  return bytes + body;
}

// The memory layout of an 8 MiB guest with the PCI hole: 4 MiB at PPN 0 stored at .vmem page 0,
// 4 MiB at PPN 0x100000 (4 GiB) stored at .vmem page 0x400.
std::string region_tags(std::uint32_t count = 2) {
  std::string tags = tag("align_mask", {}, le(std::uint32_t{0xffff}));
  tags += tag("regionsCount", {}, le(count));
  const std::uint32_t ppn[] = {0, 0x100000}, page_num[] = {0, 0x400}, size[] = {0x400, 0x400};
  for (std::uint32_t i = 0; i < 2; ++i) {
    tags += tag("regionPageNum", {i}, le(page_num[i]));
    tags += tag("regionPPN", {i}, le(ppn[i]));
    tags += tag("regionSize", {i}, le(size[i]));
  }
  return tags;
}

// vCPU 0 as individual 8-byte tags (cr3 via CR64[0][3]); vCPU 1 with a gpregs block and a CR64 block.
std::string cpu_tags() {
  std::string tags = tag("cpu:numVCPUs", {}, le(std::uint32_t{2}));
  tags += tag("rip", {0}, le(std::uint64_t{0xffffffff81000123}));
  tags += tag("rsp", {0}, le(std::uint64_t{0xffffc90000013f00}));
  tags += tag("CR64", {0, 3}, le(std::uint64_t{0x1a2b000}));
  tags += tag("CR64", {0, 4}, le(std::uint64_t{0x3706f0}));
  tags += tag("EFLAGS", {0}, le(std::uint32_t{0x246}));
  std::string gpregs;
  for (std::uint64_t r = 0; r < 16; ++r) gpregs += le(0x1000 + r);  // rax, rcx, rdx, rbx, rbp, rsp, ...
  tags += block_tag("gpregs", {1}, gpregs, 0);
  std::string crs;
  for (std::uint64_t r = 0; r < 9; ++r) crs += le(r == 3 ? std::uint64_t{0x5c5d000} : r);
  tags += block_tag("CR64", {1}, crs, 6);
  return tags;
}

std::filesystem::path write(const std::filesystem::path& dir, const std::string& name, const std::string& bytes) {
  test::write_file(dir / name, bytes);
  return dir / name;
}

std::string read_at(const PhysicalImage& image, Addr addr, std::size_t size) {
  std::string buffer(size, '\0');
  auto got = image.read(addr, std::as_writable_bytes(std::span(buffer.data(), buffer.size())));
  if (!got) return "error: " + got.error().message;
  buffer.resize(*got);
  return buffer;
}

void check_guest(const PhysicalImage& image, const std::string& memory) {
  CHECK(image.format() == "vmware");
  auto ranges = image.ranges();
  REQUIRE(ranges.size() == 2);
  CHECK(ranges[0] == Range{0, 4 * kMiB});
  CHECK(ranges[1] == Range{4 * kGiB, 4 * kGiB + 4 * kMiB});
  CHECK(read_at(image, 0x1234, 16) == memory.substr(0x1234, 16));
  CHECK(read_at(image, 4 * kMiB - 8, 16) == memory.substr(4 * kMiB - 8, 8));  // short at the hole
  CHECK(read_at(image, 4 * kGiB + 0x2345, 16) == memory.substr(4 * kMiB + 0x2345, 16));
  CHECK(read_at(image, 4 * kGiB + 4 * kMiB - 4, 16) == memory.substr(8 * kMiB - 4, 4));
  std::byte one[1];
  CHECK(image.read(3 * kGiB, one).error().code == Errc::unmapped);  // the PCI hole
  CHECK(image.read(4 * kMiB, one).error().code == Errc::unmapped);
}

Error open_error(const std::filesystem::path& path) {
  auto image = open_image(path);
  REQUIRE_FALSE(image.has_value());
  return image.error();
}

}  // namespace

TEST_CASE("a .vmem with a .vmss beside it maps the regions around the PCI hole and exposes vCPU registers") {
  const auto dir = test::scratch_dir("vmware-pair");
  const std::string memory = pattern(8 * kMiB, 3);
  const auto vmem = write(dir, "guest.vmem", memory);
  write(dir, "guest.vmss", state_file({.memory_tags = region_tags(), .cpu_tags = cpu_tags()}));
  for (const auto& path : {vmem, dir / "guest.vmss"}) {  // either file opens the pair
    CAPTURE(path);
    auto image = open_image(path);
    REQUIRE(image.has_value());
    check_guest(**image, memory);
    CHECK((*image)->name() == "VMware '" + vmem.string() + "'");
    auto cpus = (*image)->cpu_states();
    REQUIRE(cpus.size() == 2);
    CHECK(cpus[0].index == 0);
    CHECK(cpus[0].registers.at("cr3") == 0x1a2b000);
    CHECK(cpus[0].registers.at("cr4") == 0x3706f0);
    CHECK(cpus[0].registers.at("rip") == 0xffffffff81000123);
    CHECK(cpus[0].registers.at("rsp") == 0xffffc90000013f00);
    CHECK(cpus[0].registers.at("rflags") == 0x246);
    CHECK(cpus[1].index == 1);
    CHECK(cpus[1].registers.at("cr3") == 0x5c5d000);
    CHECK(cpus[1].registers.at("rax") == 0x1000);
    CHECK(cpus[1].registers.at("rcx") == 0x1001);
    CHECK(cpus[1].registers.at("r15") == 0x100f);
    const auto facts = (*image)->facts();
    REQUIRE(facts.size() == 2);
    CHECK(facts[0].second == (dir / "guest.vmss").string());
    CHECK(facts[1].second == vmem.string());
  }
}

TEST_CASE("a .vmsn with embedded Memory needs no .vmem, and is found by content whatever its name") {
  const auto dir = test::scratch_dir("vmware-embedded");
  const std::string memory = pattern(8 * kMiB, 9);
  const std::string state =
      state_file({.memory_tags = region_tags() + block_tag("Memory", {0, 0}, memory, 0x1f), .cpu_tags = cpu_tags()});
  for (const char* name : {"snapshot.vmsn", "evidence-0042.bin"}) {
    CAPTURE(name);
    auto image = open_image(write(dir, name, state));
    REQUIRE(image.has_value());
    check_guest(**image, memory);
    CHECK((*image)->cpu_states().size() == 2);
  }
}

TEST_CASE("a version-0 state file (magic 0xbed2bed0) reads its blocks' 32-bit sizes") {
  const auto dir = test::scratch_dir("vmware-v0");
  const std::string memory = pattern(8 * kMiB, 4);
  const std::string state =
      state_file({.magic = 0xbed2bed0,
                  .memory_tags = region_tags() + block_tag("Memory", {0, 0}, memory, 3, false, true),
                  .cpu_tags = ""});
  auto image = open_image(write(dir, "old.vmss", state));
  REQUIRE(image.has_value());
  check_guest(**image, memory);
}

TEST_CASE("a .vmem without a state file beside it stays raw; one region or none maps linearly") {
  const auto dir = test::scratch_dir("vmware-raw");
  const std::string memory = pattern(2 * kMiB, 1);
  auto raw = open_image(write(dir, "alone.vmem", memory));
  REQUIRE(raw.has_value());
  CHECK((*raw)->format() == "raw");

  write(dir, "flat.vmem", memory);
  write(dir, "flat.vmsn", state_file({.memory_tags = tag("regionsCount", {}, le(std::uint32_t{0})), .cpu_tags = ""}));
  auto flat = open_image(dir / "flat.vmem");
  REQUIRE(flat.has_value());
  CHECK((*flat)->format() == "vmware");
  REQUIRE((*flat)->ranges().size() == 1);
  CHECK((*flat)->ranges()[0] == Range{0, 2 * kMiB});
  CHECK((*flat)->cpu_states().empty());
  CHECK(read_at(**flat, 0x1ffff0, 16) == memory.substr(0x1ffff0, 16));
}

TEST_CASE("malformed VMware state files end in an error naming the file and the offset") {
  const auto dir = test::scratch_dir("vmware-bad");
  const std::string memory = pattern(8 * kMiB, 5);
  write(dir, "g.vmem", memory);
  const auto vmss = dir / "g.vmss";
  const std::string prefix = "VMware state '" + vmss.string() + "': ";
  StateFixture fixture{.memory_tags = region_tags(), .cpu_tags = cpu_tags()};

  SUBCASE("a .vmem whose .vmss has a bad magic") {
    std::string state = state_file(fixture);
    std::memcpy(state.data(), "\x78\x56\x34\x12", 4);
    write(dir, "g.vmss", state);
    CHECK(open_error(dir / "g.vmem").message == prefix + "bad magic 0x12345678 at offset 0x0");
  }
  SUBCASE("truncated header") {
    write(dir, "g.vmss", state_file(fixture).substr(0, 8));
    const auto error = open_error(vmss);
    CHECK(error.code == Errc::truncated);
    CHECK(error.message == prefix + "file (0x8 bytes) is shorter than the 12-byte header");
  }
  SUBCASE("absurd group count") {
    std::string state = state_file(fixture);
    std::memcpy(state.data() + 8, "\xa0\x86\x01\x00", 4);  // 100000 groups
    write(dir, "g.vmss", state);
    CHECK(open_error(dir / "g.vmem").message == prefix + "100000 groups at offset 0x8 (cap 4096)");
  }
  SUBCASE("group descriptors past end of file") {
    std::string state = state_file(fixture);
    std::memcpy(state.data() + 8, "\x00\x01\x00\x00", 4);  // 256 groups
    write(dir, "g.vmss", state);
    CHECK(open_error(vmss).message ==
          prefix + "256 group descriptors at 0xc run past end of file (" + hex(state.size()) + ")");
  }
  SUBCASE("tag data past end of file") {
    const std::string state = state_file(fixture);
    const std::size_t cut = state.size() - 2 - 3;  // inside the last regionSize value
    write(dir, "g.vmss", state.substr(0, cut));
    const auto error = open_error(vmss);
    CHECK(error.code == Errc::truncated);
    const std::size_t tag_at = state.size() - 2 - (2 + 10 + 4 + 4);
    char expected[200];
    std::snprintf(expected, sizeof expected,
                  "tag 'regionSize' at 0x%zx: 0x4 bytes of data at 0x%zx run past end of file (0x%zx)", tag_at,
                  tag_at + 16, cut);
    CHECK(error.message == prefix + expected);
  }
  SUBCASE("region past end of the .vmem") {
    fixture.memory_tags += tag("regionSize", {1}, le(std::uint32_t{0x401}));  // a later tag wins
    write(dir, "g.vmss", state_file(fixture));
    const auto error = open_error(dir / "g.vmem");
    CHECK(error.code == Errc::truncated);
    CHECK(error.message.starts_with(prefix + "region #1 (tags at 0x"));
    CHECK(error.message.ends_with(": pages 0x400 + 0x401) runs past the end of '" + (dir / "g.vmem").string() +
                                  "' (0x800000 bytes)"));
  }
  SUBCASE("overlapping regions") {
    fixture.memory_tags += tag("regionPPN", {1}, le(std::uint32_t{0x3ff}));
    write(dir, "g.vmss", state_file(fixture));
    const auto error = open_error(vmss);
    CHECK(error.code == Errc::bad_format);
    CHECK(error.message.ends_with(", physical 0x3ff000-0x7ff000) overlaps region #0 (physical 0x0-0x400000)"));
  }
  SUBCASE("absurd regionsCount") {
    fixture.memory_tags += tag("regionsCount", {}, le(std::uint32_t{5000}));
    write(dir, "g.vmss", state_file(fixture));
    CHECK(open_error(vmss).message == prefix + "regionsCount 5000 (cap 1024)");
  }
  SUBCASE("a region without its tags") {
    fixture.memory_tags = region_tags(3);
    write(dir, "g.vmss", state_file(fixture));
    CHECK(open_error(vmss).message == prefix + "region #2 of 3 lacks its regionPPN, regionPageNum or regionSize tag");
  }
  SUBCASE("absurd tag count") {
    // 2^20 + 1 three-byte tags (one-letter name, no value) in the memory group.
    fixture.memory_tags = std::string();
    const std::string one = tag("x", {}, "");
    for (std::size_t i = 0; i <= (1u << 20); ++i) fixture.memory_tags += one;
    write(dir, "g.vmss", state_file(fixture));
    const auto error = open_error(vmss);
    CHECK(error.code == Errc::limit_exceeded);
    CHECK(error.message.starts_with(prefix + "group 'memory' has more than 1048576 tags (at 0x"));
  }
  SUBCASE("compressed embedded memory and no .vmem") {
    std::filesystem::remove(dir / "g.vmem");
    fixture.memory_tags += block_tag("Memory", {0, 0}, "zz", 0, true);
    write(dir, "g.vmss", state_file(fixture));
    const auto error = open_error(vmss);
    CHECK(error.code == Errc::unsupported);
    CHECK(error.message.starts_with(prefix + "the embedded Memory block at 0x"));
  }
  SUBCASE("no memory anywhere") {
    std::filesystem::remove(dir / "g.vmem");
    write(dir, "g.vmss", state_file(fixture));
    CHECK(open_error(vmss).message == "VMware state '" + vmss.string() + "' has no embedded Memory block and no '" +
                                          (dir / "g.vmem").string() + "' beside it");
  }
}
