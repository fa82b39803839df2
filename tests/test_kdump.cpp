// kdump-compressed: byte-array fixtures (every codec, seekable and flattened, corrupted variants)
// and the real QEMU dumps of the samples against memory.raw and the guest's /proc.
#include <doctest/doctest.h>
#include <lzo/lzo1x.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/image.hpp"

using namespace vmi;

namespace {

constexpr std::size_t kBlock = 4096;

template <class T>
void put(std::string& bytes, std::size_t offset, const T& value) {
  if (bytes.size() < offset + sizeof value) bytes.resize(offset + sizeof value);
  std::memcpy(bytes.data() + offset, &value, sizeof value);
}

void put_be64(std::string& bytes, std::size_t offset, std::uint64_t value) {
  put(bytes, offset, __builtin_bswap64(value));
}

std::string page_pattern(std::uint64_t pfn) {
  std::string page(kBlock, '\0');
  for (std::size_t i = 0; i < kBlock; ++i) page[i] = static_cast<char>(((i / 16) * 7 + pfn * 31) & 0xff);
  return page;
}

enum Codec : std::uint32_t { kRaw = 0, kZlib = 1, kLzo = 2, kSnappy = 4, kZstd = 0x20 };

std::string compress(Codec codec, const std::string& page) {
  std::string out(2 * kBlock + 1024, '\0');
  auto* dst = reinterpret_cast<unsigned char*>(out.data());
  const auto* src = reinterpret_cast<const unsigned char*>(page.data());
  switch (codec) {
    case kRaw:
      return page;
    case kZlib: {
      uLongf length = out.size();
      REQUIRE(compress2(dst, &length, src, page.size(), Z_BEST_SPEED) == Z_OK);
      out.resize(length);
      break;
    }
    case kLzo: {
      REQUIRE(lzo_init() == LZO_E_OK);
      std::vector<unsigned char> work(LZO1X_1_MEM_COMPRESS);
      lzo_uint length = out.size();
      REQUIRE(lzo1x_1_compress(src, page.size(), dst, &length, work.data()) == LZO_E_OK);
      out.resize(length);
      break;
    }
    case kSnappy: {
      std::size_t length = out.size();
      REQUIRE(snappy_compress(page.data(), page.size(), out.data(), &length) == SNAPPY_OK);
      out.resize(length);
      break;
    }
    case kZstd: {
      const std::size_t length = ZSTD_compress(dst, out.size(), src, page.size(), 1);
      REQUIRE(ZSTD_isError(length) == 0);
      out.resize(length);
      break;
    }
  }
  return out;
}

// The dumped pages of the fixture: pfn -> codec. pfns 5-7 and 9-15 are not dumped.
const std::vector<std::pair<std::uint64_t, Codec>> kPages = {{0, kZlib}, {1, kLzo}, {2, kSnappy},
                                                             {3, kZstd}, {4, kRaw}, {8, kZlib}};
constexpr std::uint64_t kMapnr = 16;
constexpr std::uint64_t kRip = 0xffffffff81234567;

// A seekable kdump as makedumpfile writes it: header (block 0), sub header + one NT_PRSTATUS note
// (block 1), both bitmaps (blocks 2-3), page descriptors (block 4), page data from block 5.
std::string kdump_fixture() {
  std::string dump(5 * kBlock, '\0');
  std::memcpy(dump.data(), "KDUMP   ", 8);
  put<std::int32_t>(dump, 8, 6);                             // header_version
  std::memcpy(dump.data() + 12 + 2 * 65, "6.1.0-test", 10);  // utsname.release
  put<std::uint32_t>(dump, 424, kZlib);                      // status: compression
  put<std::int32_t>(dump, 428, kBlock);                      // block_size
  put<std::int32_t>(dump, 432, 1);                           // sub_hdr_size (blocks)
  put<std::uint32_t>(dump, 436, 2);                          // bitmap_blocks
  put<std::uint32_t>(dump, 440, kMapnr);                     // max_mapnr (32-bit)
  put<std::int32_t>(dump, 460, 1);                           // nr_cpus
  // kdump_sub_header at block 1
  put<std::uint64_t>(dump, kBlock + 0, 0x1000000);      // phys_base
  put<std::int32_t>(dump, kBlock + 8, 1);               // dump_level
  put<std::uint64_t>(dump, kBlock + 48, kBlock + 104);  // offset_note
  put<std::uint64_t>(dump, kBlock + 56, 12 + 8 + 336);  // size_note
  put<std::uint64_t>(dump, kBlock + 96, kMapnr);        // max_mapnr_64
  // NT_PRSTATUS note: namesz 5 ("CORE\0", padded to 8), descsz 336, type 1; rip is pr_reg[16]
  const std::size_t note = kBlock + 104;
  put<std::uint32_t>(dump, note, 5);
  put<std::uint32_t>(dump, note + 4, 336);
  put<std::uint32_t>(dump, note + 8, 1);
  std::memcpy(dump.data() + note + 12, "CORE", 5);
  put<std::uint64_t>(dump, note + 20 + 112 + 16 * 8, kRip);
  std::uint64_t data_at = 5 * kBlock;
  std::size_t index = 0;
  for (const auto& [pfn, codec] : kPages) {
    dump[2 * kBlock + pfn / 8] |= static_cast<char>(1 << (pfn % 8));  // 1st bitmap
    dump[3 * kBlock + pfn / 8] |= static_cast<char>(1 << (pfn % 8));  // 2nd bitmap
    const std::string data = compress(codec, page_pattern(pfn));
    const std::size_t desc = 4 * kBlock + index++ * 24;
    put<std::int64_t>(dump, desc, static_cast<std::int64_t>(data_at));
    put<std::uint32_t>(dump, desc + 8, static_cast<std::uint32_t>(data.size()));
    put<std::uint32_t>(dump, desc + 12, codec);
    dump += data;
    data_at += data.size();
  }
  return dump;
}

// The same dump in makedumpfile's flattened format: records of `chunk` bytes, written in reverse
// order (readers must place records by their offset, not by their order in the stream).
std::string flatten(const std::string& dump, std::size_t chunk) {
  std::string flat(4096, '\0');
  std::memcpy(flat.data(), "makedumpfile", 12);
  put_be64(flat, 16, 1);  // type: flattened
  put_be64(flat, 24, 1);  // version
  std::vector<std::size_t> starts;
  for (std::size_t at = 0; at < dump.size(); at += chunk) starts.push_back(at);
  for (auto it = starts.rbegin(); it != starts.rend(); ++it) {
    const std::size_t size = std::min(chunk, dump.size() - *it);
    std::string header(16, '\0');
    put_be64(header, 0, *it);
    put_be64(header, 8, size);
    flat += header + dump.substr(*it, size);
  }
  std::string end(16, '\xff');  // END_FLAG_FLAT_HEADER
  return flat + end;
}

const test::FormatFixtures kFixtures{"kdump", "dump.kdump", "kdump"};

void check_fixture_pages(const PhysicalImage& image) {
  CHECK(image.format() == "kdump");
  REQUIRE(image.ranges().size() == 2);
  CHECK(image.ranges()[0] == Range{0, 5 * kBlock});
  CHECK(image.ranges()[1] == Range{8 * kBlock, 9 * kBlock});
  for (const auto& [pfn, codec] : kPages) {
    CAPTURE(pfn);
    std::string page(kBlock, '\0');
    REQUIRE(read_exact(image, pfn * kBlock, std::as_writable_bytes(std::span(page))).has_value());
    CHECK(page == page_pattern(pfn));
  }
  // A read across pages 0-4 (every codec) stops short at the hole at pfn 5.
  std::string run(6 * kBlock, '\0');
  auto got = image.read(0x800, std::as_writable_bytes(std::span(run)));
  REQUIRE(got.has_value());
  CHECK(*got == 5 * kBlock - 0x800);
  CHECK(run.substr(kBlock - 0x800, kBlock) == page_pattern(1));
  auto hole = image.read(5 * kBlock, std::as_writable_bytes(std::span(run)));
  REQUIRE_FALSE(hole.has_value());
  CHECK(hole.error().code == Errc::unmapped);
  REQUIRE(image.cpu_states().size() == 1);
  CHECK(image.cpu_states()[0].registers.at("rip") == kRip);
  const auto facts = test::facts_of(image);
  CHECK(facts.at("kdump block size") == "4096");
  CHECK(facts.at("kdump compression") == "zlib");
  CHECK(facts.at("kdump dump level") == "1");
  CHECK(facts.at("kdump phys_base") == "0x1000000");
  CHECK(facts.at("kdump max_mapnr") == "16");
  CHECK(facts.at("kdump dumped pages") == "6");
  CHECK(facts.at("kdump utsname release") == "6.1.0-test");
}

}  // namespace

