// windows.dlllist: each process's DLLs, from its PEB loader list in its own address space.
#include <algorithm>

#include "plugins/plugins.hpp"
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
  const auto pids = VMI_TRY(context.args.integers("pid"));
  // Processes first, then each one's list: a list walk must not run inside the process walk's.
  std::vector<windows_objects::Process> processes;
  VMI_TRY_VOID(
      windows_objects::for_each_process(*context.kernel, context.diagnostics, [&](windows_objects::Process&& process) {
        if (pids.empty() || std::ranges::find(pids, process.pid) != pids.end()) processes.push_back(std::move(process));
        return true;
      }));
  RowWriter rows(context.out, kDllRow);
  bool wanted = true;
  for (const auto& process : processes) {
    // System and exited processes have no PEB: they load no DLLs.
    if (std::holds_alternative<Absence>(process.peb) && std::get<Absence>(process.peb) == Absence::not_applicable)
      continue;
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
