// QEMU migration streams: byte-array fixtures (iterative passes, fill pages, libvirt header,
// corrupted variants) and the real `migrate exec:` files of the samples.
#include <doctest/doctest.h>

#include <cstring>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/image.hpp"

using namespace vmi;

namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kZero = 0x02, kMemSize = 0x04, kPageFlag = 0x08, kEos = 0x10, kContinue = 0x20, kXbzrle = 0x40;

struct Stream {
  std::string bytes;
  Stream& u8(std::uint8_t v) {
    bytes.push_back(static_cast<char>(v));
    return *this;
  }
  Stream& be(std::uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) bytes.push_back(static_cast<char>(v >> (8 * i)));
    return *this;
  }
  Stream& str8(const std::string& s) {  // u8 length + bytes (idstr)
    u8(static_cast<std::uint8_t>(s.size()));
    bytes += s;
    return *this;
  }
  Stream& section(std::uint8_t type, std::uint32_t id, const std::string& idstr = {}) {
    u8(type).be(id, 4);
    if (type == 0x01 || type == 0x04) str8(idstr).be(0, 4).be(4, 4);  // instance 0, version 4
    return *this;
  }
  Stream& footer(std::uint32_t id) { return u8(0x7e).be(id, 4); }
  Stream& page(std::uint64_t offset, std::uint64_t flags, const std::string& block, const std::string& data) {
    be(offset | flags, 8);
    if (!(flags & kContinue)) str8(block);
    bytes += data;
    return *this;
  }
};

std::string pattern(std::uint8_t seed) {
  std::string page(kPage, '\0');
  for (std::size_t i = 0; i < kPage; ++i) page[i] = static_cast<char>((i * 11 + seed) & 0xff);
  return page;
}

// pc.ram of 4 pages + a 1-page ROM block. Pass 1 sends page 0 (A), page 1 as fill 0xaa and a ROM
// page; pass 2 resends page 0 (B, which wins); the end section sends page 3 as zero; page 2 is never
// sent. Then a device section (not interpreted) and EOF.
std::string savevm_fixture() {
  Stream s;
  s.be(0x5145564d, 4).be(3, 4);                // "QEVM", version 3
  s.u8(0x07).be(10, 4).bytes += "pc-q35-7.2";  // configuration: machine type
  s.section(0x01, 2, "ram");                   // section start: ram
  s.be((4 * kPage + kPage) | kMemSize, 8);     // total of all blocks
  s.str8("pc.ram").be(4 * kPage, 8);
  s.str8("/rom@etc/acpi/tables").be(kPage, 8);
  s.be(kEos, 8).footer(2);
  s.section(0x02, 2);  // part: first pass
  s.page(0, kPageFlag, "pc.ram", pattern(1));
  s.page(kPage, kZero | kContinue, "", std::string(1, '\xaa'));
  s.page(0, kPageFlag, "/rom@etc/acpi/tables", pattern(9));
  s.be(kEos, 8).footer(2);
  s.section(0x02, 2);  // part: second pass
  s.page(0, kPageFlag, "pc.ram", pattern(2));
  s.be(kEos, 8).footer(2);
  s.section(0x03, 2);  // end
  s.page(3 * kPage, kZero, "pc.ram", std::string(1, '\0'));
  s.be(kEos, 8).footer(2);
  s.section(0x04, 3, "timer").be(0x1234, 8).footer(3);
  // vCPU 0's "cpu" section (vmstate_x86_cpu v12): rsp = regs[4], rip at 128, cs's selector at
  // 236 + 1 * 20, gs base at 236 + 5 * 20 + 4, cr3 at 472; the rest zero.
  std::string cpu(488, '\0');
  Stream regs;
  regs.be(0xffffc90000001000, 8);
  cpu.replace(4 * 8, 8, regs.bytes);
  regs.bytes.clear();
  regs.be(0xffffffff81000010, 8);
  cpu.replace(128, 8, regs.bytes);
  regs.bytes.clear();
  regs.be(0xffff888007c00000, 8);
  cpu.replace(236 + 5 * 20 + 4, 8, regs.bytes);
  regs.bytes.clear();
  regs.be(0x33, 4);
  cpu.replace(236 + 1 * 20, 4, regs.bytes);
  regs.bytes.clear();
  regs.be(0x1234000, 8);
  cpu.replace(472, 8, regs.bytes);
  s.u8(0x04).be(4, 4).str8("cpu").be(0, 4).be(12, 4);
  s.bytes += cpu;
  s.footer(4).u8(0x08);
  return s.bytes;
}

