// lsmod: the kernel modules on the `modules` list, as /proc/modules and /sys/module show them;
// --dump rebuilds each as a relocatable ELF file from memory and reads it back with LIEF.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "binary/elf_writer.hpp"
#include "binary/lief_readback.hpp"
#include "plugins/plugins.hpp"
#include "vmi/linux.hpp"
#include "vmi/rows.hpp"

namespace vmi {

namespace {

using linux_objects::Module;

struct ModuleRow {
  Module module;
  Maybe<std::string> file_output = Absence::not_applicable;
  Maybe<bool> parses = Absence::not_applicable;                  // LIEF reads the rebuilt file back
  Maybe<std::uint64_t> missing_pages = Absence::not_applicable;  // pages of its sections not in the snapshot
};

// Volatility 3's module columns (Offset, Module Name, Code Size, Taints, Load Arguments, File
// Output), then what /proc/modules adds: Size, Base (the load address), State, Refcount and Used
// By, then for a dumped module whether LIEF parses it and how many of its pages the snapshot lacked.
constexpr auto kModuleRow = declare_row(
    nested_column<&ModuleRow::module, &Module::address, ColumnType::address>("Offset"),
    nested_column<&ModuleRow::module, &Module::name>("Module Name"),
    nested_column<&ModuleRow::module, &Module::code_size, ColumnType::address>("Code Size"),
    nested_column<&ModuleRow::module, &Module::taints>("Taints"),
    nested_column<&ModuleRow::module, &Module::arguments>("Load Arguments"),
    column<&ModuleRow::file_output>("File Output"), nested_column<&ModuleRow::module, &Module::size>("Size"),
    nested_column<&ModuleRow::module, &Module::base, ColumnType::address>("Base"),
    nested_column<&ModuleRow::module, &Module::state>("State"),
    nested_column<&ModuleRow::module, &Module::refcount>("Refcount"),
    nested_column<&ModuleRow::module, &Module::used_by>("Used By"), column<&ModuleRow::parses>("Parses"),
    column<&ModuleRow::missing_pages>("Missing Pages"));

constexpr PluginOption kOptions[] = {
    {"dump", OptionType::path, "rebuild each module from memory into DIR/kernel_module.NAME.OFFSET.elf"}};

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

void dump_module(PluginContext& context, const std::filesystem::path& directory, ModuleRow& row) {
  const Module& module = row.module;
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

Expected<void> run_lsmod(PluginContext& context) {
  const std::filesystem::path dump{context.args.text("dump")};
  RowWriter rows(context.out, kModuleRow);
  return linux_objects::for_each_module(*context.kernel, context.diagnostics, [&](Module&& module) {
    ModuleRow row{std::move(module)};
    if (!dump.empty()) dump_module(context, dump, row);
    return rows.write(row);
  });
}

}  // namespace

constexpr std::string_view kLsmodAliases[] = {"linux.lsmod.Lsmod"};
const Plugin kLsmodPlugin{.name = "linux.lsmod",
                          .short_name = "modules",
                          .os = "linux",
                          .aliases = kLsmodAliases,
                          .description = "List loaded kernel modules; --dump rebuilds each as an ELF file from memory",
                          .needs = Requirement::kernel,
                          .columns = kModuleRow.columns,
                          .tree = false,
                          .options = kOptions,
                          .run = run_lsmod};

}  // namespace vmi
