// Physical layers: raw (dense and sparse), ELF core fixtures, detection and malformed input.
#include <doctest/doctest.h>
#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "support.hpp"
#include "vmi/image.hpp"

using namespace vmi;

namespace {

std::string pattern(std::size_t size, std::uint8_t seed) {
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 7 + seed) & 0xff);
  return bytes;
}

template <class T>
void put(std::string& bytes, std::size_t offset, const T& value) {
  if (bytes.size() < offset + sizeof value) bytes.resize(offset + sizeof value);
  std::memcpy(bytes.data() + offset, &value, sizeof value);
}

// An ELF core as QEMU writes it: a NOTE segment with one vCPU's NT_PRSTATUS and QEMU note,
// then two PT_LOAD segments at physical 0x0 (8 KiB) and 0x100000 (4 KiB).
std::string elf_core_fixture() {
  std::string bytes(0x1000, '\0');
  Elf64_Ehdr header{};
  std::memcpy(header.e_ident, ELFMAG, SELFMAG);
  header.e_ident[EI_CLASS] = ELFCLASS64;
  header.e_ident[EI_DATA] = ELFDATA2LSB;
  header.e_ident[EI_VERSION] = EV_CURRENT;
  header.e_type = ET_CORE;
  header.e_machine = EM_X86_64;
  header.e_version = EV_CURRENT;
  header.e_phoff = sizeof(Elf64_Ehdr);
  header.e_ehsize = sizeof(Elf64_Ehdr);
  header.e_phentsize = sizeof(Elf64_Phdr);
  header.e_phnum = 3;
  put(bytes, 0, header);

  // Notes at 0x200: "CORE"/NT_PRSTATUS (336 bytes, rip at 112 + 16*8) then "QEMU" (440 bytes, cr3 at 392 + 3*8).
  std::string notes;
  auto add_note = [&](const char* name, std::uint32_t type, const std::string& desc) {
    Elf64_Nhdr nh{static_cast<Elf64_Word>(std::strlen(name) + 1), static_cast<Elf64_Word>(desc.size()), type};
    notes.append(reinterpret_cast<const char*>(&nh), sizeof nh);
    std::string padded_name(name);
    padded_name.resize((padded_name.size() + 1 + 3) & ~std::size_t{3}, '\0');
    notes += padded_name + desc;
  };
  std::string prstatus(336, '\0');
  put(prstatus, 112 + 16 * 8, std::uint64_t{0xffffffff81234567});  // rip
  add_note("CORE", NT_PRSTATUS, prstatus);
  std::string qemu(440, '\0');
  put(qemu, 0, std::uint32_t{1});                            // version
  put(qemu, 4, std::uint32_t{440});                          // size, including kernel_gs_base
  put(qemu, 8 + 16 * 8, std::uint64_t{0xffffffff81234567});  // rip, as in NT_PRSTATUS
  put(qemu, 392 + 3 * 8, std::uint64_t{0x1a2b000});          // cr3
  put(qemu, 432, std::uint64_t{0xffff888000001000});         // kernel_gs_base
  add_note("QEMU", 0, qemu);
  std::memcpy(bytes.data() + 0x200, notes.data(), notes.size());

  Elf64_Phdr note{PT_NOTE, 0, 0x200, 0, 0, notes.size(), notes.size(), 1};
  Elf64_Phdr low{PT_LOAD, 0, 0x1000, 0, 0x0, 0x2000, 0x2000, 0};
  Elf64_Phdr high{PT_LOAD, 0, 0x3000, 0, 0x100000, 0x1000, 0x1000, 0};
  put(bytes, sizeof(Elf64_Ehdr), note);
  put(bytes, sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr), low);
  put(bytes, sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr), high);
  bytes.resize(0x1000);
  bytes += pattern(0x2000, 1) + pattern(0x1000, 2);
  return bytes;
}

Expected<std::unique_ptr<PhysicalImage>> open_bytes(const std::string& name, const std::string& bytes) {
  const auto path = test::scratch_dir("layers-" + name) / name;
  test::write_file(path, bytes);
  return open_image(path);
}

}  // namespace

TEST_CASE("a raw image maps file offsets to physical addresses and stops at its end") {
  const std::string bytes = pattern(3 * 4096, 5);
  auto image = open_bytes("dense.raw", bytes);
  REQUIRE(image.has_value());
  CHECK((*image)->format() == "raw");
  REQUIRE((*image)->ranges().size() == 1);
  CHECK((*image)->ranges()[0] == Range{0, 3 * 4096});
  std::string buffer(16, '\0');
  auto got = (*image)->read(0x1ff8, std::as_writable_bytes(std::span(buffer.data(), buffer.size())));
  CHECK(got.value() == 16);
  CHECK(buffer == bytes.substr(0x1ff8, 16));
  got = (*image)->read(3 * 4096 - 4, std::as_writable_bytes(std::span(buffer.data(), buffer.size())));
  CHECK(got.value() == 4);  // short at the end of the data
  auto past = (*image)->read(3 * 4096, std::as_writable_bytes(std::span(buffer.data(), buffer.size())));
  REQUIRE_FALSE(past.has_value());
  CHECK(past.error().code == Errc::unmapped);
  CHECK(past.error().message.ends_with("no data at physical 0x3000"));
}

