// Walks init_task.tasks and each thread group, reading fields at offsets bound once.
#include <algorithm>
#include <cstring>

#include "vmi/linux.hpp"
#include "vmi/object.hpp"

namespace vmi::linux_objects {

namespace {

// Caps on what a hostile image can make us read. Real systems run up to a few hundred thousand
// tasks; the caps allow 1M tasks visited (kMaxTasks, leaders and threads together) and 1M
// thread-list entries over all thread groups together, so a task list of a million leaders that
// all claim one million-entry thread list costs two million reads, not a trillion, and a caller
// keeping a row per task keeps at most a million rows.
constexpr std::size_t kMaxThreadEntries = 1u << 20;  // over every thread group walked
constexpr std::uint32_t kPfKthread = 0x00200000;     // include/linux/sched.h
constexpr std::uint32_t kPfWqWorker = 0x00000020;
constexpr std::size_t kMaxFullName = 64;  // /proc prints at most 64 bytes of a name
constexpr std::size_t kCommSize = 16;     // TASK_COMM_LEN

// A kernel release as major, minor and sublevel, from "Linux version 6.12.115+bpo-amd64 ...".
struct KernelVersion {
  int major = 0, minor = 0, sublevel = 0;
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misreads a defaulted <=>
  auto operator<=>(const KernelVersion&) const = default;
};

KernelVersion parse_kernel_version(std::string_view banner) {
  constexpr std::string_view kPrefix = "Linux version ";
  KernelVersion version;
  if (!banner.starts_with(kPrefix)) return version;
  banner.remove_prefix(kPrefix.size());
  int* parts[] = {&version.major, &version.minor, &version.sublevel};
  for (int* part : parts) {
    std::size_t digits = 0;
    while (digits < banner.size() && digits < 6 && banner[digits] >= '0' && banner[digits] <= '9') {
      *part = *part * 10 + (banner[digits] - '0');
      ++digits;
    }
    if (digits == 0 || digits >= banner.size() || banner[digits] != '.') break;
    banner.remove_prefix(digits + 1);
  }
  return version;
}

// Since 6.10 (and 6.9.11), /proc formats a workqueue worker's name from the worker itself
// (kernel/workqueue.c format_worker_id, commit 2a1b02bcba78) instead of copying the 15-byte comm:
// "kworker/R-<workqueue>" for rescuers, "kworker/<cpu>:<id>[H]" or "kworker/u<pool>:<id>".
bool proc_formats_worker_ids(const KernelVersion& version) {
  return version >= KernelVersion{6, 10, 0} || (version.major == 6 && version.minor == 9 && version.sublevel >= 11);
}

// What /proc shows for kernel threads (fs/proc/array.c proc_task_name): the kthread's full
// name, or a workqueue worker's name plus "+desc"/"-desc". Fields absent on a kernel stay empty.
struct WorkerLayout {
  std::optional<std::uint32_t> worker_private, kthread_full_name, kthread_data;
  std::optional<std::uint32_t> desc, current_work, pool, id, rescue_wq;
  std::optional<std::uint32_t> pool_cpu, pool_id, pool_attrs, attrs_nice, workqueue_name;
  std::uint32_t desc_size = 0, workqueue_name_size = 0;
  bool formats_ids = false;

