// Windows 64-bit crash dumps: complete (run list) and bitmap (FDMP/SDMP) layouts, header facts,
// the context record, and malformed headers. The fixtures are synthetic (no Windows guest
// crashes here): built from DUMP_HEADER64 / _SUMMARY_DUMP as Volatility 3's crash64.json and
// crash_common.json, rekall's crashdump.py and kdmp-parser describe them.
#include <doctest/doctest.h>

#include <cstring>
#include <utility>
#include <vector>

#include "support.hpp"
#include "vmi/image.hpp"

using namespace vmi;

namespace {

constexpr std::size_t kPage = 4096;

std::string pattern(std::size_t size, std::uint8_t seed) {
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 11 + seed + (i >> 12) * 29) & 0xff);
  return bytes;
}

template <class T>
void put(std::string& bytes, std::size_t offset, const T& value) {
  if (bytes.size() < offset + sizeof value) bytes.resize(offset + sizeof value);
  std::memcpy(bytes.data() + offset, &value, sizeof value);
}

// The 0x2000-byte DUMP_HEADER64, "PAGE"-filled as Windows writes it, with the fields we read.
std::string dump_header(std::uint32_t dump_type) {
  std::string header;
  for (std::size_t i = 0; i < 0x2000; i += 4) header += "PAGE";
  std::memcpy(header.data(), "PAGEDU64", 8);              // 0x000 Signature, 0x004 ValidDump
  put(header, 0x008, std::uint32_t{0xf});                 // MajorVersion (free build)
  put(header, 0x00c, std::uint32_t{19041});               // MinorVersion (build number)
  put(header, 0x010, std::uint64_t{0x1aa000});            // DirectoryTableBase
  put(header, 0x018, std::uint64_t{0xfffffa8000000000});  // PfnDataBase
  put(header, 0x020, std::uint64_t{0xfffff8024a22a2d0});  // PsLoadedModuleList
  put(header, 0x028, std::uint64_t{0xfffff8024a21e1c0});  // PsActiveProcessHead
  put(header, 0x030, std::uint32_t{0x8664});              // MachineImageType (AMD64)
  put(header, 0x034, std::uint32_t{4});                   // NumberProcessors
  put(header, 0x038, std::uint32_t{0xe2});                // BugCheckCode (MANUALLY_INITIATED_CRASH)
  put(header, 0x080, std::uint64_t{0xfffff8024a200b20});  // KdDebuggerDataBlock
  // ContextRecord at 0x348 (winnt.h CONTEXT): ContextFlags @0x30, SegCs @0x38, EFlags @0x44,
  // Rax..R15 from @0x78 in encoding order, Rip @0xf8.
  put(header, 0x348 + 0x30, std::uint32_t{0x10001f});                                    // CONTEXT_ALL
  put(header, 0x348 + 0x38, std::uint16_t{0x10});                                        // SegCs
  put(header, 0x348 + 0x42, std::uint16_t{0x18});                                        // SegSs
  put(header, 0x348 + 0x44, std::uint32_t{0x40246});                                     // EFlags
  for (std::uint64_t r = 0; r < 16; ++r) put(header, 0x348 + 0x78 + r * 8, 0xa000 + r);  // Rax, Rcx, Rdx, Rbx, Rsp, ...
  put(header, 0x348 + 0xf8, std::uint64_t{0xfffff8024a3f5a10});                          // Rip
  put(header, 0xf98, dump_type);                                                         // DumpType
  return header;
}

// A complete dump (DumpType 1) of 7 pages in three runs: PFN 0x1-0x2, 0x100-0x103, 0x40000
// (1 GiB); PhysicalMemoryBlockBuffer at 0x88 {NumberOfRuns, NumberOfPages @0x90, Run[] @0x98}.
std::string full_dump(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& runs = {
                          {0x1, 2}, {0x100, 4}, {0x40000, 1}}) {
  std::string bytes = dump_header(1);
  put(bytes, 0x88, static_cast<std::uint32_t>(runs.size()));  // NumberOfRuns
  std::uint64_t pages = 0;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    put(bytes, 0x98 + i * 16, runs[i].first);       // Run[i].BasePage
    put(bytes, 0x98 + i * 16 + 8, runs[i].second);  // Run[i].PageCount
    pages += runs[i].second;
  }
  put(bytes, 0x90, pages);  // NumberOfPages
  return bytes + pattern(7 * kPage, 1);
}