TEST_CASE("a sparse raw image keeps its file holes as holes") {
  const auto path = test::scratch_dir("sparse") / "sparse.raw";
  {
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    const std::string page = pattern(1 << 20, 3);
    REQUIRE(::pwrite(fd, page.data(), page.size(), 0) == static_cast<ssize_t>(page.size()));
    REQUIRE(::pwrite(fd, page.data(), page.size(), 8 << 20) == static_cast<ssize_t>(page.size()));
    ::close(fd);
  }
  auto image = open_image(path);
  REQUIRE(image.has_value());
  auto ranges = (*image)->ranges();
  REQUIRE(ranges.size() == 2);
  CHECK(ranges[0] == Range{0, 1 << 20});
  CHECK(ranges[1] == Range{8 << 20, 9 << 20});
  std::byte one[1];
  CHECK((*image)->read(4 << 20, one).error().code == Errc::unmapped);
}

TEST_CASE("an ELF core places PT_LOAD segments by physical address and exposes vCPU registers") {
  const std::string bytes = elf_core_fixture();
  auto image = open_bytes("fixture.elf", bytes);
  REQUIRE(image.has_value());
  CHECK((*image)->format() == "elf-core");
  auto ranges = (*image)->ranges();
  REQUIRE(ranges.size() == 2);
  CHECK(ranges[0] == Range{0, 0x2000});
  CHECK(ranges[1] == Range{0x100000, 0x101000});
  std::string buffer(8, '\0');
  REQUIRE((*image)->read(0x100010, std::as_writable_bytes(std::span(buffer.data(), 8))).value() == 8);
  CHECK(buffer == bytes.substr(0x3010, 8));
  auto cpus = (*image)->cpu_states();
  REQUIRE(cpus.size() == 1);
  CHECK(cpus[0].registers.at("rip") == 0xffffffff81234567);
  CHECK(cpus[0].registers.at("cr3") == 0x1a2b000);
  CHECK(cpus[0].registers.at("kernel_gs_base") == 0xffff888000001000);
}

TEST_CASE("malformed ELF cores end in an error naming the file and the offset") {
  std::string bytes = elf_core_fixture();
  SUBCASE("segment past end of file") {
    Elf64_Phdr high{PT_LOAD, 0, 0x3000, 0, 0x100000, 0x100000, 0x100000, 0};
    put(bytes, sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr), high);
    auto image = open_bytes("past.elf", bytes);
    REQUIRE_FALSE(image.has_value());
    CHECK(image.error().message.find("past.elf': segment #2 (file 0x3000 + 0x100000) runs past end of file (0x4000)") !=
          std::string::npos);
  }
  SUBCASE("overlapping segments") {
    Elf64_Phdr high{PT_LOAD, 0, 0x3000, 0, 0x1000, 0x1000, 0x1000, 0};
    put(bytes, sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr), high);
    auto image = open_bytes("overlap.elf", bytes);
    REQUIRE_FALSE(image.has_value());
    CHECK(image.error().message.find("overlap.elf': segments overlap at physical 0x1000") != std::string::npos);
  }
  SUBCASE("absurd program header count") {
    put(bytes, offsetof(Elf64_Ehdr, e_phnum), std::uint16_t{60000});
    auto image = open_bytes("count.elf", bytes);
    REQUIRE_FALSE(image.has_value());
    CHECK(image.error().message.find("60000 program headers at 0x40 run past end of file (0x4000)") !=
          std::string::npos);
  }
  SUBCASE("truncated header") {
    auto image = open_bytes("short.elf", bytes.substr(0, 40));
    REQUIRE_FALSE(image.has_value());
    CHECK(image.error().message.find("short.elf': file (0x28 bytes) is shorter than an ELF header") !=
          std::string::npos);
  }
  SUBCASE("not a core") {
    put(bytes, offsetof(Elf64_Ehdr, e_type), std::uint16_t{ET_EXEC});
    auto image = open_bytes("exec.elf", bytes);
    REQUIRE_FALSE(image.has_value());
    CHECK(image.error().message.find("ELF type 2 is not a core file") != std::string::npos);
  }
}

TEST_CASE("files that are not memory images are refused with one clear message") {
  auto empty = open_bytes("empty.raw", "");
  REQUIRE_FALSE(empty.has_value());
  CHECK(empty.error().message.ends_with("empty.raw' is empty"));
  auto text = open_bytes("notes.txt", "these are my notes, not a memory image\n");
  REQUIRE_FALSE(text.has_value());
  CHECK(
      text.error().message.ends_with("notes.txt' (39 bytes) is not a memory image: no known header, and not a whole "
                                     "number of 4 KiB pages as a raw image would be"));
  auto missing = open_image("/nonexistent/dump.raw");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().message == "cannot open '/nonexistent/dump.raw': No such file or directory");
}