  static WorkerLayout bind(const Profile& p) {
    WorkerLayout l;
    auto optional = [&](std::string_view type, std::string_view field) -> std::optional<std::uint32_t> {
      if (auto offset = bind_offset(p, type, field)) return *offset;
      return std::nullopt;
    };
    l.worker_private = optional("task_struct", "worker_private");
    l.kthread_full_name = optional("kthread", "full_name");
    l.kthread_data = optional("kthread", "data");
    if (auto desc = p.field("worker", "desc")) {
      l.desc = desc->offset;
      l.desc_size = static_cast<std::uint32_t>(p.size_of(desc->type).value_or(0));
    }
    l.current_work = optional("worker", "current_work");
    l.pool = optional("worker", "pool");
    l.id = optional("worker", "id");
    l.rescue_wq = optional("worker", "rescue_wq");
    l.pool_cpu = optional("worker_pool", "cpu");
    l.pool_id = optional("worker_pool", "id");
    l.pool_attrs = optional("worker_pool", "attrs");
    l.attrs_nice = optional("workqueue_attrs", "nice");
    if (auto name = p.field("workqueue_struct", "name")) {
      l.workqueue_name = name->offset;
      l.workqueue_name_size = static_cast<std::uint32_t>(p.size_of(name->type).value_or(0));
    }
    l.formats_ids = proc_formats_worker_ids(parse_kernel_version(p.banner()));
    return l;
  }
};

struct TaskLayout {
  std::uint32_t tasks, pid, tgid, comm, real_parent, cred, flags, start_time;
  std::optional<std::uint32_t> start_boottime, signal, thread_node;
  std::uint32_t cred_uid, cred_gid, cred_euid, cred_egid;
  std::optional<std::uint32_t> signal_thread_head;
  WorkerLayout worker;

  static Expected<TaskLayout> bind(const Profile& p) {
    TaskLayout l{};
    l.tasks = VMI_TRY(bind_offset(p, "task_struct", "tasks"));
    l.pid = VMI_TRY(bind_offset(p, "task_struct", "pid"));
    l.tgid = VMI_TRY(bind_offset(p, "task_struct", "tgid"));
    l.comm = VMI_TRY(bind_offset(p, "task_struct", "comm"));
    l.real_parent = VMI_TRY(bind_offset(p, "task_struct", "real_parent"));
    auto real_cred = bind_offset(p, "task_struct", "real_cred");  // the objective creds /proc shows
    l.cred = real_cred ? *real_cred : VMI_TRY(bind_offset(p, "task_struct", "cred"));
    l.flags = VMI_TRY(bind_offset(p, "task_struct", "flags"));
    l.start_time = VMI_TRY(bind_offset(p, "task_struct", "start_time"));
    if (auto o = bind_offset(p, "task_struct", "start_boottime")) l.start_boottime = *o;
    if (auto o = bind_offset(p, "task_struct", "signal")) l.signal = *o;
    if (auto o = bind_offset(p, "task_struct", "thread_node")) l.thread_node = *o;
    if (auto o = bind_offset(p, "signal_struct", "thread_head")) l.signal_thread_head = *o;
    // kuid_t/kgid_t wrap a single `val` at offset 0.
    l.cred_uid = VMI_TRY(bind_offset(p, "cred", "uid"));
    l.cred_gid = VMI_TRY(bind_offset(p, "cred", "gid"));
    l.cred_euid = VMI_TRY(bind_offset(p, "cred", "euid"));
    l.cred_egid = VMI_TRY(bind_offset(p, "cred", "egid"));
    l.worker = WorkerLayout::bind(p);
    return l;
  }
};

// tk_core.timekeeper. BTF types only the per-CPU variables, so tk_core is void in BTF-built and
// recovered profiles; its definition (kernel/time/timekeeping.c, unchanged since 5.10) is
// `static struct { seqcount_raw_spinlock_t seq; struct timekeeper timekeeper; } tk_core`, so the
// timekeeper follows the sequence count at its 8-byte alignment.
std::optional<ObjectView> tk_core_timekeeper(const Kernel& kernel) {
  const Profile& profile = kernel.profile();
  const Symbol* tk_core = profile.find_symbol("tk_core");
  const auto address = kernel.symbol("tk_core");
  if (tk_core == nullptr || !address) return std::nullopt;
  if (const Aggregate* type = profile.aggregate_of(tk_core->type)) {
    auto timekeeper = ObjectView(kernel.kernel_layer(), profile, *type, *address).member("timekeeper");
    if (timekeeper) return *timekeeper;
    return std::nullopt;
  }
  const Aggregate* timekeeper = profile.find_aggregate("timekeeper");
  const Aggregate* sequence = profile.find_aggregate("seqcount_raw_spinlock_t");
  if (timekeeper == nullptr || sequence == nullptr) return std::nullopt;
  return ObjectView(kernel.kernel_layer(), profile, *timekeeper, *address + ((Addr{sequence->size} + 7) & ~Addr{7}));
}

// Wall-clock time of boot from the timekeeper: offs_real - offs_boot is CLOCK_REALTIME at
// CLOCK_BOOTTIME zero.
std::optional<std::int64_t> boot_time_unix_ns(const Kernel& kernel) {
  auto timekeeper = tk_core_timekeeper(kernel);
  if (!timekeeper) return std::nullopt;
  auto offs_real = timekeeper->read_signed("offs_real");
  auto offs_boot = timekeeper->read_signed("offs_boot");
  if (!offs_real || !offs_boot) return std::nullopt;
  return *offs_real - *offs_boot;
}

// A thread group's tasks, leader first; `complete` when the whole signal->thread_head list was read.
struct ThreadGroup {
  std::vector<Addr> members;
  bool complete = false;
};

class TaskReader {
 public:
  TaskReader(const Kernel& kernel, const TaskLayout& layout, Diagnostics& diagnostics)
      : layer_(kernel.kernel_layer()),
        layout_(layout),
        diagnostics_(diagnostics),
        boot_time_(boot_time_unix_ns(kernel)) {
    if (!boot_time_) diagnostics_.warn("tk_core.timekeeper is unreadable: task creation times are unknown");
  }

