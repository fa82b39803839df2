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

struct TaskLayout {
  std::uint32_t tasks, pid, tgid, comm, real_parent, cred, flags, start_time;
  std::optional<std::uint32_t> start_boottime, signal, thread_node;
  std::uint32_t cred_uid, cred_gid, cred_euid, cred_egid;
  std::optional<std::uint32_t> signal_thread_head;
  // What /proc shows for kernel threads (fs/proc/array.c proc_task_name): the kthread's full
  // name, or a workqueue worker's comm plus "+desc"/"-desc". Absent on kernels without them.
  std::optional<std::uint32_t> worker_private, kthread_full_name, kthread_data, worker_desc, worker_current_work;
  std::uint32_t worker_desc_size = 0;

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
    if (auto o = bind_offset(p, "task_struct", "worker_private")) l.worker_private = *o;
    if (auto o = bind_offset(p, "kthread", "full_name")) l.kthread_full_name = *o;
    if (auto o = bind_offset(p, "kthread", "data")) l.kthread_data = *o;
    if (auto desc = p.field("worker", "desc")) {
      l.worker_desc = desc->offset;
      l.worker_desc_size = static_cast<std::uint32_t>(p.size_of(desc->type).value_or(0));
    }
    if (auto o = bind_offset(p, "worker", "current_work")) l.worker_current_work = *o;
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

class TaskReader {
 public:
  TaskReader(const Kernel& kernel, const TaskLayout& layout, Diagnostics& diagnostics)
      : layer_(kernel.kernel_layer()),
        layout_(layout),
        diagnostics_(diagnostics),
        boot_time_(boot_time_unix_ns(kernel)) {}

  Expected<Task> read(Addr address) {
    Task task;
    task.address = address;
    task.pid = VMI_TRY(read_value<std::int32_t>(layer_, address + layout_.pid));
    task.tgid = VMI_TRY(read_value<std::int32_t>(layer_, address + layout_.tgid));
    char comm[kCommSize] = {};
    VMI_TRY_VOID(read_exact(layer_, address + layout_.comm, std::as_writable_bytes(std::span(comm))));
    task.comm.assign(comm, strnlen(comm, kCommSize));
    const auto flags = read_value<std::uint32_t>(layer_, address + layout_.flags);
    task.kernel_thread = flags && (*flags & kPfKthread) != 0;
    task.name = task.comm;
    if (task.kernel_thread) task.name = kernel_thread_name(address, task.comm, (*flags & kPfWqWorker) != 0);
    task.ppid = parent_tgid(address);
    read_credentials(task);
    const std::uint32_t start = layout_.start_boottime.value_or(layout_.start_time);
    if (auto ns = read_value<std::uint64_t>(layer_, address + start)) task.start_boottime_ns = *ns;
    if (boot_time_) task.creation_unix_ns = *boot_time_ + static_cast<std::int64_t>(task.start_boottime_ns);
    return task;
  }

  // Addresses of every thread of a group, leader first, walking signal->thread_head.
  std::vector<Addr> thread_group(Addr leader) {
    std::vector<Addr> members{leader};
    if (!layout_.signal || !layout_.thread_node || !layout_.signal_thread_head) return members;
    auto signal = read_value<std::uint64_t>(layer_, leader + *layout_.signal);
    if (!signal || *signal == 0) return members;
    if (thread_entries_left_ == 0) {
      if (!budget_warned_) {
        diagnostics_.warn("thread lists: more than " + std::to_string(kMaxThreadEntries) +
                          " entries over all thread groups; later groups are counted as their leader only");
        budget_warned_ = true;
      }
      return members;
    }
    members.clear();
    const std::uint32_t node_offset = *layout_.thread_node;
    ListWalk walk = walk_list(layer_, *signal + *layout_.signal_thread_head, thread_entries_left_, [&](Addr node) {
      members.push_back(node - node_offset);
      return true;
    });
    thread_entries_left_ -= walk.entries;
    if (walk.end != ListEnd::complete) diagnostics_.warn("threads of task " + hex(leader) + ": " + walk.problem);
    if (members.empty()) members.push_back(leader);
    // The leader first, whatever the list order, so thread rows follow their process.
    auto it = std::find(members.begin(), members.end(), leader);
    if (it != members.end()) std::rotate(members.begin(), it, it + 1);
    return members;
  }

