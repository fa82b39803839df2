// The .vmic container: fixture round trips, every malformed case with its exact message, raw
// .gz/.zst streams, and the real samples converted (library and CLI) against raw bytes and /proc.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>

#include "layers/vmi_container.hpp"
#include "samples.hpp"
#include "support.hpp"
#include "vmi/convert.hpp"
#include "vmi/image.hpp"

using namespace vmi;
namespace fs = std::filesystem;

namespace {

template <class T>
void put(std::string& bytes, std::size_t offset, const T& value) {
  if (bytes.size() < offset + sizeof value) bytes.resize(offset + sizeof value);
  std::memcpy(bytes.data() + offset, &value, sizeof value);
}
template <class T>
T get(const std::string& bytes, std::size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof value);
  return value;
}

std::string pattern(std::size_t size, std::uint8_t seed) {
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 31 + seed + i / 4096) & 0xff);
  return bytes;
}

std::string lime_header(std::uint64_t s_addr, std::uint64_t e_addr) {
  std::string header(32, '\0');
  put(header, 0, std::uint32_t{0x4C694D45});
  put(header, 4, std::uint32_t{1});
  put(header, 8, s_addr);
  put(header, 16, e_addr);
  return header;
}

// A LiME source with three ranges: 0x0-0x2000, 0x100000-0x101000 and 0x101100-0x101200 (the
// last two share a 4 KiB chunk window with a hole between them).
const std::vector<std::pair<Range, std::string>> kFixtureRanges = {{{0x0, 0x2000}, pattern(0x2000, 1)},
                                                                   {{0x100000, 0x101000}, pattern(0x1000, 2)},
                                                                   {{0x101100, 0x101200}, pattern(0x100, 3)}};

fs::path fixture_container(const fs::path& dir) {
  std::string lime;
  for (const auto& [range, bytes] : kFixtureRanges) lime += lime_header(range.begin, range.end - 1) + bytes;
  test::write_file(dir / "source.lime", lime);
  ConvertOptions options;
  options.chunk_size = 4096;
  auto stats = convert_to_container(dir / "source.lime", dir / "fixture.vmic", options);
  REQUIRE_MESSAGE(stats.has_value(), test::error_text(stats));
  CHECK(stats->source_format == "lime");
  CHECK(stats->chunks == 4);  // 0x0, 0x1000, 0x100000, 0x101000
  CHECK(stats->guest_bytes == 0x3100);
  return dir / "fixture.vmic";
}

// Rewrites the header's CRC after a test edits a header field.
void reseal_header(std::string& bytes) {
  put(bytes, offsetof(container::Header, header_crc),
      container::crc32(std::as_bytes(std::span(bytes)).first(offsetof(container::Header, header_crc))));
}
// Rewrites the index CRC (and the header's) after a test edits an index entry.
void reseal_index(std::string& bytes) {
  const auto header = get<container::Header>(bytes, 0);
  const auto index =
      std::as_bytes(std::span(bytes)).subspan(header.index_offset, header.chunk_count * sizeof(container::IndexEntry));
  put(bytes, offsetof(container::Header, index_crc), container::crc32(index));
  reseal_header(bytes);
}

std::string open_error(const fs::path& path) {
  auto image = open_image(path);
  REQUIRE_FALSE(image.has_value());
  return image.error().message;
}

}  // namespace

