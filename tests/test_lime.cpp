// LiME: byte-array fixtures with corrupted variants, a LiME file made from a real raw sample, and
// a real lime.ko capture when samples/lime_capture.py has taken one.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/image.hpp"

using namespace vmi;

namespace {

template <class T>
void put(std::string& bytes, std::size_t offset, const T& value) {
  if (bytes.size() < offset + sizeof value) bytes.resize(offset + sizeof value);
  std::memcpy(bytes.data() + offset, &value, sizeof value);
}

// One 32-byte LiME header: magic "EMiL" (0x4C694D45 LE), version, s_addr, e_addr (inclusive), 8 reserved.
std::string lime_header(std::uint64_t s_addr, std::uint64_t e_addr, std::uint32_t version = 1, std::uint32_t magic = 0x4C694D45) {
  std::string header(32, '\0');
  put(header, 0, magic);
  put(header, 4, version);
  put(header, 8, s_addr);
  put(header, 16, e_addr);
  return header;
}

std::string pattern(std::size_t size, std::uint8_t seed) {
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 13 + seed) & 0xff);
  return bytes;
}

// Two ranges as lime.ko writes them: physical 0x0-0x1fff (8 KiB), then 0x100000-0x100fff (4 KiB).
std::string lime_fixture() {
  return lime_header(0x0, 0x1fff) + pattern(0x2000, 1) + lime_header(0x100000, 0x100fff) + pattern(0x1000, 2);
}

std::string open_error(const std::string& name, const std::string& bytes) {
  const auto path = test::scratch_dir("lime-" + name) / "dump.lime";
  test::write_file(path, bytes);
  auto image = open_image(path);
  REQUIRE_FALSE(image.has_value());
  return image.error().message;
}

std::string prefix(const std::string& name) {
  return "LiME '" + (test::scratch_dir("lime-" + name) / "dump.lime").string() + "': ";
}

}  // namespace

TEST_CASE("LiME fixture: ranges become half-open, reads stop at holes") {
  const auto path = test::scratch_dir("lime-good") / "dump.lime";
  test::write_file(path, lime_fixture());
  auto image = open_image(path);
  REQUIRE_MESSAGE(image.has_value(), test::error_text(image));
  CHECK((*image)->format() == "lime");
  REQUIRE((*image)->ranges().size() == 2);
  CHECK((*image)->ranges()[0] == Range{0x0, 0x2000});
  CHECK((*image)->ranges()[1] == Range{0x100000, 0x101000});
  std::string buffer(0x10, '\0');
  auto n = (*image)->read(0x1ff8, std::as_writable_bytes(std::span(buffer)));
  REQUIRE(n.has_value());
  CHECK(*n == 8);  // the first range ends at 0x2000 (e_addr 0x1fff inclusive)
  CHECK(buffer.substr(0, 8) == pattern(0x2000, 1).substr(0x1ff8));
  REQUIRE((*image)->read(0x100ff0, std::as_writable_bytes(std::span(buffer))).has_value());
  CHECK(buffer == pattern(0x1000, 2).substr(0xff0));
  auto hole = (*image)->read(0x3000, std::as_writable_bytes(std::span(buffer)));
  REQUIRE_FALSE(hole.has_value());
  CHECK(hole.error().code == Errc::unmapped);
}

TEST_CASE("LiME malformed: each error names the file, the header's offset and the numbers") {
  SUBCASE("bad version") {
    auto bytes = lime_fixture();
    put(bytes, 0x2020 + 4, std::uint32_t{2});
    CHECK(open_error("version", bytes) == prefix("version") + "header #1 at offset 0x2020: version 2 (only 1 is defined)");
  }
  SUBCASE("range past end of file") {
    auto bytes = lime_fixture();
    bytes.resize(bytes.size() - 1);
    CHECK(open_error("past-end", bytes) == prefix("past-end") + "header #1 at offset 0x2020: range 0x100000-0x101000 (0x1000 bytes) runs past end of file (0x303f)");
  }
  SUBCASE("overlapping ranges") {
    const auto bytes = lime_header(0x1000, 0x2fff) + pattern(0x2000, 1) + lime_header(0x0, 0x1fff) + pattern(0x2000, 2);
    CHECK(open_error("overlap", bytes) == prefix("overlap") + "range 0x1000-0x3000 (header at offset 0x0) overlaps range 0x0-0x2000 (header at offset 0x2020)");
  }
  SUBCASE("end below start") {
    const auto bytes = lime_header(0x2000, 0x1fff) + pattern(0x1000, 1);
    CHECK(open_error("inverted", bytes) == prefix("inverted") + "header #0 at offset 0x0: end address 0x1fff is below start address 0x2000");
  }
  SUBCASE("bad magic in a later header") {
    auto bytes = lime_fixture();
    put(bytes, 0x2020, std::uint32_t{0x12345678});
    CHECK(open_error("magic", bytes) == prefix("magic") + "header #1 at offset 0x2020: magic 0x12345678 is not 0x4c694d45");
  }
  SUBCASE("header cut short") {
    const auto bytes = lime_fixture() + lime_header(0x200000, 0x200fff).substr(0, 20);
    CHECK(open_error("short", bytes) == prefix("short") + "header #2 at offset 0x3040 is cut short by end of file (0x3054)");
  }
  SUBCASE("absurd range count") {
    std::string bytes;
    for (std::uint64_t i = 0; i <= 65536; ++i) bytes += lime_header(i * 0x1000, i * 0x1000) + "x";
    CHECK(open_error("count", bytes) == prefix("count") + "more than 65536 ranges (next header at offset 0x210000)");
  }
}

