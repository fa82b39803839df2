// The module rows lsmod and hidden_modules share (Volatility 3's ModuleDisplayPlugin columns and
// /proc/modules'), and --dump: a module rebuilt from memory as an ELF file.
#pragma once

#include <filesystem>

#include "vmi/linux.hpp"
#include "vmi/plugin.hpp"
#include "vmi/rows.hpp"

namespace vmi {

struct ModuleRow {
  linux_objects::Module module;
  Maybe<std::string> file_output = Absence::not_applicable;
  Maybe<bool> parses = Absence::not_applicable;                  // LIEF reads the rebuilt file back
  Maybe<std::uint64_t> missing_pages = Absence::not_applicable;  // pages of its sections not in the snapshot
};

// Volatility 3's module columns (Offset, Module Name, Code Size, Taints, Load Arguments, File
// Output), then what /proc/modules adds: Size, Base (the load address), State, Refcount and Used
// By, then for a dumped module whether LIEF parses it and how many of its pages the snapshot lacked.
inline constexpr auto kModuleRow =
    declare_row(nested_column<&ModuleRow::module, &linux_objects::Module::address, ColumnType::address>("Offset"),
                nested_column<&ModuleRow::module, &linux_objects::Module::name>("Module Name"),
                nested_column<&ModuleRow::module, &linux_objects::Module::code_size, ColumnType::address>("Code Size"),
                nested_column<&ModuleRow::module, &linux_objects::Module::taints>("Taints"),
                nested_column<&ModuleRow::module, &linux_objects::Module::arguments>("Load Arguments"),
                column<&ModuleRow::file_output>("File Output"),
                nested_column<&ModuleRow::module, &linux_objects::Module::size>("Size"),
                nested_column<&ModuleRow::module, &linux_objects::Module::base, ColumnType::address>("Base"),
                nested_column<&ModuleRow::module, &linux_objects::Module::state>("State"),
                nested_column<&ModuleRow::module, &linux_objects::Module::refcount>("Refcount"),
                nested_column<&ModuleRow::module, &linux_objects::Module::used_by>("Used By"),
                column<&ModuleRow::parses>("Parses"), column<&ModuleRow::missing_pages>("Missing Pages"));

// Rebuilds the row's module into `directory` (kernel_module.NAME.OFFSET.elf) and fills File
// Output, Parses and Missing Pages; each stays unreadable, with a warning, when its step fails.
void dump_module(PluginContext& context, const std::filesystem::path& directory, ModuleRow& row);

}  // namespace vmi
