// Linux kernel objects as typed values, for plugins and for programs linking the library.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "vmi/diagnostics.hpp"
#include "vmi/kernel.hpp"

namespace vmi::linux_objects {

struct Task {
  Addr address = 0;                                   // task_struct, kernel virtual
  std::int32_t pid = 0;                               // thread id (TID)
  std::int32_t tgid = 0;                              // process id (PID)
  std::int32_t ppid = 0;                              // real_parent's tgid
  std::string comm;                                   // task_struct.comm, at most 15 bytes (Volatility's COMM)
  std::string name;                                   // as /proc shows it: kernel threads' full or workqueue names
  std::optional<std::uint32_t> uid, gid, euid, egid;  // absent when the cred is unreadable
  std::uint64_t start_boottime_ns = 0;                // since boot, counting suspend (what /proc reports)
  std::optional<std::int64_t> creation_unix_ns;       // wall clock, when the timekeeper is readable
  std::uint32_t threads = 1;                          // threads in the thread group
  bool kernel_thread = false;                         // PF_KTHREAD
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