  Expected<Task> read(Addr address) {
    Task task;
    task.address = address;
    task.pid = VMI_TRY(read_value<std::int32_t>(layer_, address + layout_.pid));
    task.tgid = VMI_TRY(read_value<std::int32_t>(layer_, address + layout_.tgid));
    char comm[kCommSize] = {};
    VMI_TRY_VOID(read_exact(layer_, address + layout_.comm, std::as_writable_bytes(std::span(comm))));
    task.comm.assign(comm, strnlen(comm, kCommSize));
    if (auto flags = field<std::uint32_t>(task, "flags", layout_.flags)) {
      task.kernel_thread = (*flags & kPfKthread) != 0;
      // proc_task_name tests PF_WQ_WORKER before PF_KTHREAD.
      if ((*flags & kPfWqWorker) != 0) {
        task.name = worker_name(task);
      } else if (*task.kernel_thread) {
        task.name = kernel_thread_name(task);
      } else {
        task.name = task.comm;
      }
    }
    task.ppid = parent_tgid(task);
    read_credentials(task);
    task.start_boottime_ns =
        field<std::uint64_t>(task, "start_boottime", layout_.start_boottime.value_or(layout_.start_time));
    if (boot_time_ && task.start_boottime_ns) {
      // A damaged start time can put the sum past any date int64 nanoseconds hold: no creation
      // time then, rather than a wrapped one.
      std::int64_t created = 0;
      if (*task.start_boottime_ns <= static_cast<std::uint64_t>(INT64_MAX) &&
          !__builtin_add_overflow(*boot_time_, static_cast<std::int64_t>(*task.start_boottime_ns), &created)) {
        task.creation_unix_ns = created;
      } else if (!start_overflow_warned_) {
        // Once per walk: a damaged list can repeat it for every task and crowd out the caps' warnings.
        start_overflow_warned_ = true;
        unreadable(task, "start_boottime", address + layout_.start_boottime.value_or(layout_.start_time),
                   "holds " + std::to_string(*task.start_boottime_ns) +
                       " ns, past any creation time (later such tasks are not reported)");
      }
    }
    return task;
  }

