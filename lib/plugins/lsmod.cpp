// lsmod: the kernel modules on the `modules` list, as /proc/modules and /sys/module show them.
#include "plugins/plugins.hpp"
#include "vmi/linux.hpp"
#include "vmi/rows.hpp"

namespace vmi {

namespace {

using linux_objects::Module;

// Volatility 3's module columns (Offset, Module Name, Code Size, Taints, Load Arguments), then
// what /proc/modules adds: Size, Base (the load address), State, Refcount and Used By.
constexpr auto kModuleRow =
    declare_row(column<&Module::address, ColumnType::address>("Offset"), column<&Module::name>("Module Name"),
                column<&Module::code_size, ColumnType::address>("Code Size"), column<&Module::taints>("Taints"),
                column<&Module::arguments>("Load Arguments"), column<&Module::size>("Size"),
                column<&Module::base, ColumnType::address>("Base"), column<&Module::state>("State"),
                column<&Module::refcount>("Refcount"), column<&Module::used_by>("Used By"));

Expected<void> run_lsmod(PluginContext& context) {
  RowWriter rows(context.out, kModuleRow);
  return linux_objects::for_each_module(*context.kernel, context.diagnostics,
                                        [&](Module&& module) { return rows.write(module); });
}

}  // namespace

constexpr std::string_view kLsmodAliases[] = {"linux.lsmod.Lsmod"};
const Plugin kLsmodPlugin{.name = "linux.lsmod",
                          .short_name = "modules",
                          .os = "linux",
                          .aliases = kLsmodAliases,
                          .description = "List loaded kernel modules",
                          .needs = Requirement::kernel,
                          .columns = kModuleRow.columns,
                          .tree = false,
                          .options = {},
                          .run = run_lsmod};

}  // namespace vmi