TEST_CASE("kdump fixture, seekable: zlib, lzo, snappy, zstd and stored pages; holes; notes; facts") {
  auto image = open_image(kFixtures.write("seekable", kdump_fixture()));
  REQUIRE_MESSAGE(image.has_value(), test::error_text(image));
  check_fixture_pages(**image);
  CHECK(test::facts_of(**image).at("kdump layout") == "seekable");
}

TEST_CASE("kdump fixture, flattened: records out of order and straddling structures") {
  const std::string dump = kdump_fixture();
  auto image = open_image(kFixtures.write("flat", flatten(dump, 3000)));
  REQUIRE_MESSAGE(image.has_value(), test::error_text(image));
  check_fixture_pages(**image);
  const std::size_t records = (dump.size() + 2999) / 3000;
  CHECK(test::facts_of(**image).at("kdump layout") == "flattened (version 1, " + std::to_string(records) + " records)");
}

TEST_CASE("kdump fixture: concurrent reads through the shared page cache see the right pages") {
  auto image = open_image(kFixtures.write("threads", flatten(kdump_fixture(), 5000)));
  REQUIRE_MESSAGE(image.has_value(), test::error_text(image));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::string page(kBlock, '\0');
      for (int round = 0; round < 200; ++round) {
        const auto& [pfn, codec] = kPages[(round + t) % kPages.size()];
        if (!read_exact(**image, pfn * kBlock, std::as_writable_bytes(std::span(page))) || page != page_pattern(pfn))
          ++wrong;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(wrong.load() == 0);
}

TEST_CASE("kdump fixtures: malformed headers fail with the file, the offset and the numbers") {
  const std::string good = kdump_fixture();
  {
    std::string dump = good;
    std::memcpy(dump.data(), "KDUMQ   ", 8);
    CHECK(kFixtures.open_error("magic", flatten(dump, 4096)) ==
          kFixtures.prefix("magic") + "no \"KDUMP   \" signature at dump offset 0x0");
  }
  CHECK(kFixtures.open_error("short", good.substr(0, 100)) ==
        kFixtures.prefix("short") + "0x1d0 bytes at dump offset 0x0 run past end of file (0x64)");
  CHECK(kFixtures.open_error("bitmap", good.substr(0, 0x2800)) ==
        kFixtures.prefix("bitmap") + "bitmap (0x2000 bytes at dump offset 0x2000) runs past end of file (0x2800)");
  CHECK(kFixtures.open_error("descs", good.substr(0, 0x4030)) ==
        kFixtures.prefix("descs") + "6 page descriptors at dump offset 0x4000 run past end of file (0x4030)");
  {
    std::string dump = good;
    put<std::int32_t>(dump, 428, 12345);
    CHECK(kFixtures.open_error("block", dump) ==
          kFixtures.prefix("block") + "block_size 12345 at dump offset 0x1ac is not a power of two in [4096, 65536]");
  }
  {
    std::string dump = good;
    put<std::uint64_t>(dump, kBlock + 96, std::uint64_t{1} << 40);
    CHECK(kFixtures.open_error("mapnr", dump) ==
          kFixtures.prefix("mapnr") + "max_mapnr 1099511627776 at dump offset 0x1060 (must be 1..4294967296)");
    put<std::uint64_t>(dump, kBlock + 96, 100000);
    CHECK(kFixtures.open_error("mapnr2", dump) ==
          kFixtures.prefix("mapnr2") + "bitmap of 2 blocks (at dump offset 0x1b4) cannot hold 100000 pages twice");
  }
  {
    std::string flat = flatten(good, 4096).substr(0, 4096 + 16 + 0xf0);  // the first record claims more than is left
    CHECK(kFixtures.open_error("record", flat) ==
          kFixtures.prefix("record") + "flattened record at 0x1000 (" +
              std::to_string(good.size() - (good.size() - 1) / 4096 * 4096) + " bytes for offset " +
              std::to_string((good.size() - 1) / 4096 * 4096) + ") runs past end of file (0x1100)");
  }
  {
    std::string flat(4096, '\0');
    std::memcpy(flat.data(), "makedumpfile", 12);
    put_be64(flat, 16, 1);
    put_be64(flat, 24, 1);
    for (std::uint64_t logical : {0x0, 0x80}) {
      std::string header(16, '\0');
      put_be64(header, 0, logical);
      put_be64(header, 8, 0x100);
      flat += header + good.substr(logical, 0x100);
    }
    CHECK(kFixtures.open_error("overlap", flat) ==
          kFixtures.prefix("overlap") + "flattened records at 0x1000 and 0x1110 overlap at dump offset 0x80");
    put_be64(flat, 16, 2);
    CHECK(kFixtures.open_error("type", flat) ==
          kFixtures.prefix("type") + "flattened header at 0x10: type 2 is not 1 (flattened)");
  }
}

TEST_CASE("kdump fixture: a page that does not decompress fails the read, naming it") {
  std::string dump = kdump_fixture();
  std::int64_t data_at = 0;
  std::uint32_t size = 0;
  std::memcpy(&data_at, dump.data() + 4 * kBlock, 8);
  std::memcpy(&size, dump.data() + 4 * kBlock + 8, 4);
  std::memset(dump.data() + data_at, 0x5a, size);
  auto image = open_image(kFixtures.write("corrupt", dump));
  REQUIRE_MESSAGE(image.has_value(), test::error_text(image));
  std::string page(kBlock, '\0');
  auto got = (*image)->read(0, std::as_writable_bytes(std::span(page)));
  REQUIRE_FALSE(got.has_value());
  CHECK(got.error().message == kFixtures.prefix("corrupt") + "zlib page at dump offset 0x5000 (" +
                                   std::to_string(size) +
                                   " bytes, descriptor at 0x4000) does not decompress to 4096 bytes");
  CHECK(
      read_exact(**image, 4 * kBlock, std::as_writable_bytes(std::span(page))).has_value());  // other pages still read
}

namespace {

// Whether `program` is an executable file in a PATH directory (or in the sbin directories, which a
// non-root PATH may lack).
bool installed(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::string dirs = std::string(path != nullptr ? path : "") + ":/usr/local/sbin:/usr/sbin:/sbin";
  for (std::size_t start = 0; start <= dirs.size();) {
    const auto colon = std::min(dirs.find(':', start), dirs.size());
    const std::string dir = dirs.substr(start, colon - start);
    if (!dir.empty() && ::access((std::filesystem::path(dir) / program).c_str(), X_OK) == 0) return true;
    start = colon + 1;
  }
  return false;
}

bool has_word(const std::string& words, const std::string& word) {
  std::istringstream in(words);
  for (std::string item; in >> item;) {
    if (item == word) return true;
  }
  return false;
}

}  // namespace

// Real dumps: QEMU 7.2's dump-guest-memory -z/-l/-s (flattened) and makedumpfile -R's seekable
// copy. Every kdump file this platform can write is required: zlib (every QEMU has it), lzo and
// snappy unless the QEMU that built the sample said it cannot write them (sample.env
// KDUMP_UNAVAILABLE), and the seekable copy when makedumpfile is installed. What was skipped is
// printed; pages of the codecs no real dump has are tested on the fixtures above only.
TEST_CASE("kdump samples hold memory.raw's bytes and give the guest's own pslist") {
  const bool makedumpfile = installed("makedumpfile");
  for (const auto& sample : test::load_samples()) {
    CAPTURE(sample.name);
    const auto listed = sample.env.find("EXTRA_FORMATS");
    const auto unavailable = sample.env.find("KDUMP_UNAVAILABLE");
    // build-samples.sh writes these for every sample; an older cache must be rebuilt.
    REQUIRE_MESSAGE(listed != sample.env.end(),
                    ("sample " + sample.name + " predates the kdump/savevm files: rerun samples/build-samples.sh"));
    REQUIRE_MESSAGE(unavailable != sample.env.end(),
                    ("sample " + sample.name + " predates KDUMP_UNAVAILABLE: rerun samples/build-samples.sh"));
    std::vector<std::string> names{"memory.kdump-zlib"}, skipped;
    for (const char* codec_name : {"lzo", "snappy"}) {
      const std::string codec = codec_name;
      const std::string name = "memory.kdump-" + codec;
      if (has_word(listed->second, name)) {
        names.push_back(name);
      } else {
        // Missing only because QEMU said it cannot write the codec, not because the build lost it.
        REQUIRE_MESSAGE(has_word(unavailable->second, codec), "sample ", sample.name, " has no ", name,
                        " and its QEMU did not report kdump-", codec, " unavailable: rerun samples/build-samples.sh");
        skipped.push_back(codec + " (this QEMU cannot write it)");
      }
    }
    if (makedumpfile || has_word(listed->second, "memory.kdump-seekable")) {
      names.push_back("memory.kdump-seekable");
    } else {
      skipped.push_back("seekable (makedumpfile is not installed)");
    }
    MESSAGE(sample.name, ": kdump files tested: ", test::joined(names),
            "; skipped: ", skipped.empty() ? std::string("none") : test::joined(skipped),
            "; zstd pages: fixtures only (no QEMU writes them)");
    auto raw = open_image(sample.dir / "memory.raw");
    REQUIRE(raw.has_value());
    const auto profile = test::profile_for(sample);
    for (const auto& name : names) {
      CAPTURE(name);
      REQUIRE_MESSAGE(has_word(listed->second, name), "sample ", sample.name, " lacks ", name,
                      ", which this platform can write: rerun samples/build-samples.sh");
      auto image = open_image(sample.dir / name);
      REQUIRE_MESSAGE(image.has_value(), test::error_text(image));
      CHECK((*image)->format() == "kdump");
      CHECK((*image)->cpu_states().size() == std::stoul(sample.env.at("QEMU_SMP")));
      const auto facts = test::facts_of(**image);
      CHECK(facts.at("kdump block size") == "4096");
      CHECK(facts.at("kdump layout").starts_with(name == "memory.kdump-seekable" ? "seekable" : "flattened"));
      CHECK(test::check_same_bytes(**image, **raw) == std::stoull(sample.env.at("RAM_BYTES")));
      Session session = test::open_sample(sample.dir / name, profile);
      test::check_pslist_equals_proc(session, sample);
      test::check_threads_equal_proc(session, sample);
    }
  }
}