// A bitmap dump (DumpType 5): "FDMP" summary at 0x2000 {ValidDump "DUMP", HeaderSize @0x20,
// Pages @0x28, BitmapSize @0x30 in bits}, the bitmap at 0x2038, the pages from HeaderSize = 0x3000.
// Set PFNs: 0x0-0x2, 0x10, 0x3e-0x3f; the bitmap covers 0x48 PFNs, 9 bytes.
std::string bitmap_dump() {
  std::string bytes = dump_header(5);
  bytes.resize(0x3000, '\0');
  std::memcpy(bytes.data() + 0x2000, "FDMPDUMP", 8);
  put(bytes, 0x2020, std::uint64_t{0x3000});  // HeaderSize: first page's file offset
  put(bytes, 0x2028, std::uint64_t{6});       // Pages present
  put(bytes, 0x2030, std::uint64_t{0x48});    // BitmapSize (bits)
  const unsigned char bitmap[9] = {0x07, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00};
  std::memcpy(bytes.data() + 0x2038, bitmap, sizeof bitmap);
  return bytes + pattern(6 * kPage, 2);
}

std::filesystem::path write(const std::string& name, const std::string& bytes) {
  const auto path = test::scratch_dir("crashdump-" + name) / name;
  test::write_file(path, bytes);
  return path;
}

std::string read_at(const PhysicalImage& image, Addr addr, std::size_t size) {
  std::string buffer(size, '\0');
  auto got = image.read(addr, std::as_writable_bytes(std::span(buffer.data(), buffer.size())));
  if (!got) return "error: " + got.error().message;
  buffer.resize(*got);
  return buffer;
}

Error open_error(const std::string& name, const std::string& bytes) {
  auto image = open_image(write(name, bytes));
  REQUIRE_FALSE(image.has_value());
  return image.error();
}

}  // namespace

TEST_CASE("a complete crash dump maps its runs in order after the header and exposes header facts") {
  const std::string bytes = full_dump();
  auto image = open_image(write("full.dmp", bytes));
  REQUIRE(image.has_value());
  CHECK((*image)->format() == "windows-crashdump");
  auto ranges = (*image)->ranges();
  REQUIRE(ranges.size() == 3);
  CHECK(ranges[0] == Range{0x1000, 0x3000});
  CHECK(ranges[1] == Range{0x100000, 0x104000});
  CHECK(ranges[2] == Range{0x40000000, 0x40001000});
  CHECK(read_at(**image, 0x1010, 16) == bytes.substr(0x2010, 16));
  CHECK(read_at(**image, 0x2ff8, 16) == bytes.substr(0x3ff8, 8));  // short at the hole
  CHECK(read_at(**image, 0x103000, 16) == bytes.substr(0x2000 + 5 * kPage, 16));
  CHECK(read_at(**image, 0x40000ff0, 16) == bytes.substr(0x2000 + 6 * kPage + 0xff0, 16));
  std::byte one[1];
  CHECK((*image)->read(0x0, one).error().code == Errc::unmapped);
  CHECK((*image)->read(0x3000, one).error().code == Errc::unmapped);
  CHECK((*image)->read(0x104000, one).error().code == Errc::unmapped);

  const std::vector<std::pair<std::string, std::string>> facts = {{"MajorVersion", "0xf"},
                                                                  {"MinorVersion", "0x4a61"},
                                                                  {"DirectoryTableBase", "0x1aa000"},
                                                                  {"KdDebuggerDataBlock", "0xfffff8024a200b20"},
                                                                  {"PsActiveProcessHead", "0xfffff8024a21e1c0"},
                                                                  {"PsLoadedModuleList", "0xfffff8024a22a2d0"},
                                                                  {"NumberProcessors", "0x4"},
                                                                  {"MachineImageType", "0x8664"},
                                                                  {"DumpType", "0x1"},
                                                                  {"BugCheckCode", "0xe2"}};
  CHECK((*image)->facts() == facts);
  auto cpus = (*image)->cpu_states();
  REQUIRE(cpus.size() == 1);
  CHECK(cpus[0].registers.at("cr3") == 0x1aa000);
  CHECK(cpus[0].registers.at("rip") == 0xfffff8024a3f5a10);
  CHECK(cpus[0].registers.at("rax") == 0xa000);
  CHECK(cpus[0].registers.at("rcx") == 0xa001);
  CHECK(cpus[0].registers.at("rsp") == 0xa004);
  CHECK(cpus[0].registers.at("r15") == 0xa00f);
  CHECK(cpus[0].registers.at("rflags") == 0x40246);
  CHECK(cpus[0].registers.at("cs") == 0x10);
  CHECK(cpus[0].registers.at("ss") == 0x18);
}

