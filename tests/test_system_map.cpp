// System.map parsing, and whole profiles built from a hand-made vmlinux ELF with .BTF.
#include <doctest/doctest.h>

#include "support.hpp"

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "vmi/vmlinux.hpp"

using namespace vmi;

TEST_CASE("System.map lines become symbols, every type letter included") {
  const std::string text =
      "0000000000000000 D __per_cpu_start\n"
      "00000000000001ea A kexec_control_code_size\n"
      "ffffffff81000000 T _text\r\n"  // CRLF tolerated
      "\n"                            // blank lines are not errors
      "ffffffff82161900 R linux_banner\n"
      "ffffffffc0a01000 t helper\t[kvm]\n"  // kallsyms' module column
      "ffffffff82a1aa40 D init_task";       // no final newline
  auto map = parse_system_map(text, "test.map");
  REQUIRE(map.has_value());
  REQUIRE(map->symbols.size() == 6);
  CHECK(map->symbols[0].name == "__per_cpu_start");
  CHECK(map->symbols[0].address == 0);
  CHECK(map->symbols[0].type == 'D');
  CHECK(map->symbols[1].name == "kexec_control_code_size");
  CHECK(map->symbols[1].address == 0x1ea);
  CHECK(map->symbols[1].type == 'A');
  CHECK(map->symbols[2].name == "_text");
  CHECK(map->symbols[2].address == 0xffffffff81000000ull);
  CHECK(map->symbols[4].name == "helper");
  CHECK(map->symbols[4].type == 't');
  CHECK(map->symbols[5].name == "init_task");
  CHECK(map->symbols[5].address == 0xffffffff82a1aa40ull);
  CHECK(map->malformed_lines == 0);
  CHECK(map->duplicate_names == 0);
}

TEST_CASE("System.map duplicate names keep the last address, as dwarf2json does") {
  auto map = parse_system_map(
      "ffffffff81001000 t cleanup\n"
      "ffffffff81000000 T _text\n"
      "ffffffff81002000 t cleanup\n",
      "dup.map");
  REQUIRE(map.has_value());
  REQUIRE(map->symbols.size() == 2);
  CHECK(map->symbols[0].name == "cleanup");
  CHECK(map->symbols[0].address == 0xffffffff81002000ull);
  CHECK(map->duplicate_names == 1);
}

TEST_CASE("System.map malformed lines are skipped and counted, up to a cap") {
  auto map = parse_system_map(
      "ffffffff81000000 T _text\n"
      "zzzzzzzz T bad_address\n"
      "ffffffff81000000 T\n"  // no name
      "ffffffff81000000 TT two_letters\n"
      "1ffffffff81000000 T seventeen_digits\n"
      "ffffffff81000000 T name extra words\n"
      "ffffffff81000010 T ok\n",
      "mixed.map");
  REQUIRE(map.has_value());
  CHECK(map->symbols.size() == 2);
  CHECK(map->malformed_lines == 5);

  std::string long_name =
      "ffffffff81000000 T " + std::string(kMaxSymbolNameLength + 1, 'x') + "\nffffffff81000000 T y\n";
  auto capped = parse_system_map(long_name, "long.map");
  REQUIRE(capped.has_value());
  CHECK(capped->malformed_lines == 1);

  std::string garbage;
  for (std::size_t i = 0; i <= kMaxSystemMapBadLines; ++i) garbage += "this is not a map\n";
  auto rejected = parse_system_map("ffffffff81000000 T _text\n" + garbage, "garbage.map");
  REQUIRE_FALSE(rejected.has_value());
  CHECK(rejected.error().code == Errc::bad_format);
  CHECK(rejected.error().message == "garbage.map: not a System.map: 65 malformed lines, the first at line 2");
}

TEST_CASE("System.map without symbols is an error; Debian's placeholder says where the real one is") {
  auto placeholder =
      parse_system_map("ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n",
                       "System.map-6.1.0-56-amd64");
  REQUIRE_FALSE(placeholder.has_value());
  CHECK(placeholder.error().code == Errc::bad_format);
  CHECK(placeholder.error().message ==
        "System.map-6.1.0-56-amd64: System.map has no symbols (1 malformed lines); this is Debian's placeholder, "
        "the real map is in the linux-image-<version>-dbg package");
  auto empty = parse_system_map("", "empty.map");
  REQUIRE_FALSE(empty.has_value());
  CHECK(empty.error().message == "empty.map: System.map has no symbols");
}