std::string libvirt_header(const std::string& xml, std::uint32_t compressed = 0) {
  std::string header(92, '\0');
  std::memcpy(header.data(), "LibvirtQemudSave", 16);
  const std::uint32_t fields[] = {2, static_cast<std::uint32_t>(xml.size()), 1, compressed};
  std::memcpy(header.data() + 16, fields, sizeof fields);
  return header + xml;
}

const test::FormatFixtures kFixtures{"savevm", "vm.state", "QEMU savevm"};

void check_fixture(const PhysicalImage& image) {
  CHECK(image.format() == "qemu-savevm");
  REQUIRE(image.ranges().size() == 2);
  CHECK(image.ranges()[0] == Range{0, 2 * kPage});
  CHECK(image.ranges()[1] == Range{3 * kPage, 4 * kPage});
  std::string bytes(2 * kPage, '\0');
  REQUIRE(read_exact(image, 0, std::as_writable_bytes(std::span(bytes))).has_value());
  CHECK(bytes.substr(0, kPage) == pattern(2));  // the later pass wins
  CHECK(bytes.substr(kPage) == std::string(kPage, '\xaa'));
  auto got = image.read(kPage + 100, std::as_writable_bytes(std::span(bytes)));
  REQUIRE(got.has_value());
  CHECK(*got == kPage - 100);  // stops at the never-sent page 2
  auto hole = image.read(2 * kPage, std::as_writable_bytes(std::span(bytes)));
  REQUIRE_FALSE(hole.has_value());
  CHECK(hole.error().code == Errc::unmapped);
  REQUIRE(read_exact(image, 3 * kPage, std::as_writable_bytes(std::span(bytes).first(kPage))).has_value());
  CHECK(bytes.substr(0, kPage) == std::string(kPage, '\0'));
  const auto facts = test::facts_of(image);
  CHECK(facts.at("savevm machine") == "pc-q35-7.2");
  CHECK(facts.at("savevm RAM blocks") == "pc.ram 0x4000, /rom@etc/acpi/tables 0x1000");
  CHECK(facts.at("savevm guest RAM") == "0x4000 bytes (0x4000 below 4 GiB)");
  CHECK(facts.at("savevm pages") == "3 of 4 sent, 2 as fill pages, 10 records");
  CHECK(facts.at("savevm device state") == "not interpreted, except the registers of 1 \"cpu\" section(s)");
  REQUIRE(image.cpu_states().size() == 1);
  const auto& registers = image.cpu_states()[0].registers;
  CHECK(registers.at("rsp") == 0xffffc90000001000);
  CHECK(registers.at("rip") == 0xffffffff81000010);
  CHECK(registers.at("gs_base") == 0xffff888007c00000);
  CHECK(registers.at("cr3") == 0x1234000);
  CHECK(registers.at("cs") == 0x33);
  CHECK(registers.at("rax") == 0);
}

}  // namespace

TEST_CASE("savevm fixture: passes override, fill pages, unsent pages are holes, ROM blocks skipped") {
  auto image = open_image(kFixtures.write("good", savevm_fixture()));
  REQUIRE_MESSAGE(image.has_value(), test::error_text(image));
  check_fixture(**image);
}

TEST_CASE("savevm fixture behind a libvirt `virsh save` header") {
  auto image = open_image(kFixtures.write("libvirt", libvirt_header("<domain/>\n") + savevm_fixture()));
  REQUIRE_MESSAGE(image.has_value(), test::error_text(image));
  check_fixture(**image);
  CHECK(test::facts_of(**image).at("libvirt save header") == "version 2, 10 bytes of XML");
}