TEST_CASE("a bitmap crash dump maps set PFNs onto consecutive pages") {
  const std::string bytes = bitmap_dump();
  auto image = open_image(write("bitmap.dmp", bytes));
  REQUIRE(image.has_value());
  auto ranges = (*image)->ranges();
  REQUIRE(ranges.size() == 3);
  CHECK(ranges[0] == Range{0x0, 0x3000});
  CHECK(ranges[1] == Range{0x10000, 0x11000});
  CHECK(ranges[2] == Range{0x3e000, 0x40000});
  CHECK(read_at(**image, 0x2000, 16) == bytes.substr(0x3000 + 2 * kPage, 16));
  CHECK(read_at(**image, 0x10800, 16) == bytes.substr(0x3000 + 3 * kPage + 0x800, 16));
  CHECK(read_at(**image, 0x3fff8, 16) == bytes.substr(0x3000 + 6 * kPage - 8, 8));  // the last byte of the file
  std::byte one[1];
  CHECK((*image)->read(0x3000, one).error().code == Errc::unmapped);
  CHECK((*image)->read(0x11000, one).error().code == Errc::unmapped);
  CHECK((*image)->read(0x40000, one).error().code == Errc::unmapped);
  CHECK((*image)->facts()[8] == std::pair<std::string, std::string>{"DumpType", "0x5"});

  // Kernel dumps (DumpType 2 "SDMP", 6 kernel bitmap) share the summary header's layout.
  for (const std::uint32_t type : {2u, 6u}) {
    std::string kernel = bytes;
    put(kernel, 0xf98, type);
    std::memcpy(kernel.data() + 0x2000, "SDMP", 4);
    auto opened = open_image(write("kernel.dmp", kernel));
    REQUIRE(opened.has_value());
    CHECK((*opened)->ranges().size() == 3);
    CHECK(read_at(**opened, 0x3e010, 16) == bytes.substr(0x3000 + 4 * kPage + 0x10, 16));
  }
}

TEST_CASE("a crash dump is recognised by content, whatever its name") {
  auto image = open_image(write("evidence-17.bin", full_dump()));
  REQUIRE(image.has_value());
  CHECK((*image)->format() == "windows-crashdump");
}