TEST_CASE("container fixture: holes stay holes, bytes and ranges survive, concurrent reads agree") {
  const auto dir = test::scratch_dir("container-fixture");
  const auto path = fixture_container(dir);
  auto image = open_image(path);
  REQUIRE_MESSAGE(image.has_value(), test::error_text(image));
  CHECK((*image)->format() == "vmi-container");
  REQUIRE((*image)->ranges().size() == 3);
  for (std::size_t i = 0; i < kFixtureRanges.size(); ++i) {
    const auto& [range, bytes] = kFixtureRanges[i];
    CHECK((*image)->ranges()[i] == range);
    std::string read(bytes.size(), '\0');
    REQUIRE(read_exact(**image, range.begin, std::as_writable_bytes(std::span(read))).has_value());
    CHECK(read == bytes);
  }
  std::string buffer(0x200, '\0');
  auto short_read = (*image)->read(0x100f00, std::as_writable_bytes(std::span(buffer)));
  REQUIRE(short_read.has_value());
  CHECK(*short_read == 0x100);  // stops at the hole 0x101000-0x101100, inside one chunk
  auto hole = (*image)->read(0x101080, std::as_writable_bytes(std::span(buffer)));
  REQUIRE_FALSE(hole.has_value());
  CHECK(hole.error().code == Errc::unmapped);
  const auto fact_list = (*image)->facts();
  std::map<std::string, std::string> facts(fact_list.begin(), fact_list.end());
  CHECK(facts.at("source format") == "lime");
  CHECK(fs::exists(path.string() + ".partial") == false);

  // Two threads hammering different chunks through the shared LRU read the same bytes.
  auto worker = [&](Addr base, const std::string& expected, bool& ok) {
    std::string got(expected.size(), '\0');
    ok = true;
    for (int round = 0; round < 200; ++round) {
      ok = ok && read_exact(**image, base, std::as_writable_bytes(std::span(got))).has_value() && got == expected;
    }
  };
  bool ok_a = false, ok_b = false;
  std::thread a(worker, 0x0, kFixtureRanges[0].second, std::ref(ok_a));
  std::thread b(worker, 0x100000, kFixtureRanges[1].second, std::ref(ok_b));
  a.join();
  b.join();
  CHECK(ok_a);
  CHECK(ok_b);

  // A container converted again keeps the original source's format name.
  auto twice = convert_to_container(path, dir / "twice.vmic");
  REQUIRE_MESSAGE(twice.has_value(), test::error_text(twice));
  CHECK(twice->source_format == "lime");
  auto reopened = open_image(dir / "twice.vmic");
  REQUIRE(reopened.has_value());
  const auto twice_facts = (*reopened)->facts();
  CHECK(std::count_if(twice_facts.begin(), twice_facts.end(),
                      [](const auto& f) { return f.first == "source format"; }) == 1);

  auto again = convert_to_container(dir / "source.lime", path);
  REQUIRE_FALSE(again.has_value());
  CHECK(again.error().message == "output '" + path.string() + "' already exists; not overwriting it");
}

TEST_CASE("container malformed: exact errors naming file and offset") {
  const auto dir = test::scratch_dir("container-malformed");
  const auto good = test::read_file(fixture_container(dir));
  const auto header = get<container::Header>(good, 0);
  const auto path = dir / "bad.vmic";
  const std::string prefix = "container '" + path.string() + "': ";
  SUBCASE("bad magic") {
    auto bytes = good;
    bytes[3] = 'X';
    test::write_file(path, bytes);
    // Not our magic any more: the probe passes it on and raw refuses the odd size.
    CHECK(open_error(path).find("is not a memory image") != std::string::npos);
    auto direct = FileMapping::open(path);
    REQUIRE(direct.has_value());
    auto opened = image_formats()[0].open;  // stay on the container opener for its own message
    for (const auto& format : image_formats()) {
      if (format.name == "vmi-container") opened = format.open;
    }
    auto image = opened(*direct);
    REQUIRE_FALSE(image.has_value());
    CHECK(image.error().message == prefix + "bad magic at offset 0x0 (not a vmi-forensics container)");
  }
  SUBCASE("truncated index") {
    test::write_file(path, good.substr(0, header.index_offset + 30));
    CHECK(open_error(path) == prefix + "chunk index (4 x 24 bytes) at offset " + hex(header.index_offset) +
                                  " runs past end of file (" + hex(header.index_offset + 30) + ")");
  }
  SUBCASE("chunk past end of file") {
    auto bytes = good;
    const std::size_t entry = header.index_offset + 2 * sizeof(container::IndexEntry);
    put(bytes, entry + offsetof(container::IndexEntry, file_offset), std::uint64_t{bytes.size() - 4});
    reseal_index(bytes);
    test::write_file(path, bytes);
    const auto size = get<std::uint32_t>(bytes, entry + offsetof(container::IndexEntry, compressed_size));
    CHECK(open_error(path) == prefix + "chunk #2 (index entry at offset " + hex(entry) + "): frame at file offset " +
                                  hex(bytes.size() - 4) + " + " + hex(size) + " bytes runs past end of file (" +
                                  hex(bytes.size()) + ")");
  }
  SUBCASE("checksum mismatch: found when the chunk is read") {
    auto bytes = good;
    const std::size_t entry = header.index_offset + 1 * sizeof(container::IndexEntry);
    const auto crc = get<std::uint32_t>(bytes, entry + offsetof(container::IndexEntry, crc));
    put(bytes, entry + offsetof(container::IndexEntry, crc), crc ^ 1u);
    reseal_index(bytes);
    test::write_file(path, bytes);
    auto image = open_image(path);
    REQUIRE_MESSAGE(image.has_value(), test::error_text(image));
    std::string buffer(16, '\0');
    CHECK((*image)->read(0x0, std::as_writable_bytes(std::span(buffer))).has_value());  // chunk #0 is intact
    auto bad = (*image)->read(0x1000, std::as_writable_bytes(std::span(buffer)));
    REQUIRE_FALSE(bad.has_value());
    const auto file_offset = get<std::uint64_t>(bytes, entry + offsetof(container::IndexEntry, file_offset));
    CHECK(bad.error().message == prefix + "chunk #1 (physical 0x1000) at file offset " + hex(file_offset) +
                                     ": CRC-32 " + hex(crc) + " of the decompressed chunk does not match the index's " +
                                     hex(crc ^ 1u));
  }
  SUBCASE("table checksum mismatch") {
    auto bytes = good;
    bytes[header.index_offset + 1] ^= 0x40;
    test::write_file(path, bytes);
    CHECK(open_error(path).starts_with(prefix + "chunk index at offset " + hex(header.index_offset) + ": CRC-32 "));
  }
  SUBCASE("absurd chunk count") {
    auto bytes = good;
    put(bytes, offsetof(container::Header, chunk_count), std::uint64_t{1} << 40);
    reseal_header(bytes);
    test::write_file(path, bytes);
    CHECK(open_error(path) == prefix + "chunk count 1099511627776 at offset 0x18 exceeds the cap 16777216");
  }
  SUBCASE("header checksum") {
    auto bytes = good;
    put(bytes, offsetof(container::Header, chunk_count), std::uint64_t{5});
    test::write_file(path, bytes);
    CHECK(open_error(path).starts_with(prefix + "header CRC-32 "));
  }
  SUBCASE("unknown version") {
    auto bytes = good;
    put(bytes, offsetof(container::Header, version), std::uint32_t{2});
    reseal_header(bytes);
    test::write_file(path, bytes);
    CHECK(open_error(path) == prefix + "version 2 at offset 0x8 (this build reads version 1)");
  }
  SUBCASE("a chunk missing for a range") {
    auto bytes = good;
    put(bytes, offsetof(container::Header, chunk_count), std::uint64_t{3});
    const auto index = std::as_bytes(std::span(bytes)).subspan(header.index_offset, 3 * sizeof(container::IndexEntry));
    put(bytes, offsetof(container::Header, index_crc), container::crc32(index));
    reseal_header(bytes);
    test::write_file(path, bytes);
    CHECK(open_error(path) == prefix + "chunk index at offset " + hex(header.index_offset) +
                                  " has no chunk for physical 0x101000 (range 0x101100-0x101200)");
  }
  SUBCASE("truncated file") {
    test::write_file(path, good.substr(0, 50));
    CHECK(open_error(path) == prefix + "file (0x32 bytes) is shorter than the 96-byte header");
  }
}

