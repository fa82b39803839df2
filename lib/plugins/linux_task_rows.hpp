// The task columns pslist and pstree share, bound to the fields of a task as the reader gives it.
#pragma once

#include "vmi/linux.hpp"
#include "vmi/rows.hpp"

namespace vmi {

// A field the task reader could not read is empty: rendered "-", JSON null.
inline constexpr auto kTaskRow =
    declare_row(column<&linux_objects::Task::address, ColumnType::address>("OFFSET (V)"),
                column<&linux_objects::Task::tgid>("PID"), column<&linux_objects::Task::pid>("TID"),
                column<&linux_objects::Task::ppid>("PPID"), column<&linux_objects::Task::comm>("COMM"),
                column<&linux_objects::Task::name>("NAME"), column<&linux_objects::Task::threads>("THREADS"),
                column<&linux_objects::Task::uid>("UID"), column<&linux_objects::Task::gid>("GID"),
                column<&linux_objects::Task::euid>("EUID"), column<&linux_objects::Task::egid>("EGID"),
                column<&linux_objects::Task::start_boottime_ns>("START (ns since boot)"),
                column<&linux_objects::Task::creation_unix_ns, ColumnType::timestamp>("CREATION TIME"));

}  // namespace vmi
