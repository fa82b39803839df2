// windows.dlllist: each process's DLLs, from its PEB loader list in its own address space.
#include "plugins/plugins.hpp"
#include "plugins/windows_process_rows.hpp"
#include "vmi/rows.hpp"
#include "vmi/windows.hpp"

namespace vmi {

namespace {

using windows_objects::LoadedImage;
using DllRow = ProcessItemRow<LoadedImage>;
constexpr auto kDllRow = declare_row(
    column<&DllRow::pid>("PID"), column<&DllRow::process>("Process"),
    nested_column<&DllRow::item, &LoadedImage::base, ColumnType::address>("Base"),
    nested_column<&DllRow::item, &LoadedImage::size, ColumnType::address>("Size"),
    nested_column<&DllRow::item, &LoadedImage::name>("Name"), nested_column<&DllRow::item, &LoadedImage::path>("Path"),
    nested_column<&DllRow::item, &LoadedImage::load_time, ColumnType::timestamp>("LoadTime"));

constexpr PluginOption kOptions[] = {
    {"pid", OptionType::integers, "only these process IDs (comma-separated)"},
};

// System and exited processes have no PEB: they load no DLLs.
Expected<void> run_windows_dlllist(PluginContext& context) {
  return write_process_items(context, kDllRow, windows_objects::for_each_dll,
                             [](const windows_objects::Process& process) { return !not_applicable(process.peb); });
}

}  // namespace

constexpr std::string_view kWindowsDlllistAliases[] = {"windows.dlllist.DllList"};
const Plugin kWindowsDlllistPlugin{.name = "windows.dlllist",
                                   .short_name = "dlllist",
                                   .os = "windows",
                                   .aliases = kWindowsDlllistAliases,
                                   .description = "List each process's loaded DLLs (PEB loader list)",
                                   .needs = Requirement::kernel,
                                   .columns = kDllRow.columns,
                                   .tree = false,
                                   .options = kOptions,
                                   .run = run_windows_dlllist};

}  // namespace vmi