TEST_CASE("savevm fixtures: malformed streams fail with the file, the offset and the numbers") {
  const std::string good = savevm_fixture();
  CHECK(kFixtures.open_error("magic", libvirt_header("<x/>") + "QEVX" + good.substr(4)) ==
        kFixtures.prefix("magic") + "no \"QEVM\" magic at 0x60 (found 0x51455658)");
  CHECK(kFixtures.open_error("short", libvirt_header("<x/>").substr(0, 50)) ==
        kFixtures.prefix("short") + "libvirt save header (92 bytes) at 0x0 runs past end of file (0x32)");
  CHECK(kFixtures.open_error("gzip", libvirt_header("<x/>", 1) + good) ==
        kFixtures.prefix("gzip") +
            "libvirt save image at 0x0 is compressed (format 1); decompress the stream after the XML first");
  CHECK(kFixtures.open_error("version", good.substr(0, 7) + '\x04' + good.substr(8)) ==
        kFixtures.prefix("version") + "stream version 4 at 0x4 (only 3 is read)");
  // The section start is at 0x17, MEM_SIZE at 0x28, pc.ram's entry at 0x30 (length at 0x37).
  {
    std::string bad = good;
    bad[0x37] = '\x01';  // pc.ram length 0x100000000004000: more than the total
    CHECK(kFixtures.open_error("length", bad) ==
          kFixtures.prefix("length") +
              "RAM block 'pc.ram' at 0x30 has length 0x100000000004000, more than the "
              "0x5000 bytes left of the announced total 0x5000");
  }
  {
    std::string bad = good;
    bad[0x29] = '\x01';  // total 0x1000000005000 bytes
    CHECK(kFixtures.open_error("total", bad) ==
          kFixtures.prefix("total") + "RAM total 0x1000000005000 at 0x28 (cap 0x20000000000)");
  }
  {
    Stream s;
    s.be(0x5145564d, 4).be(3, 4).section(0x01, 2, "ram").be(kPage | kMemSize, 8);
    for (int i = 0; i < 1025; ++i) s.str8("b").be(0, 8);
    CHECK(kFixtures.open_error("blocks", s.bytes) ==
          kFixtures.prefix("blocks") + "more than 1024 RAM blocks at " + hex(0x21 + 1024 * 10));
  }
  // The first pass's page 0 record header is at 0x6e, its data at 0x7d.
  CHECK(kFixtures.open_error("page", good.substr(0, 0x7d + 100)) ==
        kFixtures.prefix("page") + "page data of RAM record 0x6e at 0x7d runs past end of file (0xe1)");
  {
    std::string bad = good;
    bad[0x75] = static_cast<char>(kXbzrle);
    CHECK(kFixtures.open_error("xbzrle", bad) ==
          kFixtures.prefix("xbzrle") +
              "RAM record at 0x6e is a XBZRLE-compressed page (disable the xbzrle capability)");
    bad[0x75] = '\x01';
    CHECK(kFixtures.open_error("flags", bad) == kFixtures.prefix("flags") + "RAM record at 0x6e has unknown flags 0x1");
  }
  {
    Stream s;
    s.be(0x5145564d, 4)
        .be(3, 4)
        .section(0x01, 2, "ram")
        .be(kPage | kMemSize, 8)
        .str8("pc.ram")
        .be(kPage, 8)
        .be(kEos, 8);
    s.section(0x02, 2).page(kPage, kPageFlag, "pc.ram", pattern(0));
    CHECK(kFixtures.open_error("outside", s.bytes) ==
          kFixtures.prefix("outside") +
              "RAM record at 0x3d for offset 0x1000 lies outside block 'pc.ram' (0x1000 bytes)");
  }
}

