// The module rows lsmod and hidden_modules share, and a module rebuilt from memory as an ELF file.
#include "plugins/module_rows.hpp"

#include <algorithm>
#include <fstream>

#include "binary/elf_writer.hpp"
#include "binary/lief_readback.hpp"

namespace vmi {

namespace {

constexpr std::size_t kMissingPagesNamed = 8;  // a warning names this many missing pages, then counts

// The module as a relocatable ELF file: its sections at their load addresses, its symbols
// relative to the section holding them (absolute when none does).
std::vector<std::uint8_t> module_elf(const linux_objects::ModuleImage& image) {
  std::vector<elf::Section> sections;
  for (const auto& s : image.sections) {
    sections.push_back({.name = s.name,
                        .type = s.name.starts_with(".note") ? elf::kNote : elf::kProgbits,
                        .flags = elf::kAlloc | (s.executable ? elf::kExecute : 0) | (s.writable ? elf::kWrite : 0),
                        .address = s.address,
                        .bytes = s.bytes});
  }
  std::vector<elf::Symbol> symbols;
  for (const auto& symbol : image.symbols) {
    elf::Symbol out{.name = symbol.name,
                    .info = symbol.info,
                    .other = symbol.other,
                    .section = elf::kAbsolute,
                    .value = symbol.address,
                    .size = symbol.size};
    // The last section starting at or below the symbol, if the symbol lies inside it.
    auto after = std::ranges::upper_bound(image.sections, symbol.address, {}, &linux_objects::ModuleSection::address);
    if (after != image.sections.begin()) {
      const auto& holder = *std::prev(after);
      if (symbol.address - holder.address < holder.size) {
        out.section = static_cast<std::uint16_t>(std::distance(image.sections.begin(), after));
        out.value = symbol.address - holder.address;
      }
    }
    symbols.push_back(std::move(out));
  }
  return elf::write_relocatable(sections, symbols);
}

}  // namespace

void dump_module(PluginContext& context, const std::filesystem::path& directory, ModuleRow& row) {
  const linux_objects::Module& module = row.module;
  row.file_output = Absence::unreadable;
  row.parses = Absence::unreadable;
  row.missing_pages = Absence::unreadable;
  auto image = linux_objects::read_module_image(*context.kernel, module, context.diagnostics);
  if (!image) {
    context.diagnostics.warn("module " + hex(module.address) + " (" + module.name +
                             "): not rebuilt: " + image.error().message);
    return;
  }
  if (!image->missing_pages.empty()) {
    std::string pages;
    for (std::size_t i = 0; i < std::min(image->missing_pages.size(), kMissingPagesNamed); ++i)
      pages += (i == 0 ? "" : ", ") + hex(image->missing_pages[i]);
    if (image->missing_pages.size() > kMissingPagesNamed) pages += ", ...";
    context.diagnostics.warn("module " + hex(module.address) + " (" + module.name +
                             "): " + std::to_string(image->missing_pages.size()) +
                             " pages of its sections are not in the snapshot and are written as zeros: " + pages);
  }
  const std::vector<std::uint8_t> bytes = module_elf(*image);
  const std::string name = "kernel_module." + module.name + "." + hex(module.address) + ".elf";
  std::ofstream file(directory / name, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!file) {
    context.diagnostics.warn("cannot write " + (directory / name).string());
    return;
  }
  row.file_output = name;
  row.missing_pages = std::uint64_t{image->missing_pages.size()};
  if (auto parses = lief_parses_elf(bytes)) {
    row.parses = *parses;
  } else {
    context.diagnostics.warn(name + ": not read back: " + parses.error().message);
  }
}

}  // namespace vmi
