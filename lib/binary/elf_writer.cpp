// ELF-64 object file format (System V ABI, gABI chapter 4): header, section headers, symbol table.
#include "binary/elf_writer.hpp"

#include <algorithm>
#include <cstring>

namespace vmi::elf {

namespace {

constexpr std::size_t kHeaderSize = 64, kSectionHeaderSize = 64, kSymbolSize = 24;
constexpr std::uint32_t kSymtab = 2, kStrtab = 3;  // SHT_SYMTAB, SHT_STRTAB
constexpr std::uint16_t kRelocatable = 1, kX86_64 = 62;

class Buffer {
 public:
  template <class T>
  void put(T value) {
    const auto at = bytes_.size();
    bytes_.resize(at + sizeof value);
    std::memcpy(bytes_.data() + at, &value, sizeof value);
  }
  void put(std::span<const std::byte> data) {
    const auto* begin = reinterpret_cast<const std::uint8_t*>(data.data());
    bytes_.insert(bytes_.end(), begin, begin + data.size());
  }
  void align(std::size_t to) { bytes_.resize((bytes_.size() + to - 1) / to * to); }
  std::size_t size() const { return bytes_.size(); }
  std::vector<std::uint8_t> take() { return std::move(bytes_); }

 private:
  std::vector<std::uint8_t> bytes_;
};

// A string table: "\0" then each name NUL-terminated; offset 0 is the empty name.
class StringTable {
 public:
  std::uint32_t add(std::string_view name) {
    if (name.empty()) return 0;
    const auto at = static_cast<std::uint32_t>(text_.size());
    text_.append(name);
    text_.push_back('\0');
    return at;
  }
  std::span<const std::byte> bytes() const { return std::as_bytes(std::span(text_)); }

 private:
  std::string text_{'\0'};
};

struct SectionHeader {
  std::uint32_t name = 0, type = 0;
  std::uint64_t flags = 0, address = 0, offset = 0, size = 0;
  std::uint32_t link = 0, info = 0;
  std::uint64_t alignment = 1, entry_size = 0;
};

}  // namespace

std::vector<std::uint8_t> write_relocatable(std::span<const Section> sections, std::span<const Symbol> symbols) {
  StringTable section_names;
  StringTable symbol_names;
  std::vector<SectionHeader> headers(1);  // index 0: the null section
  Buffer out;
  for (std::size_t i = 0; i < kHeaderSize; ++i) out.put(std::uint8_t{0});  // the ELF header, written at the end

  for (const Section& s : sections) {
    out.align(16);
    headers.push_back({section_names.add(s.name), s.type, s.flags, s.address, out.size(), s.bytes.size(), 0, 0,
                       s.type == kNote ? 4u : 16u, 0});
    out.put(s.bytes);
  }

  // Local symbols first: sh_info of .symtab is the index of the first non-local one.
  std::vector<const Symbol*> ordered;
  for (const Symbol& s : symbols) ordered.push_back(&s);
  std::stable_partition(ordered.begin(), ordered.end(),
                        [](const Symbol* s) { return (s->info >> 4) == 0; });  // STB_LOCAL
  const auto first_global = static_cast<std::uint32_t>(
      1 + std::ranges::count_if(ordered, [](const Symbol* s) { return (s->info >> 4) == 0; }));
  out.align(8);
  const std::size_t symtab_offset = out.size();
  for (std::size_t i = 0; i < kSymbolSize; ++i) out.put(std::uint8_t{0});  // the null symbol
  for (const Symbol* s : ordered) {
    out.put(symbol_names.add(s->name));
    out.put(s->info);
    out.put(s->other);
    out.put(s->section);
    out.put(s->value);
    out.put(s->size);
  }
  const auto symtab_index = static_cast<std::uint32_t>(headers.size());
  headers.push_back({section_names.add(".symtab"), kSymtab, 0, 0, symtab_offset, out.size() - symtab_offset,
                     symtab_index + 1, first_global, 8, kSymbolSize});
  const std::size_t strtab_offset = out.size();
  out.put(symbol_names.bytes());
  headers.push_back(
      {section_names.add(".strtab"), kStrtab, 0, 0, strtab_offset, out.size() - strtab_offset, 0, 0, 1, 0});
  const std::uint32_t shstrtab_name = section_names.add(".shstrtab");
  const std::size_t shstrtab_offset = out.size();
  out.put(section_names.bytes());
  headers.push_back({shstrtab_name, kStrtab, 0, 0, shstrtab_offset, out.size() - shstrtab_offset, 0, 0, 1, 0});

  out.align(8);
  const std::size_t section_headers_offset = out.size();
  for (const SectionHeader& h : headers) {
    out.put(h.name);
    out.put(h.type);
    out.put(h.flags);
    out.put(h.address);
    out.put(h.offset);
    out.put(h.size);
    out.put(h.link);
    out.put(h.info);
    out.put(h.alignment);
    out.put(h.entry_size);
  }

  std::vector<std::uint8_t> file = out.take();
  Buffer header;
  header.put(std::span(reinterpret_cast<const std::byte*>("\x7f"
                                                          "ELF\x02\x01\x01"),
                       7));                                  // 64-bit, LSB, v1
  for (int i = 7; i < 16; ++i) header.put(std::uint8_t{0});  // System V ABI
  header.put(kRelocatable);
  header.put(kX86_64);
  header.put(std::uint32_t{1});  // e_version
  header.put(std::uint64_t{0});  // e_entry
  header.put(std::uint64_t{0});  // e_phoff: no program headers
  header.put(std::uint64_t{section_headers_offset});
  header.put(std::uint32_t{0});  // e_flags
  header.put(static_cast<std::uint16_t>(kHeaderSize));
  header.put(std::uint16_t{0});  // e_phentsize
  header.put(std::uint16_t{0});  // e_phnum
  header.put(static_cast<std::uint16_t>(kSectionHeaderSize));
  header.put(static_cast<std::uint16_t>(headers.size()));
  header.put(static_cast<std::uint16_t>(headers.size() - 1));  // e_shstrndx: .shstrtab is last
  const auto written = header.take();
  std::ranges::copy(written, file.begin());
  return file;
}

}  // namespace vmi::elf