  // Every thread of a group, leader first, walking signal->thread_head.
  ThreadGroup thread_group(const Task& leader) {
    ThreadGroup group{{leader.address}, false};
    if (!layout_.signal || !layout_.thread_node || !layout_.signal_thread_head) return group;
    auto signal = field<std::uint64_t>(leader, "signal", *layout_.signal);
    if (!signal) return group;
    if (*signal == 0) {
      unreadable(leader, "signal", leader.address + *layout_.signal, "is NULL");
      return group;
    }
    if (thread_entries_left_ == 0) {
      if (!budget_warned_) {
        diagnostics_.warn("thread lists: more than " + std::to_string(kMaxThreadEntries) +
                          " entries over all thread groups; later groups' thread counts are unknown");
        budget_warned_ = true;
      }
      return group;
    }
    group.members.clear();
    const std::uint32_t node_offset = *layout_.thread_node;
    ListWalk walk = walk_list(layer_, *signal + *layout_.signal_thread_head, thread_entries_left_, [&](Addr node) {
      group.members.push_back(node - node_offset);
      return true;
    });
    thread_entries_left_ -= walk.entries;
    group.complete = walk.end == ListEnd::complete && !group.members.empty();
    if (walk.end != ListEnd::complete)
      diagnostics_.warn("task " + hex(leader.address) + " (pid " + std::to_string(leader.pid) +
                        "): thread list: " + walk.problem + "; thread count unknown");
    // The leader first, whatever the list order, so thread rows follow their process.
    auto it = std::find(group.members.begin(), group.members.end(), leader.address);
    if (it == group.members.end()) {
      group.members.insert(group.members.begin(), leader.address);
    } else {
      std::rotate(group.members.begin(), it, it + 1);
    }
    return group;
  }

 private:
  void unreadable(const Task& task, std::string_view field_name, Addr at, std::string_view why = "is unreadable") {
    diagnostics_.warn("task " + hex(task.address) + " (pid " + std::to_string(task.pid) + "): field '" +
                      std::string(field_name) + "' at " + hex(at) + " " + std::string(why));
  }

  // A field of the task_struct itself, or nothing plus a warning naming task, field and address.
  template <typename T>
  std::optional<T> field(const Task& task, std::string_view name, std::uint32_t offset) {
    auto value = read_value<T>(layer_, task.address + offset);
    if (value) return *value;
    unreadable(task, name, task.address + offset);
    return std::nullopt;
  }

  // The kthread behind a kernel thread (task->worker_private), or nothing with a warning.
  std::optional<Addr> kthread_of(const Task& task) {
    auto kthread = field<std::uint64_t>(task, "worker_private", *layout_.worker.worker_private);
    if (kthread && *kthread == 0)
      unreadable(task, "worker_private", task.address + *layout_.worker.worker_private, "is NULL");
    if (!kthread || *kthread == 0) return std::nullopt;
    return *kthread;
  }

  // get_kthread_comm: the full name when kthread_create was given one longer than comm.
  std::optional<std::string> kernel_thread_name(const Task& task) {
    const WorkerLayout& w = layout_.worker;
    if (!w.worker_private || !w.kthread_full_name) return task.comm;  // kernels before full names
    const auto kthread = kthread_of(task);
    if (!kthread) return std::nullopt;
    auto full_name = read_value<std::uint64_t>(layer_, *kthread + *w.kthread_full_name);
    if (!full_name) {
      unreadable(task, "kthread.full_name", *kthread + *w.kthread_full_name);
      return std::nullopt;
    }
    if (*full_name == 0) return task.comm;
    auto text = read_c_string(layer_, *full_name, kMaxFullName - 1);
    if (!text) {
      unreadable(task, "kthread.full_name string", *full_name);
      return std::nullopt;
    }
    return *text;
  }

  // wq_worker_comm: the worker's id (its comm before 6.10, format_worker_id after) and, while it
  // is attached to a pool, "+desc" when running a work item or "-desc" when idle.
  std::optional<std::string> worker_name(const Task& task) {
    const WorkerLayout& w = layout_.worker;
    if (!w.worker_private || !w.kthread_data || !w.desc || !w.current_work || !w.pool) return task.comm;
    const auto kthread = kthread_of(task);
    if (!kthread) return std::nullopt;
    const auto worker = read_pointer(task, "kthread.data", *kthread + *w.kthread_data);
    if (!worker) return std::nullopt;
    const auto pool = read_pointer(task, "worker.pool", *worker + *w.pool, /*may_be_null=*/true);
    if (!pool) return std::nullopt;
    std::optional<std::string> name = task.comm;
    if (w.formats_ids) name = worker_id(task, *worker, *pool);
    if (!name || *pool == 0) return name;
    auto desc = read_c_string(layer_, *worker + *w.desc, w.desc_size);
    if (!desc) {
      unreadable(task, "worker.desc", *worker + *w.desc);
      return std::nullopt;
    }
    if (desc->empty()) return name;
    auto current = read_value<std::uint64_t>(layer_, *worker + *w.current_work);
    if (!current) {
      unreadable(task, "worker.current_work", *worker + *w.current_work);
      return std::nullopt;
    }
    *name += (*current != 0 ? "+" : "-") + *desc;
    if (name->size() > kMaxFullName - 1) name->resize(kMaxFullName - 1);
    return name;
  }

