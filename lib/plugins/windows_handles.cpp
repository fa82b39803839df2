// windows.handles: every handle each process holds, with the object's type and name.
#include "plugins/plugins.hpp"
#include "plugins/windows_process_rows.hpp"
#include "vmi/rows.hpp"
#include "vmi/windows.hpp"

namespace vmi {

namespace {

using windows_objects::Handle;
using HandleRow = ProcessItemRow<Handle>;
constexpr auto kHandleRow =
    declare_row(column<&HandleRow::pid>("PID"), column<&HandleRow::process>("Process"),
                nested_column<&HandleRow::item, &Handle::object, ColumnType::address>("Offset"),
                nested_column<&HandleRow::item, &Handle::value, ColumnType::address>("HandleValue"),
                nested_column<&HandleRow::item, &Handle::type>("Type"),
                nested_column<&HandleRow::item, &Handle::granted_access, ColumnType::address>("GrantedAccess"),
                nested_column<&HandleRow::item, &Handle::name>("Name"));

constexpr PluginOption kOptions[] = {
    {"pid", OptionType::integers, "only these process IDs (comma-separated)"},
};

// An exited process has closed its handles and has no table left.
Expected<void> run_windows_handles(PluginContext& context) {
  return write_process_items(
      context, kHandleRow, windows_objects::for_each_handle,
      [](const windows_objects::Process& process) { return !not_applicable(process.object_table); });
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