// A stream whose header claims the 1 TiB cap of pc.ram but that sends one page: memory follows
// the records, not the claim (a dense page index took 2 GiB here).
TEST_CASE("savevm claiming 1 TiB of pc.ram with one page sent opens in little memory") {
  constexpr std::uint64_t kRam = std::uint64_t{1} << 40;
  Stream s;
  s.be(0x5145564d, 4).be(3, 4);
  s.u8(0x07).be(10, 4).bytes += "pc-q35-7.2";
  s.section(0x01, 2, "ram").be(kRam | kMemSize, 8).str8("pc.ram").be(kRam, 8).be(kEos, 8).footer(2);
  s.section(0x03, 2).page(kRam - kPage, kPageFlag, "pc.ram", pattern(5)).be(kEos, 8).footer(2).u8(0x08);
  const auto path = kFixtures.write("claims-1tib", s.bytes);
  Expected<std::unique_ptr<PhysicalImage>> image = make_error(Errc::io, "not opened");
  const double growth_mib = test::peak_rss_growth_mib([&] { image = open_image(path); });
  REQUIRE_MESSAGE(image.has_value(), test::error_text(image));
  // q35 with 1 TiB: 2 GiB below 4 GiB, the rest from 4 GiB up, so the last page of pc.ram is at
  // 4 GiB + 1 TiB - 2 GiB - 4 KiB.
  const Addr last = (std::uint64_t{4} << 30) + kRam - (std::uint64_t{2} << 30) - kPage;
  REQUIRE((*image)->ranges().size() == 1);
  CHECK((*image)->ranges()[0] == Range{last, last + kPage});
  std::string bytes(kPage, '\0');
  REQUIRE(read_exact(**image, last, std::as_writable_bytes(std::span(bytes))).has_value());
  CHECK(bytes == pattern(5));
  CHECK_FALSE((*image)->read(0, std::as_writable_bytes(std::span(bytes))).has_value());
  const auto facts = test::facts_of(**image);
  CHECK(facts.at("savevm guest RAM") == "0x10000000000 bytes (0x80000000 below 4 GiB)");
  CHECK(facts.at("savevm pages") == "1 of 268435456 sent, 0 as fill pages, 4 records");
#if !VMI_SANITIZED
  CHECK(growth_mib < 32);  // 4 MiB of chunk pointers and one 4 KiB chunk
#else
  (void)growth_mib;
#endif
}

// Real streams: QEMU 7.2 `migrate "exec:cat > memory.savevm"` of the stopped sample VM.
TEST_CASE("savevm samples hold memory.raw's bytes and give the guest's own pslist") {
  for (const auto& sample : test::load_samples()) {
    CAPTURE(sample.name);
    const auto listed = sample.env.find("EXTRA_FORMATS");
    // build-samples.sh writes these for every sample; an older cache must be rebuilt.
    REQUIRE_MESSAGE(listed != sample.env.end(),
                    ("sample " + sample.name + " predates the kdump/savevm files: rerun samples/build-samples.sh"));
    REQUIRE(listed->second.find("memory.savevm") != std::string::npos);
    auto raw = open_image(sample.dir / "memory.raw");
    auto image = open_image(sample.dir / "memory.savevm");
    REQUIRE(raw.has_value());
    REQUIRE_MESSAGE(image.has_value(), test::error_text(image));
    CHECK((*image)->format() == "qemu-savevm");
    REQUIRE((*image)->ranges().size() == 1);
    CHECK((*image)->ranges()[0] == (*raw)->ranges()[0]);
    CHECK(test::facts_of(**image).at("savevm machine").starts_with("pc-q35-"));
    CHECK(test::check_same_bytes(**image, **raw) == std::stoull(sample.env.at("RAM_BYTES")));
    // The vCPU registers found in the device state equal those QEMU wrote into the kdump notes.
    auto kdump = open_image(sample.dir / "memory.kdump-zlib");
    REQUIRE(kdump.has_value());
    REQUIRE((*image)->cpu_states().size() == (*kdump)->cpu_states().size());
    for (std::size_t cpu = 0; cpu < (*image)->cpu_states().size(); ++cpu) {
      CAPTURE(cpu);
      const auto& got = (*image)->cpu_states()[cpu].registers;
      const auto& want = (*kdump)->cpu_states()[cpu].registers;
      for (const char* name : {"rax", "rbx",    "rcx", "rdx", "rsi", "rdi",     "rsp",     "rbp", "r8", "r15",
                               "rip", "rflags", "cr0", "cr3", "cr4", "gs_base", "fs_base", "cs",  "ss", "ds"}) {
        CAPTURE(name);
        CHECK(got.at(name) == want.at(name));
      }
    }
    Session session = test::open_sample(sample.dir / "memory.savevm", test::profile_for(sample));
    test::check_pslist_equals_proc(session, sample);
    test::check_threads_equal_proc(session, sample);
  }
}