  // format_worker_id (6.10+): the name /proc shows, untruncated by TASK_COMM_LEN.
  std::optional<std::string> worker_id(const Task& task, Addr worker, Addr pool) {
    const WorkerLayout& w = layout_.worker;
    if (!w.rescue_wq || !w.id || !w.pool_cpu || !w.pool_id || !w.pool_attrs || !w.attrs_nice || !w.workqueue_name)
      return task.comm;
    const auto rescue_wq = read_pointer(task, "worker.rescue_wq", worker + *w.rescue_wq, /*may_be_null=*/true);
    if (!rescue_wq) return std::nullopt;
    if (*rescue_wq != 0) {
      auto wq_name = read_c_string(layer_, *rescue_wq + *w.workqueue_name, w.workqueue_name_size);
      if (!wq_name) {
        unreadable(task, "workqueue_struct.name", *rescue_wq + *w.workqueue_name);
        return std::nullopt;
      }
      return "kworker/R-" + *wq_name;
    }
    if (pool == 0) return std::string("kworker/dying");
    const auto id = read_value<std::int32_t>(layer_, worker + *w.id);
    const auto cpu = read_value<std::int32_t>(layer_, pool + *w.pool_cpu);
    const auto pool_id = read_value<std::int32_t>(layer_, pool + *w.pool_id);
    if (!id || !cpu || !pool_id) {
      unreadable(task,
                 !id    ? "worker.id"
                 : !cpu ? "worker_pool.cpu"
                        : "worker_pool.id",
                 !id    ? worker + *w.id
                 : !cpu ? pool + *w.pool_cpu
                        : pool + *w.pool_id);
      return std::nullopt;
    }
    if (*cpu < 0) return "kworker/u" + std::to_string(*pool_id) + ":" + std::to_string(*id);
    const auto attrs = read_pointer(task, "worker_pool.attrs", pool + *w.pool_attrs);
    if (!attrs) return std::nullopt;
    const auto nice = read_value<std::int32_t>(layer_, *attrs + *w.attrs_nice);
    if (!nice) {
      unreadable(task, "workqueue_attrs.nice", *attrs + *w.attrs_nice);
      return std::nullopt;
    }
    return "kworker/" + std::to_string(*cpu) + ":" + std::to_string(*id) + (*nice < 0 ? "H" : "");
  }

  // A pointer read on a task's behalf; NULL counts as unreadable unless the kernel allows it.
  std::optional<Addr> read_pointer(const Task& task, std::string_view name, Addr at, bool may_be_null = false) {
    auto value = read_value<std::uint64_t>(layer_, at);
    if (!value) {
      unreadable(task, name, at);
      return std::nullopt;
    }
    if (*value == 0 && !may_be_null) {
      unreadable(task, name, at, "is NULL");
      return std::nullopt;
    }
    return *value;
  }

  // real_parent's tgid. Kernel threads and init have swapper (pid 0) as real_parent.
  std::optional<std::int32_t> parent_tgid(const Task& task) {
    const auto parent = read_pointer(task, "real_parent", task.address + layout_.real_parent);
    if (!parent) return std::nullopt;
    if (auto tgid = read_value<std::int32_t>(layer_, *parent + layout_.tgid)) return *tgid;
    unreadable(task, "real_parent->tgid", *parent + layout_.tgid);
    return std::nullopt;
  }

  void read_credentials(Task& task) {
    const auto cred = read_pointer(task, "real_cred", task.address + layout_.cred);
    if (!cred) return;
    auto id = [&](std::string_view name, std::uint32_t offset) -> std::optional<std::uint32_t> {
      auto value = read_value<std::uint32_t>(layer_, *cred + offset);
      if (value) return *value;
      unreadable(task, name, *cred + offset);
      return std::nullopt;
    };
    task.uid = id("cred.uid", layout_.cred_uid);
    task.gid = id("cred.gid", layout_.cred_gid);
    task.euid = id("cred.euid", layout_.cred_euid);
    task.egid = id("cred.egid", layout_.cred_egid);
  }