TEST_CASE("a raw image as one .gz or .zst stream is refused with a pointer to convert, and converts") {
  const auto dir = test::scratch_dir("container-stream");
  const std::string raw = pattern(0x5000, 7);
  test::write_file(dir / "memory.raw", raw);
  REQUIRE(std::system(("gzip -k -9 '" + (dir / "memory.raw").string() + "'").c_str()) == 0);
  REQUIRE(
      std::system(("zstd -q -19 '" + (dir / "memory.raw").string() + "' -o '" + (dir / "memory.raw.zst").string() + "'")
                      .c_str()) == 0);
  for (const char* name : {"memory.raw.gz", "memory.raw.zst"}) {
    CAPTURE(name);
    const auto input = dir / name;
    const std::string kind = std::string(name).ends_with(".gz") ? "gzip" : "zstd";
    CHECK(open_error(input) ==
          "'" + input.string() + "' (" + std::to_string(fs::file_size(input)) + " bytes) is a " + kind +
              "-compressed stream, which cannot be read at random offsets: run `vmi-forensics convert " +
              input.string() + " OUT.vmic` to make a seekable container, then analyse OUT.vmic");
    const auto output = dir / (std::string(name) + ".vmic");
    auto stats = convert_to_container(input, output);
    REQUIRE_MESSAGE(stats.has_value(), test::error_text(stats));
    CHECK(stats->source_format == "raw (" + kind + ")");
    auto image = open_image(output);
    REQUIRE_MESSAGE(image.has_value(), test::error_text(image));
    REQUIRE((*image)->ranges().size() == 1);
    CHECK((*image)->ranges()[0] == Range{0, raw.size()});
    std::string read(raw.size(), '\0');
    REQUIRE(read_exact(**image, 0, std::as_writable_bytes(std::span(read))).has_value());
    CHECK(read == raw);
  }
  // A stream cut short is an error, and leaves no output behind.
  const auto gz = test::read_file(dir / "memory.raw.gz");
  test::write_file(dir / "cut.gz", gz.substr(0, gz.size() / 2));
  auto cut = convert_to_container(dir / "cut.gz", dir / "cut.vmic");
  REQUIRE_FALSE(cut.has_value());
  CHECK(cut.error().message.starts_with("gzip stream '" + (dir / "cut.gz").string() +
                                        "': stream ends before its end marker at offset "));
  CHECK_FALSE(fs::exists(dir / "cut.vmic"));
  CHECK_FALSE(fs::exists(dir / "cut.vmic.partial"));
  // A compressed LiME dump is not a raw image: refused rather than stored as memory.
  test::write_file(dir / "dump.lime", lime_header(0, 0xfff) + pattern(0x1000, 9));
  REQUIRE(std::system(("gzip -k '" + (dir / "dump.lime").string() + "'").c_str()) == 0);
  auto lime = convert_to_container(dir / "dump.lime.gz", dir / "lime.vmic");
  REQUIRE_FALSE(lime.has_value());
  CHECK(lime.error().message ==
        "gzip stream '" + (dir / "dump.lime.gz").string() +
            "' holds a LiME dump, not a raw image: decompress it and open or convert the result");
}