// ---------------------------------------------------------------------------------------------
// A minimal vmlinux: ELF64 header, .rodata (banner), .data..percpu, .BTF, optional symbol table.

namespace {

constexpr std::uint64_t kRodata = 0xffffffff82000000ull;
const std::string kBanner = "Linux version 6.1.0-test (gcc) #1 SMP\n";

void put(std::vector<std::byte>& b, std::size_t at, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) b[at + i] = std::byte{static_cast<std::uint8_t>(value >> (8 * i))};
}
void append(std::vector<std::byte>& b, const void* data, std::size_t size) {
  const auto* p = static_cast<const std::byte*>(data);
  b.insert(b.end(), p, p + size);
}

// BTF: int; struct task { int pid; }; per-CPU vars my_task (at 0x100) and other (at 0x180).
std::vector<std::byte> tiny_btf() {
  const char strings[] = "\0int\0task\0pid\0my_task\0other\0.data..percpu";  // offsets 0,1,5,10,14,22,28
  const std::uint32_t words[] = {
      1,  0x01000000, 4,     0x01000020,  // #1 INT "int", size 4, signed, 32 bits
      5,  0x04000001, 4,                  // #2 STRUCT "task", vlen 1, size 4
      10, 1,          0,                  //    member "pid": #1 at bit 0
      14, 0x0e000000, 2,     1,           // #3 VAR "my_task": #2, global
      22, 0x0e000000, 1,     1,           // #4 VAR "other": #1, global
      28, 0x0f000002, 0x200,              // #5 DATASEC ".data..percpu", vlen 2, size 0x200
      3,  0x100,      4,                  //    #3 at 0x100
      4,  0x180,      4,                  //    #4 at 0x180
  };
  const std::uint32_t header[] = {0x0001eb9f, 24, 0, sizeof words, sizeof words, sizeof strings};
  std::vector<std::byte> b;
  append(b, header, sizeof header);
  append(b, words, sizeof words);
  append(b, strings, sizeof strings);
  return b;
}

struct SectionSpec {
  std::string name;
  std::uint32_t type;
  std::uint64_t flags, address;
  std::vector<std::byte> data;
  std::uint32_t link = 0;
  std::uint64_t entsize = 0;
};