  const Layer& layer_;
  const TaskLayout& layout_;
  bool start_overflow_warned_ = false;
  Diagnostics& diagnostics_;
  std::size_t thread_entries_left_ = kMaxThreadEntries;
  bool budget_warned_ = false;
  std::optional<std::int64_t> boot_time_;
};

}  // namespace

Expected<void> for_each_task(const Kernel& kernel, bool include_threads, Diagnostics& diagnostics,
                             const std::function<bool(Task&&)>& visit) {
  if (kernel.os() != "linux") return make_error(Errc::invalid_argument, "not a Linux kernel");
  const auto& bound = kernel.layout<TaskLayout>();  // bound once per kernel
  if (!bound) return bound.error();
  const TaskLayout& layout = *bound;
  const auto init_task = kernel.symbol("init_task");
  if (!init_task) return make_error(Errc::not_found, "profile has no symbol 'init_task'");

  TaskReader reader(kernel, layout, diagnostics);
  std::size_t visited = 0;
  bool stopped = false;  // by the caller, or at kMaxTasks
  auto hand_over = [&](Task&& task) {
    if (visited == kMaxTasks) {
      diagnostics.warn("tasks: more than " + std::to_string(kMaxTasks) + " tasks and threads; stopped");
      stopped = true;
      return false;
    }
    ++visited;
    if (!visit(std::move(task))) stopped = true;
    return !stopped;
  };
  const ListWalk walk = walk_list(kernel.kernel_layer(), *init_task + layout.tasks, kMaxTasks, [&](Addr node) {
    const Addr address = node - layout.tasks;
    auto task = reader.read(address);
    if (!task) {
      diagnostics.warn("task at " + hex(address) + ": " + task.error().message);
      return true;
    }
    const ThreadGroup group = reader.thread_group(*task);
    std::optional<std::uint32_t> threads;
    if (group.complete) threads = static_cast<std::uint32_t>(group.members.size());
    task->threads = threads;
    if (!hand_over(std::move(*task))) return false;
    for (std::size_t i = 1; include_threads && i < group.members.size(); ++i) {
      auto thread = reader.read(group.members[i]);
      if (!thread) {
        diagnostics.warn("thread at " + hex(group.members[i]) + ": " + thread.error().message);
        continue;
      }
      thread->threads = threads;
      if (!hand_over(std::move(*thread))) return false;
    }
    return true;
  });
  if (walk.end != ListEnd::complete && !stopped) diagnostics.warn("task list: " + walk.problem);
  if (visited == 0 && walk.end == ListEnd::unreadable) return make_error(Errc::unmapped, walk.problem);
  return {};
}

Expected<std::vector<Task>> list_tasks(const Kernel& kernel, bool include_threads, Diagnostics& diagnostics) {
  std::vector<Task> tasks;
  VMI_TRY_VOID(for_each_task(kernel, include_threads, diagnostics, [&](Task&& task) {
    tasks.push_back(std::move(task));
    return true;
  }));
  return tasks;
}

Expected<std::vector<Task>> read_tasks(const Kernel& kernel, std::span<const Addr> addresses,
                                       Diagnostics& diagnostics) {
  if (kernel.os() != "linux") return make_error(Errc::invalid_argument, "not a Linux kernel");
  const auto& bound = kernel.layout<TaskLayout>();
  if (!bound) return bound.error();
  TaskReader reader(kernel, *bound, diagnostics);
  std::vector<Task> tasks;
  tasks.reserve(std::min(addresses.size(), kMaxTasks));
  for (const Addr address : addresses.first(std::min(addresses.size(), kMaxTasks))) {
    auto task = reader.read(address);
    if (task) {
      tasks.push_back(std::move(*task));
    } else {
      diagnostics.warn("task at " + hex(address) + ": " + task.error().message);
    }
  }
  return tasks;
}

}  // namespace vmi::linux_objects