TEST_CASE("real samples converted to containers: raw bytes, /proc truth and vCPU registers survive") {
  for (const auto& sample : test::load_samples()) {
    CAPTURE(sample.name);
    const auto dir = test::scratch_dir("container-real-" + sample.name);
    auto raw = open_image(sample.dir / "memory.raw");
    auto elf = open_image(sample.dir / "memory.elf");
    REQUIRE(raw.has_value());
    REQUIRE(elf.has_value());
    // memory.raw through the library, memory.elf through the CLI.
    auto stats = convert_to_container(sample.dir / "memory.raw", dir / "from-raw.vmic");
    REQUIRE_MESSAGE(stats.has_value(), test::error_text(stats));
    CHECK(stats->guest_bytes == std::stoull(sample.env.at("RAM_BYTES")));
    const auto cli = test::run_cli({"convert", (sample.dir / "memory.elf").string(), (dir / "from-elf.vmic").string()});
    REQUIRE_MESSAGE(cli.exit_code == 0, cli.err);
    CHECK(cli.err.starts_with("wrote " + (dir / "from-elf.vmic").string() + ": elf-core"));

    for (const char* name : {"from-raw.vmic", "from-elf.vmic"}) {
      CAPTURE(name);
      const bool from_elf = std::string(name) == "from-elf.vmic";
      auto image = open_image(dir / name);
      REQUIRE_MESSAGE(image.has_value(), test::error_text(image));
      const PhysicalImage& source = from_elf ? **elf : **raw;
      CHECK(std::equal((*image)->ranges().begin(), (*image)->ranges().end(), source.ranges().begin(),
                       source.ranges().end()));
      // (a) every guest-physical byte equals memory.raw over all of its ranges
      CHECK(test::check_same_bytes(**image, **raw) == std::stoull(sample.env.at("RAM_BYTES")));
      // (c) the ELF source's vCPU registers survive conversion
      const auto cpus = (*image)->cpu_states();
      REQUIRE(cpus.size() == source.cpu_states().size());
      for (std::size_t i = 0; i < cpus.size(); ++i) {
        CHECK(cpus[i].index == source.cpu_states()[i].index);
        CHECK(cpus[i].registers == source.cpu_states()[i].registers);
      }
      if (from_elf) {
        REQUIRE_FALSE(cpus.empty());
        CHECK(cpus[0].registers.count("cr3") == 1);
      }
      const auto fact_list = (*image)->facts();
      std::map<std::string, std::string> facts(fact_list.begin(), fact_list.end());
      CHECK(facts.at("source format") == std::string(source.format()));
      image->reset();
      // (b) pslist through the container equals the guest's own /proc
      Session session = test::open_sample(dir / name, test::profile_for(sample));
      test::check_pslist_equals_proc(session, sample);
      CHECK(session.diagnostics().warnings().empty());
    }
    // `info` on a container shows the preserved source format, ranges and vCPU state.
    const auto info = test::run_cli(
        {"--profile", test::profile_for(sample).string(), "--no-cache", "info", (dir / "from-elf.vmic").string()});
    CHECK_MESSAGE(info.exit_code == 0, info.err);
    CHECK(info.out.find("vmi-container") != std::string::npos);
    const auto source_line = info.out.find("source format ");
    REQUIRE(source_line != std::string::npos);
    CHECK(info.out.substr(source_line, info.out.find('\n', source_line) - source_line).ends_with(" elf-core"));
    CHECK(info.out.find("vCPU 0") != std::string::npos);
    CHECK(info.out.find("cr3=") != std::string::npos);
    fs::remove_all(dir);
  }
}
