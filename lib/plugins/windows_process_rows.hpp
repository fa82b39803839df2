// The process columns windows.pslist and windows.pstree share, as Volatility 3 names them.
#pragma once

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

}  // namespace vmi
