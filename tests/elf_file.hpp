// Reads the parts of an ELF64 file the tests check (section headers, .symtab), on its own: what a
// plugin wrote is read back here without the library's code.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace vmi::test::elf {

constexpr std::uint64_t kWrite = 1, kAlloc = 2;
constexpr std::uint32_t kSymtab = 2, kRela = 4, kRel = 9;
constexpr std::uint16_t kAbsolute = 0xfff1;

struct ElfSection {
  std::string name;
  std::uint32_t type = 0, link = 0, info = 0;
  std::uint64_t flags = 0, address = 0, offset = 0, size = 0;
};

template <class T>
T load(const std::string& file, std::uint64_t at) {
  REQUIRE(at + sizeof(T) <= file.size());
  T value{};
  std::memcpy(&value, file.data() + at, sizeof value);
  return value;
}

// The section headers of an ELF64 file, named through its .shstrtab, read here on their own.
inline std::vector<ElfSection> elf_sections(const std::string& file) {
  REQUIRE(file.size() >= 64);
  REQUIRE(file.compare(0, 4,
                       "\x7f"
                       "ELF") == 0);
  const auto table = load<std::uint64_t>(file, 40);
  const auto count = load<std::uint16_t>(file, 60);
  const auto names_index = load<std::uint16_t>(file, 62);
  std::vector<ElfSection> sections(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint64_t h = table + i * 64;
    sections[i] = {"",
                   load<std::uint32_t>(file, h + 4),
                   load<std::uint32_t>(file, h + 40),
                   load<std::uint32_t>(file, h + 44),
                   load<std::uint64_t>(file, h + 8),
                   load<std::uint64_t>(file, h + 16),
                   load<std::uint64_t>(file, h + 24),
                   load<std::uint64_t>(file, h + 32)};
  }
  REQUIRE(names_index < count);
  for (std::size_t i = 0; i < count; ++i) {
    const auto name_at = sections[names_index].offset + load<std::uint32_t>(file, table + i * 64);
    REQUIRE(name_at < file.size());
    sections[i].name = file.c_str() + name_at;
  }
  return sections;
}

// (address, name) of every named symbol in the file's .symtab, an absolute symbol at its value
// and any other at its section's address plus its value.
inline std::multiset<std::pair<std::uint64_t, std::string>> elf_symbols(const std::string& file,
                                                                        const std::vector<ElfSection>& sections) {
  std::multiset<std::pair<std::uint64_t, std::string>> symbols;
  const auto symtab = std::ranges::find(sections, kSymtab, &ElfSection::type);
  REQUIRE(symtab != sections.end());
  const ElfSection& strtab = sections.at(symtab->link);
  for (std::uint64_t at = symtab->offset + 24; at < symtab->offset + symtab->size; at += 24) {
    const std::string name = file.c_str() + strtab.offset + load<std::uint32_t>(file, at);
    const auto section = load<std::uint16_t>(file, at + 6);
    const auto value = load<std::uint64_t>(file, at + 8);
    if (name.empty()) continue;
    symbols.emplace(section == kAbsolute ? value : sections.at(section).address + value, name);
  }
  return symbols;
}

}  // namespace vmi::test::elf
