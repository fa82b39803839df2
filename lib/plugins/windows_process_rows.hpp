// The process columns windows.pslist and windows.pstree share, as Volatility 3 names them.
#pragma once

#include <algorithm>
#include <vector>

#include "vmi/plugin.hpp"
#include "vmi/rows.hpp"
#include "vmi/windows.hpp"

namespace vmi {

// A field that could not be read is "-" (JSON null), one with no meaning "N/A" (JSON null).
inline constexpr auto kWindowsProcessRow = declare_row(
    column<&windows_objects::Process::pid>("PID"), column<&windows_objects::Process::ppid>("PPID"),
    column<&windows_objects::Process::image_file_name>("ImageFileName"),
    column<&windows_objects::Process::address, ColumnType::address>("Offset(V)"),
    column<&windows_objects::Process::threads>("Threads"), column<&windows_objects::Process::handles>("Handles"),
    column<&windows_objects::Process::session_id>("SessionId"), column<&windows_objects::Process::wow64>("Wow64"),
    column<&windows_objects::Process::create_time, ColumnType::timestamp>("CreateTime"),
    column<&windows_objects::Process::exit_time, ColumnType::timestamp>("ExitTime"));

// pstree's row: the process and what it says about its program.
struct WindowsProcessTreeRow {
  windows_objects::Process process;
  windows_objects::ProcessStrings strings;
};

inline constexpr auto kWindowsProcessTreeRow = declare_row(
    nested_column<&WindowsProcessTreeRow::process, &windows_objects::Process::pid>("PID"),
    nested_column<&WindowsProcessTreeRow::process, &windows_objects::Process::ppid>("PPID"),
    nested_column<&WindowsProcessTreeRow::process, &windows_objects::Process::image_file_name>("ImageFileName"),
    nested_column<&WindowsProcessTreeRow::process, &windows_objects::Process::address, ColumnType::address>(
        "Offset(V)"),
    nested_column<&WindowsProcessTreeRow::process, &windows_objects::Process::threads>("Threads"),
    nested_column<&WindowsProcessTreeRow::process, &windows_objects::Process::handles>("Handles"),
    nested_column<&WindowsProcessTreeRow::process, &windows_objects::Process::session_id>("SessionId"),
    nested_column<&WindowsProcessTreeRow::process, &windows_objects::Process::wow64>("Wow64"),
    nested_column<&WindowsProcessTreeRow::process, &windows_objects::Process::create_time, ColumnType::timestamp>(
        "CreateTime"),
    nested_column<&WindowsProcessTreeRow::process, &windows_objects::Process::exit_time, ColumnType::timestamp>(
        "ExitTime"),
    nested_column<&WindowsProcessTreeRow::strings, &windows_objects::ProcessStrings::audit>("Audit"),
    nested_column<&WindowsProcessTreeRow::strings, &windows_objects::ProcessStrings::command_line>("Cmd"),
    nested_column<&WindowsProcessTreeRow::strings, &windows_objects::ProcessStrings::image_path>("Path"));

// The listed processes --pid selects (all when absent), collected before a per-process walk
// (handles, DLLs) runs, so that walk never runs inside the list's.
inline Expected<std::vector<windows_objects::Process>> selected_processes(PluginContext& context) {
  const auto pids = VMI_TRY(context.args.integers("pid"));
  std::vector<windows_objects::Process> processes;
  VMI_TRY_VOID(
      windows_objects::for_each_process(*context.kernel, context.diagnostics, [&](windows_objects::Process&& process) {
        if (pids.empty() || std::ranges::find(pids, process.pid) != pids.end()) processes.push_back(std::move(process));
        return true;
      }));
  return processes;
}

// Whether a Maybe field is empty because it has no meaning (not because it is unreadable).
template <class T>
bool not_applicable(const Maybe<T>& value) {
  const auto* absence = std::get_if<Absence>(&value);
  return absence != nullptr && *absence == Absence::not_applicable;
}

// A row of a per-process listing (handles, DLLs): the process, then one of its items.
template <class Item>
struct ProcessItemRow {
  std::int64_t pid = 0;
  Maybe<std::string> process;
  Item item;
};

// Writes a row for every item `walk(kernel, process, diagnostics, visit)` visits in each selected
// process that `has_items`; a process whose walk fails is a warning naming why.
template <class Item, std::size_t N, class Walk, class HasItems>
Expected<void> write_process_items(PluginContext& context, const RowDeclaration<ProcessItemRow<Item>, N>& declaration,
                                   Walk walk, HasItems has_items) {
  const auto processes = VMI_TRY(selected_processes(context));
  RowWriter rows(context.out, declaration);
  bool wanted = true;
  for (const auto& process : processes) {
    if (!has_items(process)) continue;
    ProcessItemRow<Item> row{process.pid, process.image_file_name, {}};
    auto walked = walk(*context.kernel, process, context.diagnostics, [&](Item&& item) {
      row.item = std::move(item);
      wanted = rows.write(row);
      return wanted;
    });
    if (!walked) context.diagnostics.warn(walked.error().message);
    if (!wanted) break;
  }
  return {};
}

}  // namespace vmi
