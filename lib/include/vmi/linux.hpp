// Linux kernel objects as typed values, for plugins and for programs linking the library.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "vmi/diagnostics.hpp"
#include "vmi/kernel.hpp"

namespace vmi::linux_objects {

// One task as the kernel holds it. pid, tgid and comm are always read (a task without them is
// reported and skipped); every other field is empty when it could not be read, with a warning in
// diagnostics naming the task's address and the field. No field falls back to a plausible value.
struct Task {
  Addr address = 0;                  // task_struct, kernel virtual
  std::int32_t pid = 0;              // thread id (TID)
  std::int32_t tgid = 0;             // process id (PID)
  std::optional<std::int32_t> ppid;  // real_parent's tgid; 0 for tasks whose parent is swapper
  std::string comm;                  // task_struct.comm, at most 15 bytes (Volatility's COMM)
  // As /proc shows it: a kernel thread's full name, a workqueue worker's id and "+/-desc".
  std::optional<std::string> name;
  std::optional<std::uint32_t> uid, gid, euid, egid;
  std::optional<std::uint64_t> start_boottime_ns;  // since boot, counting suspend (what /proc reports)
  std::optional<std::int64_t> creation_unix_ns;    // wall clock; needs the start time and the timekeeper
  std::optional<std::uint32_t> threads;            // threads in the thread group
  std::optional<bool> kernel_thread;               // PF_KTHREAD
};

// At most this many tasks (processes and threads together) are visited in one walk.
inline constexpr std::size_t kMaxTasks = std::size_t{1} << 20;

// Visits every process (thread-group leader) on init_task's task list, in list order; with
// include_threads, each leader is followed by its other threads. Tasks are read one at a time
// and handed over, so a caller that keeps less than a Task per task needs less memory than
// list_tasks; `visit` returns false to stop. The walk is bounded (kMaxTasks) and cycle-safe;
// what it could not read is reported to diagnostics. Fails only when the task list's head is
// unreadable and nothing was visited.
Expected<void> for_each_task(const Kernel& kernel, bool include_threads, Diagnostics& diagnostics,
                             const std::function<bool(Task&&)>& visit);

// for_each_task's tasks, collected.
Expected<std::vector<Task>> list_tasks(const Kernel& kernel, bool include_threads, Diagnostics& diagnostics);

}  // namespace vmi::linux_objects