// Not a capture by lime.ko: the real raw sample's ranges, each wrapped in a LiME header, which
// is exactly what lime.ko's format=lime writes for the same RAM.
TEST_CASE("LiME converted from a real raw sample: same bytes, pslist equals the guest's /proc") {
  for (const auto& sample : test::load_samples()) {
    CAPTURE(sample.name);
    auto raw = open_image(sample.dir / "memory.raw");
    REQUIRE(raw.has_value());
    const auto path = test::scratch_dir("lime-real-" + sample.name) / "memory.lime";
    {
      std::ofstream out(path, std::ios::binary);
      std::vector<char> buffer(1 << 20);
      for (const Range& range : (*raw)->ranges()) {
        const auto header = lime_header(range.begin, range.end - 1);
        out.write(header.data(), static_cast<std::streamsize>(header.size()));
        for (Addr at = range.begin; at < range.end; at += buffer.size()) {
          const auto size = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), range.end - at));
          REQUIRE(read_exact(**raw, at, std::as_writable_bytes(std::span(buffer)).first(size)).has_value());
          out.write(buffer.data(), static_cast<std::streamsize>(size));
        }
      }
    }
    auto lime = open_image(path);
    REQUIRE_MESSAGE(lime.has_value(), test::error_text(lime));
    CHECK((*lime)->format() == "lime");
    CHECK(std::equal((*lime)->ranges().begin(), (*lime)->ranges().end(), (*raw)->ranges().begin(), (*raw)->ranges().end()));
    lime->reset();
    Session session = test::open_sample(path, test::profile_for(sample));
    test::check_pslist_equals_proc(session, sample);
    std::filesystem::remove(path);
  }
}

// A REAL capture by lime.ko inside the sample kernel (samples/lime_capture.py), when it has been
// taken: while lime.ko dumps, the guest runs init (pid 1), kernel threads, and `busybox insmod`.
TEST_CASE("real LiME capture (samples/lime_capture.py): pslist shows init, kthreadd and the insmod") {
  const auto path = test::samples_dir() / "lime-6.1-4level/memory.lime";
  if (!std::filesystem::exists(path)) {
    MESSAGE("no real LiME capture at ", path.string(), " (run samples/lime_capture.py); skipped");
    return;
  }
  auto image = open_image(path);
  REQUIRE_MESSAGE(image.has_value(), test::error_text(image));
  CHECK((*image)->format() == "lime");
  CHECK((*image)->ranges().size() >= 2);
  image->reset();
  Session session = test::open_sample(path, test::shipped_profile());
  auto table = session.run("pslist");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  std::map<std::int64_t, std::pair<std::int64_t, std::string>> processes;  // pid -> (ppid, comm)
  for (const Row& row : table->rows) {
    processes[std::get<std::int64_t>(row.cells.at(1))] = {std::get<std::int64_t>(row.cells.at(3)), std::get<std::string>(row.cells.at(4))};
  }
  CHECK(processes.at(1) == std::pair<std::int64_t, std::string>{0, "init"});
  CHECK(processes.at(2) == std::pair<std::int64_t, std::string>{0, "kthreadd"});
  const bool insmod_running = std::any_of(processes.begin(), processes.end(), [](const auto& p) { return p.second == std::pair<std::int64_t, std::string>{1, "busybox"}; });
  CHECK(insmod_running);
  CHECK(processes.size() > 20);
}