 private:
  std::string kernel_thread_name(Addr task, const std::string& comm, bool workqueue_worker) {
    if (!layout_.worker_private) return comm;
    auto kthread = read_value<std::uint64_t>(layer_, task + *layout_.worker_private);
    if (!kthread || *kthread == 0) return comm;
    if (workqueue_worker && layout_.kthread_data && layout_.worker_desc && layout_.worker_current_work) {
      auto worker = read_value<std::uint64_t>(layer_, *kthread + *layout_.kthread_data);
      if (!worker || *worker == 0) return comm;
      auto desc = read_c_string(layer_, *worker + *layout_.worker_desc, layout_.worker_desc_size);
      if (!desc || desc->empty()) return comm;
      auto current = read_value<std::uint64_t>(layer_, *worker + *layout_.worker_current_work);
      return comm + (current && *current != 0 ? "+" : "-") + *desc;
    }
    if (layout_.kthread_full_name) {
      auto full_name = read_value<std::uint64_t>(layer_, *kthread + *layout_.kthread_full_name);
      if (full_name && *full_name != 0) {
        if (auto text = read_c_string(layer_, *full_name, kMaxFullName - 1); text && !text->empty()) return *text;
      }
    }
    return comm;
  }

  std::int32_t parent_tgid(Addr task) {
    auto parent = read_value<std::uint64_t>(layer_, task + layout_.real_parent);
    if (!parent || *parent == 0) return 0;
    if (auto tgid = read_value<std::int32_t>(layer_, *parent + layout_.tgid)) return *tgid;
    diagnostics_.warn("task " + hex(task) + ": parent " + hex(*parent) + " is unreadable");
    return 0;
  }

  void read_credentials(Task& task) {
    auto cred = read_value<std::uint64_t>(layer_, task.address + layout_.cred);
    if (!cred || *cred == 0) {
      diagnostics_.warn("task " + std::to_string(task.pid) + " at " + hex(task.address) +
                        ": credentials pointer unreadable");
      return;
    }
    auto field = [&](std::uint32_t offset) -> std::optional<std::uint32_t> {
      auto value = read_value<std::uint32_t>(layer_, *cred + offset);
      if (!value) return std::nullopt;
      return *value;
    };
    task.uid = field(layout_.cred_uid);
    task.gid = field(layout_.cred_gid);
    task.euid = field(layout_.cred_euid);
    task.egid = field(layout_.cred_egid);
    if (!task.uid) diagnostics_.warn("task " + std::to_string(task.pid) + ": cred at " + hex(*cred) + " is unreadable");
  }

  const Layer& layer_;
  const TaskLayout& layout_;
  Diagnostics& diagnostics_;
  std::size_t thread_entries_left_ = kMaxThreadEntries;
  bool budget_warned_ = false;
  std::optional<std::int64_t> boot_time_;
};

}  // namespace

Expected<void> for_each_task(const Kernel& kernel, bool include_threads, Diagnostics& diagnostics,
                             const std::function<bool(Task&&)>& visit) {
  if (kernel.os() != "linux") return make_error(Errc::invalid_argument, "not a Linux kernel");
  const TaskLayout layout = VMI_TRY(TaskLayout::bind(kernel.profile()));
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
    const std::vector<Addr> group = reader.thread_group(address);
    const auto threads = static_cast<std::uint32_t>(group.size());
    task->threads = threads;
    if (!hand_over(std::move(*task))) return false;
    for (std::size_t i = 1; include_threads && i < group.size(); ++i) {
      auto thread = reader.read(group[i]);
      if (!thread) {
        diagnostics.warn("thread at " + hex(group[i]) + ": " + thread.error().message);
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

}  // namespace vmi::linux_objects