std::vector<std::byte> make_elf(bool with_btf, bool with_symtab) {
  std::vector<std::byte> rodata(0x40);
  std::memcpy(rodata.data() + 0x10, kBanner.c_str(), kBanner.size() + 1);  // linux_banner at +0x10
  std::vector<SectionSpec> sections = {
      {".rodata", 1, 0x2, kRodata, rodata},                         // PROGBITS, ALLOC
      {".data..percpu", 1, 0x3, 0, std::vector<std::byte>(0x200)},  // PROGBITS, WRITE|ALLOC, linked at 0
  };
  if (with_btf) sections.push_back({".BTF", 1, 0x2, 0xffffffff82100000ull, tiny_btf()});
  if (with_symtab) {
    const char names[] = "\0linux_banner\0my_task\0vmlinux.c";  // offsets 0, 1, 14, 22
    std::vector<std::byte> symbols(24 * 4);                     // Elf64_Sym[4]; [0] is null
    put(symbols, 24 + 0, 1, 4);                                 // linux_banner
    symbols[24 + 4] = std::byte{0x11};                          //   GLOBAL OBJECT
    put(symbols, 24 + 8, kRodata + 0x10, 8);                    //   st_value
    put(symbols, 24 + 16, kBanner.size() + 1, 8);               //   st_size
    put(symbols, 48 + 0, 14, 4);                                // my_task
    symbols[48 + 4] = std::byte{0x11};
    put(symbols, 48 + 8, 0x100, 8);
    put(symbols, 72 + 0, 22, 4);  // vmlinux.c: a FILE symbol, skipped
    symbols[72 + 4] = std::byte{0x04};
    const std::size_t strtab_index = sections.size() + 2;  // null section first, symtab before it
    sections.push_back({".symtab", 2, 0, 0, symbols, static_cast<std::uint32_t>(strtab_index), 24});
    sections.push_back({".strtab", 3, 0, 0,
                        std::vector<std::byte>(reinterpret_cast<const std::byte*>(names),
                                               reinterpret_cast<const std::byte*>(names) + sizeof names)});
  }
  std::string shstrtab(1, '\0');
  std::vector<std::uint32_t> name_offsets;
  for (const auto& s : sections) {
    name_offsets.push_back(static_cast<std::uint32_t>(shstrtab.size()));
    shstrtab += s.name + '\0';
  }
  name_offsets.push_back(static_cast<std::uint32_t>(shstrtab.size()));
  shstrtab += std::string(".shstrtab") + '\0';
  sections.push_back({".shstrtab", 3, 0, 0,
                      std::vector<std::byte>(reinterpret_cast<const std::byte*>(shstrtab.data()),
                                             reinterpret_cast<const std::byte*>(shstrtab.data()) + shstrtab.size())});

  std::vector<std::byte> elf(64);
  std::vector<std::uint64_t> offsets;
  for (const auto& s : sections) {
    offsets.push_back(elf.size());
    elf.insert(elf.end(), s.data.begin(), s.data.end());
  }
  const std::uint64_t shoff = elf.size();
  elf.resize(shoff + 64 * (sections.size() + 1));  // section header 0 stays null
  for (std::size_t i = 0; i < sections.size(); ++i) {
    const std::size_t sh = shoff + 64 * (i + 1);
    put(elf, sh + 0x00, name_offsets[i], 4);          // sh_name
    put(elf, sh + 0x04, sections[i].type, 4);         // sh_type
    put(elf, sh + 0x08, sections[i].flags, 8);        // sh_flags
    put(elf, sh + 0x10, sections[i].address, 8);      // sh_addr
    put(elf, sh + 0x18, offsets[i], 8);               // sh_offset
    put(elf, sh + 0x20, sections[i].data.size(), 8);  // sh_size
    put(elf, sh + 0x28, sections[i].link, 4);         // sh_link
    put(elf, sh + 0x38, sections[i].entsize, 8);      // sh_entsize
  }
  const char magic[] = {0x7f, 'E', 'L', 'F'};
  std::memcpy(elf.data(), magic, sizeof magic);
  elf[4] = std::byte{2};                   // ELFCLASS64
  elf[5] = std::byte{1};                   // little-endian
  elf[6] = std::byte{1};                   // EV_CURRENT
  put(elf, 0x10, 2, 2);                    // e_type: EXEC
  put(elf, 0x12, 62, 2);                   // e_machine: x86-64
  put(elf, 0x28, shoff, 8);                // e_shoff
  put(elf, 0x34, 64, 2);                   // e_ehsize
  put(elf, 0x3a, 64, 2);                   // e_shentsize
  put(elf, 0x3c, sections.size() + 1, 2);  // e_shnum
  put(elf, 0x3e, sections.size(), 2);      // e_shstrndx: the last one
  return elf;
}

// A file in the temporary directory, removed at scope exit.
struct TempFile {
  std::filesystem::path path;
  TempFile(const std::string& name, const void* data, std::size_t size) {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("vmi-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" + name);
    std::ofstream(path, std::ios::binary).write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
};

}  // namespace

