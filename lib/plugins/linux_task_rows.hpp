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

inline Row task_row(const linux_objects::Task& task, std::uint32_t depth = 0) {
  auto optional_int = [](const std::optional<std::uint32_t>& v) -> Cell {
    if (!v) return std::monostate{};
    return static_cast<std::int64_t>(*v);
  };
  Row row;
  row.depth = depth;
  row.cells = {task.address,
               std::int64_t{task.tgid},
               std::int64_t{task.pid},
               std::int64_t{task.ppid},
               task.comm,
               task.name,
               std::int64_t{task.threads},
               optional_int(task.uid),
               optional_int(task.gid),
               optional_int(task.euid),
               optional_int(task.egid),
               static_cast<std::int64_t>(task.start_boottime_ns),
               task.creation_unix_ns ? Cell{*task.creation_unix_ns} : Cell{std::monostate{}}};
  return row;
}

}  // namespace vmi
