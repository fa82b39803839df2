// The task columns pslist and pstree share, and the conversion of a task to those cells.
#pragma once

#include "vmi/linux.hpp"
#include "vmi/plugin.hpp"

namespace vmi {

inline constexpr Column kTaskColumns[] = {
    {"OFFSET (V)", ColumnType::address},
    {"PID", ColumnType::integer},
    {"TID", ColumnType::integer},
    {"PPID", ColumnType::integer},
    {"COMM", ColumnType::text},
    {"NAME", ColumnType::text},
    {"THREADS", ColumnType::integer},
    {"UID", ColumnType::integer},
    {"GID", ColumnType::integer},
    {"EUID", ColumnType::integer},
    {"EGID", ColumnType::integer},
    {"START (ns since boot)", ColumnType::integer},
    {"CREATION TIME", ColumnType::timestamp},
};

// A task's cells; a field the task reader could not read is an empty cell (rendered "-").
inline Row task_row(const linux_objects::Task& task, std::uint32_t depth = 0) {
  auto integer = [](const auto& value) -> Cell {
    if (!value) return std::monostate{};
    return static_cast<std::int64_t>(*value);
  };
  auto text = [](const std::optional<std::string>& value) -> Cell {
    if (!value) return std::monostate{};
    return *value;
  };
  Row row;
  row.depth = depth;
  row.cells = {task.address,
               std::int64_t{task.tgid},
               std::int64_t{task.pid},
               integer(task.ppid),
               task.comm,
               text(task.name),
               integer(task.threads),
               integer(task.uid),
               integer(task.gid),
               integer(task.euid),
               integer(task.egid),
               integer(task.start_boottime_ns),
               integer(task.creation_unix_ns)};
  return row;
}

}  // namespace vmi
