// hidden_modules: modules the kernel holds that its `modules` list does not show, the mark of a
// rootkit that unlinked itself; found by scanning the module area and through /sys/module.
#include <algorithm>
#include <set>

#include "plugins/module_rows.hpp"
#include "plugins/plugins.hpp"

namespace vmi {

namespace {

constexpr PluginOption kOptions[] = {
    {"dump", OptionType::path, "rebuild each module from memory into DIR/kernel_module.NAME.OFFSET.elf"}};

Expected<void> run_hidden_modules(PluginContext& context) {
  const Kernel& kernel = *context.kernel;
  const std::filesystem::path dump{context.args.text("dump")};
  std::set<Addr> listed;
  VMI_TRY_VOID(linux_objects::for_each_module(kernel, context.diagnostics, [&](linux_objects::Module&& module) {
    listed.insert(module.address);
    return true;
  }));
  std::set<Addr> elsewhere;
  for (Addr address : VMI_TRY(linux_objects::scan_for_modules(kernel, context.diagnostics))) elsewhere.insert(address);
  for (Addr address : VMI_TRY(linux_objects::sysfs_modules(kernel, context.diagnostics))) elsewhere.insert(address);
  RowWriter rows(context.out, kModuleRow);
  for (Addr address : elsewhere) {
    if (listed.contains(address)) continue;
    auto module = linux_objects::read_module(kernel, address, context.diagnostics);
    if (!module) {
      context.diagnostics.warn("module at " + hex(address) + " (not on the list): " + module.error().message);
      continue;
    }
    ModuleRow row{std::move(*module)};
    if (!dump.empty()) dump_module(context, dump, row);
    if (!rows.write(row)) break;
  }
  return {};
}

}  // namespace

constexpr std::string_view kHiddenModulesAliases[] = {"linux.hidden_modules.Hidden_modules",
                                                      "linux.malware.hidden_modules.Hidden_modules"};
const Plugin kHiddenModulesPlugin{
    .name = "linux.hidden_modules",
    .short_name = "hidden_modules",
    .os = "linux",
    .aliases = kHiddenModulesAliases,
    .description = "Modules found in the module area or /sys/module but not on the module list",
    .needs = Requirement::kernel,
    .columns = kModuleRow.columns,
    .tree = false,
    .options = kOptions,
    .run = run_hidden_modules};

}  // namespace vmi
