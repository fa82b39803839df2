// windows.handles: every handle each process holds, with the object's type and name.
#include "plugins/plugins.hpp"
#include "plugins/windows_process_rows.hpp"
#include "vmi/rows.hpp"
#include "vmi/windows.hpp"

namespace vmi {

namespace {

struct HandleRow {
  std::int64_t pid = 0;
  Maybe<std::string> process;
  windows_objects::Handle handle;
};

using windows_objects::Handle;
constexpr auto kHandleRow =
    declare_row(column<&HandleRow::pid>("PID"), column<&HandleRow::process>("Process"),
                nested_column<&HandleRow::handle, &Handle::object, ColumnType::address>("Offset"),
                nested_column<&HandleRow::handle, &Handle::value, ColumnType::address>("HandleValue"),
                nested_column<&HandleRow::handle, &Handle::type>("Type"),
                nested_column<&HandleRow::handle, &Handle::granted_access, ColumnType::address>("GrantedAccess"),
                nested_column<&HandleRow::handle, &Handle::name>("Name"));

constexpr PluginOption kOptions[] = {
    {"pid", OptionType::integers, "only these process IDs (comma-separated)"},
};

Expected<void> run_windows_handles(PluginContext& context) {
  const auto processes = VMI_TRY(selected_processes(context));
  RowWriter rows(context.out, kHandleRow);
  bool wanted = true;
  for (const auto& process : processes) {
    // An exited process has closed its handles and has no table left.
    if (not_applicable(process.object_table)) continue;
    HandleRow row{process.pid, process.image_file_name, {}};
    auto walked = windows_objects::for_each_handle(*context.kernel, process, context.diagnostics, [&](Handle&& handle) {
      row.handle = std::move(handle);
      wanted = rows.write(row);
      return wanted;
    });
    if (!walked) context.diagnostics.warn(walked.error().message);
    if (!wanted) break;
  }
  return {};
}

}  // namespace

constexpr std::string_view kWindowsHandlesAliases[] = {"windows.handles.Handles"};
const Plugin kWindowsHandlesPlugin{.name = "windows.handles",
                                   .short_name = "handles",
                                   .os = "windows",
                                   .aliases = kWindowsHandlesAliases,
                                   .description = "List each process's open handles with object types and names",
                                   .needs = Requirement::kernel,
                                   .columns = kHandleRow.columns,
                                   .tree = false,
                                   .options = kOptions,
                                   .run = run_windows_handles};

}  // namespace vmi
