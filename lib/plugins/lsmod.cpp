// lsmod: the kernel modules on the `modules` list, as /proc/modules and /sys/module show them;
// --dump rebuilds each as a relocatable ELF file from memory and reads it back with LIEF.
#include "plugins/module_rows.hpp"
#include "plugins/plugins.hpp"

namespace vmi {

namespace {

using linux_objects::Module;

constexpr PluginOption kOptions[] = {
    {"dump", OptionType::path, "rebuild each module from memory into DIR/kernel_module.NAME.OFFSET.elf"}};

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
