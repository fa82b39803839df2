// windows.modules: the drivers on PsLoadedModuleList.
#include "plugins/plugins.hpp"
#include "vmi/rows.hpp"
#include "vmi/windows.hpp"

namespace vmi {

namespace {

using windows_objects::LoadedImage;
constexpr auto kModuleRow = declare_row(column<&LoadedImage::address, ColumnType::address>("Offset"),
                                        column<&LoadedImage::base, ColumnType::address>("Base"),
                                        column<&LoadedImage::size, ColumnType::address>("Size"),
                                        column<&LoadedImage::name>("Name"), column<&LoadedImage::path>("Path"));

Expected<void> run_windows_modules(PluginContext& context) {
  const std::string_view name = context.args.text("name");
  RowWriter rows(context.out, kModuleRow);
  return windows_objects::for_each_kernel_module(
      *context.kernel, context.diagnostics, [&](windows_objects::LoadedImage&& module) {
        const auto* module_name = std::get_if<std::string>(&module.name);
        if (!name.empty() && (module_name == nullptr || module_name->find(name) == std::string::npos)) return true;
        return rows.write(module);
      });
}

constexpr PluginOption kOptions[] = {
    {"name", OptionType::text, "only modules whose name (BaseDllName) contains this text"},
};

}  // namespace

constexpr std::string_view kWindowsModulesAliases[] = {"windows.modules.Modules"};
const Plugin kWindowsModulesPlugin{.name = "windows.modules",
                                   .short_name = "modules",
                                   .os = "windows",
                                   .aliases = kWindowsModulesAliases,
                                   .description = "List the loaded kernel modules (PsLoadedModuleList)",
                                   .needs = Requirement::kernel,
                                   .columns = kModuleRow.columns,
                                   .tree = false,
                                   .options = kOptions,
                                   .run = run_windows_modules};

}  // namespace vmi