TEST_CASE("vmlinux + System.map: BTF types, map symbols, banner, per-CPU variable types") {
  const auto elf_bytes = make_elf(true, false);
  const TempFile vmlinux("vmlinux", elf_bytes.data(), elf_bytes.size());
  const std::string map_text =
      "ffffffff81000000 T _text\n"
      "ffffffff82000010 R linux_banner\n"
      "0000000000000100 D my_task\n"
      "0000000000000200 d other\n";  // BTF places "other" at 0x180: a different variable
  const TempFile map("System.map", map_text.data(), map_text.size());

  VmlinuxProfileNotes notes;
  auto profile = build_profile_from_vmlinux(vmlinux.path, map.path, &notes);
  REQUIRE_MESSAGE(profile.has_value(), test::error_text(profile));
  CHECK(profile->banner() == "Linux version 6.1.0-test (gcc) #1 SMP");
  CHECK(profile->producer() == "vmi-forensics btf");
  CHECK(profile->format_version() == "6.2.0");
  CHECK(profile->os() == "linux");
  CHECK(profile->pointer_size() == 8);
  CHECK(profile->find_base_type("pointer")->size == 8);
  CHECK(profile->find_aggregate("task")->size == 4);

  const Symbol* banner = profile->find_symbol("linux_banner");
  REQUIRE(banner != nullptr);
  CHECK(banner->address == kRodata + 0x10);
  CHECK(profile->str(banner->constant_data) == kBanner + std::string(1, '\0'));
  CHECK(profile->symbol_address("_text") == 0xffffffff81000000ull);

  const Symbol* my_task = profile->find_symbol("my_task");
  REQUIRE(my_task != nullptr);
  CHECK(profile->aggregate_of(my_task->type) == profile->find_aggregate("task"));
  const Symbol* other = profile->find_symbol("other");
  REQUIRE(other != nullptr);
  CHECK(profile->type(other->type).kind == TypeKind::base);
  CHECK(profile->str(profile->type(other->type).name) == "void");

  CHECK(notes.symbol_source == "System.map");
  CHECK(notes.symbols == 4);
  CHECK(notes.typed_symbols == 1);
  CHECK(notes.banner_bytes == kBanner.size() + 1);
  CHECK(notes.btf.btf_types == 5);
}

TEST_CASE("vmlinux with a symbol table needs no System.map") {
  const auto elf_bytes = make_elf(true, true);
  const TempFile vmlinux("vmlinux", elf_bytes.data(), elf_bytes.size());
  VmlinuxProfileNotes notes;
  auto profile = build_profile_from_vmlinux(vmlinux.path, std::nullopt, &notes);
  REQUIRE_MESSAGE(profile.has_value(), test::error_text(profile));
  CHECK(notes.symbol_source == "ELF symbol table");
  CHECK(notes.symbols == 2);  // the FILE symbol is not one
  CHECK(profile->banner() == "Linux version 6.1.0-test (gcc) #1 SMP");
  CHECK(profile->symbol_address("my_task") == 0x100);
  CHECK(profile->find_symbol("vmlinux.c") == nullptr);
}

TEST_CASE("vmlinux errors: no .BTF, stripped without a map, not an ELF, truncated") {
  const auto no_btf = make_elf(false, true);
  const TempFile a("no-btf", no_btf.data(), no_btf.size());
  auto missing = build_profile_from_vmlinux(a.path, std::nullopt);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code == Errc::not_found);
  CHECK(missing.error().message.find("no .BTF section") != std::string::npos);

  const auto stripped = make_elf(true, false);
  const TempFile b("stripped", stripped.data(), stripped.size());
  auto no_symbols = build_profile_from_vmlinux(b.path, std::nullopt);
  REQUIRE_FALSE(no_symbols.has_value());
  CHECK(no_symbols.error().message.find("pass its System.map") != std::string::npos);

  const std::string text = "not an elf file at all, but long enough to hold an ELF header: 0123456789";
  const TempFile c("text", text.data(), text.size());
  auto not_elf = build_profile_from_vmlinux(c.path, std::nullopt);
  REQUIRE_FALSE(not_elf.has_value());
  CHECK(not_elf.error().code == Errc::bad_format);

  // Cut inside the section header table: the reader reports the range it could not read.
  const std::vector<std::byte> cut(stripped.begin(), stripped.end() - 100);
  const TempFile d("cut", cut.data(), cut.size());
  auto truncated = build_profile_from_vmlinux(d.path, std::nullopt);
  REQUIRE_FALSE(truncated.has_value());
  CHECK(truncated.error().code == Errc::truncated);
  CHECK(truncated.error().message.find("section header table") != std::string::npos);

  auto absent = build_profile_from_vmlinux("/nonexistent/vmlinux", std::nullopt);
  REQUIRE_FALSE(absent.has_value());
  CHECK(absent.error().code == Errc::io);
}
