// windows.dlllist: each process's DLLs, from its PEB loader list in its own address space.
#include "plugins/plugins.hpp"
#include "plugins/windows_process_rows.hpp"
#include "vmi/rows.hpp"
#include "vmi/windows.hpp"

namespace vmi {

namespace {

struct DllRow {
  std::int64_t pid = 0;
  Maybe<std::string> process;
  windows_objects::LoadedImage dll;
};

using windows_objects::LoadedImage;
constexpr auto kDllRow = declare_row(
    column<&DllRow::pid>("PID"), column<&DllRow::process>("Process"),
    nested_column<&DllRow::dll, &LoadedImage::base, ColumnType::address>("Base"),
    nested_column<&DllRow::dll, &LoadedImage::size, ColumnType::address>("Size"),
    nested_column<&DllRow::dll, &LoadedImage::name>("Name"), nested_column<&DllRow::dll, &LoadedImage::path>("Path"),
    nested_column<&DllRow::dll, &LoadedImage::load_time, ColumnType::timestamp>("LoadTime"));

constexpr PluginOption kOptions[] = {
    {"pid", OptionType::integers, "only these process IDs (comma-separated)"},
};

Expected<void> run_windows_dlllist(PluginContext& context) {
  const auto processes = VMI_TRY(selected_processes(context));
  RowWriter rows(context.out, kDllRow);
  bool wanted = true;
  for (const auto& process : processes) {
    // System and exited processes have no PEB: they load no DLLs.
    if (not_applicable(process.peb)) continue;
    DllRow row{process.pid, process.image_file_name, {}};
    auto walked = windows_objects::for_each_dll(*context.kernel, process, context.diagnostics,
                                                [&](windows_objects::LoadedImage&& dll) {
                                                  row.dll = std::move(dll);
                                                  wanted = rows.write(row);
                                                  return wanted;
                                                });
    if (!walked) context.diagnostics.warn(walked.error().message);
    if (!wanted) break;
  }
  return {};
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