TEST_CASE("malformed crash dumps end in an error naming the file and the offset") {
  auto prefix = [](const std::string& name) {
    const auto path = std::filesystem::path(VMI_TEST_BINARY_DIR) / "scratch" / ("crashdump-" + name) / name;
    return "Windows crash dump '" + path.string() + "': ";
  };
  SUBCASE("bad signature, opened as a crash dump") {
    std::string bytes = full_dump();
    std::memcpy(bytes.data() + 4, "DU32", 4);
    const auto path = write("sig.dmp", bytes);
    auto file = FileMapping::open(path);
    REQUIRE(file.has_value());
    const ImageFormat* format = nullptr;
    for (const ImageFormat& f : image_formats()) {
      if (f.name == "windows-crashdump") format = &f;
    }
    REQUIRE(format != nullptr);
    CHECK_FALSE(format->probe(**file));
    auto image = format->open(*file);
    REQUIRE_FALSE(image.has_value());
    CHECK(image.error().message == "Windows crash dump '" + path.string() + "': no PAGEDU64 signature at offset 0x0");
  }
  SUBCASE("truncated header") {
    const auto error = open_error("short.dmp", full_dump().substr(0, 0x1000));
    CHECK(error.code == Errc::truncated);
    CHECK(error.message == prefix("short.dmp") + "file (0x1000 bytes) is shorter than the 0x2000-byte DUMP_HEADER64");
  }
  SUBCASE("run past end of file") {
    const auto error = open_error("past.dmp", full_dump({{0x1, 2}, {0x100, 4}, {0x40000, 2}}));
    CHECK(error.code == Errc::truncated);
    CHECK(error.message == prefix("past.dmp") +
                               "run #2 at offset 0xb8 (BasePage 0x40000, PageCount 0x2) stored at file offset 0x8000 "
                               "runs past end of file (0x9000)");
  }
  SUBCASE("overlapping runs") {
    const auto error = open_error("overlap.dmp", full_dump({{0x100, 4}, {0x1, 2}, {0x102, 1}}));
    CHECK(error.code == Errc::bad_format);
    CHECK(error.message ==
          prefix("overlap.dmp") +
              "run #2 at offset 0xb8 (BasePage 0x102, PageCount 0x1) overlaps run #0 at physical 0x102000");
  }
  SUBCASE("absurd NumberOfRuns") {
    std::string bytes = full_dump();
    put(bytes, 0x88, std::uint32_t{100000});
    const auto error = open_error("runs.dmp", bytes);
    CHECK(error.code == Errc::limit_exceeded);
    CHECK(error.message ==
          prefix("runs.dmp") + "NumberOfRuns 100000 at offset 0x88 exceeds the 43 runs the header has room for");
  }
  SUBCASE("unsupported DumpType") {
    std::string bytes = full_dump();
    put(bytes, 0xf98, std::uint32_t{3});  // a user-mode dump's
    const auto error = open_error("user.dmp", bytes);
    CHECK(error.code == Errc::unsupported);
    CHECK(error.message == prefix("user.dmp") +
                               "DumpType 0x3 at offset 0xf98 is neither full (0x1), triage (0x4) nor bitmap (0x2, 0x5, "
                               "0x6)");
  }
  SUBCASE("a triage DumpType over a full dump's bytes: no TRIAGE_DUMP64 there") {
    std::string bytes = full_dump();
    put(bytes, 0xf98, std::uint32_t{4});
    const auto error = open_error("triage.dmp", bytes);
    CHECK(error.code == Errc::truncated);
    CHECK(error.message.starts_with(prefix("triage.dmp") + "ValidOffset's marker (TRIAGE_DUMP64 0x08)"));
    CHECK(error.message.ends_with("runs past end of file (0x9000)"));
  }
  SUBCASE("absurd BitmapSize") {
    std::string bytes = bitmap_dump();
    put(bytes, 0x2030, std::uint64_t{0x100000});  // a million PFNs: a 128 KiB bitmap
    const auto error = open_error("bits.dmp", bytes);
    CHECK(error.code == Errc::truncated);
    CHECK(error.message ==
          prefix("bits.dmp") + "bitmap (0x100000 bits = 0x20000 bytes at 0x2038) runs past end of file (0x9000)");
    put(bytes, 0x2030, ~std::uint64_t{0});
    CHECK(open_error("bits.dmp", bytes).message ==
          prefix("bits.dmp") + "BitmapSize 0xffffffffffffffff bits at offset 0x2030 (cap 0x10000000000)");
  }
  SUBCASE("bitmap pages past end of file") {
    std::string bytes = bitmap_dump();
    bytes[0x2038 + 8] = 0x01;  // PFN 0x40: a seventh page the file does not hold
    const auto error = open_error("pages.dmp", bytes);
    CHECK(error.code == Errc::truncated);
    CHECK(error.message ==
          prefix("pages.dmp") + "7 pages set in the bitmap, stored from 0x3000, run past end of file (0x9000)");
  }
  SUBCASE("bad summary header") {
    std::string bytes = bitmap_dump();
    std::memcpy(bytes.data() + 0x2000, "XDMP", 4);
    CHECK(open_error("summary.dmp", bytes).message ==
          prefix("summary.dmp") + "no SDMP/FDMP summary header with DUMP at offset 0x2000");
  }
}
