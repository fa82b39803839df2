// Carving task_structs out of physical memory. Every task points at one of the kernel's few
// scheduler classes (task->sched_class), so the scan looks for aligned words equal to one of
// their addresses and judges the task_struct around each hit by its own consistency, never by a
// list a rootkit can unlink it from. The image is read in chunks by every core (scan_physical),
// which drops the file's pages from the process as the scan passes them.
#include <algorithm>
#include <array>
#include <cstring>

#include "os/field_reader.hpp"
#include "os/linux/kernel_stack.hpp"
#include "os/linux/list_poison.hpp"
#include "os/physical_scan.hpp"
#include "vmi/linux.hpp"
#include "vmi/object.hpp"

namespace vmi::linux_objects {

namespace {

constexpr std::int64_t kPidMaxLimit = std::int64_t{1} << 22;  // PID_MAX_LIMIT on 64-bit
constexpr std::uint32_t kPfExiting = 0x00000004;              // include/linux/sched.h
constexpr std::uint32_t kPfKthread = 0x00200000;
constexpr std::uint32_t kExitStates[] = {0, 0x10, 0x20, 0x30};  // running, EXIT_DEAD, EXIT_ZOMBIE, EXIT_TRACE
constexpr std::size_t kCommSize = 16;                           // TASK_COMM_LEN

// Every scheduler class a kernel of 4.x to 6.12 may have (ext with CONFIG_SCHED_CLASS_EXT).
constexpr std::string_view kSchedulerClasses[] = {"stop_sched_class", "dl_sched_class",  "rt_sched_class",
                                                  "fair_sched_class", "ext_sched_class", "idle_sched_class"};

struct TaskScanLayout {
  std::uint32_t sched_class, pid, tgid, comm, flags, exit_state, tasks, stack, mm, active_mm, real_parent;
  std::uint32_t first = 0, end = 0;  // the span of task_struct these fields lie in

  static Expected<TaskScanLayout> bind(const Profile& p) {
    TaskScanLayout l{};
    l.sched_class = VMI_TRY(bind_offset(p, "task_struct", "sched_class"));
    l.pid = VMI_TRY(bind_offset(p, "task_struct", "pid"));
    l.tgid = VMI_TRY(bind_offset(p, "task_struct", "tgid"));
    l.comm = VMI_TRY(bind_offset(p, "task_struct", "comm"));
    l.flags = VMI_TRY(bind_offset(p, "task_struct", "flags"));
    l.exit_state = VMI_TRY(bind_offset(p, "task_struct", "exit_state"));
    l.tasks = VMI_TRY(bind_offset(p, "task_struct", "tasks"));
    l.stack = VMI_TRY(bind_offset(p, "task_struct", "stack"));
    l.mm = VMI_TRY(bind_offset(p, "task_struct", "mm"));
    l.active_mm = VMI_TRY(bind_offset(p, "task_struct", "active_mm"));
    l.real_parent = VMI_TRY(bind_offset(p, "task_struct", "real_parent"));
    const std::array<std::pair<std::uint32_t, std::uint32_t>, 11> fields = {{{l.sched_class, 8},
                                                                             {l.pid, 4},
                                                                             {l.tgid, 4},
                                                                             {l.comm, kCommSize},
                                                                             {l.flags, 4},
                                                                             {l.exit_state, 4},
                                                                             {l.tasks, 16},
                                                                             {l.stack, 8},
                                                                             {l.mm, 8},
                                                                             {l.active_mm, 8},
                                                                             {l.real_parent, 8}}};
    l.first = UINT32_MAX;
    for (const auto& [offset, size] : fields) {
      l.first = std::min(l.first, offset);
      l.end = std::max(l.end, offset + size);
    }
    return l;
  }
};

// The scheduler classes' run-time addresses, sorted, and the range they span: almost every word
// of memory falls outside it and is rejected with one comparison.
struct SchedulerClasses {
  std::vector<Addr> addresses;
  Addr lowest = 0, span = 0;

  bool contains(std::uint64_t word) const {
    return word - lowest <= span && std::binary_search(addresses.begin(), addresses.end(), word);
  }
};

// The judge of one candidate: the rules of CarvedTask (vmi/linux.hpp), on the task's own bytes.
class TaskJudge {
 public:
  TaskJudge(const TaskScanLayout& layout, std::uint8_t virtual_bits) : layout_(layout), kernel_half_(virtual_bits) {}

  std::optional<CarvedTask> judge(const Layer& image, Addr task) const {
    std::array<std::byte, 16384> bytes{};
    const std::uint32_t size = layout_.end - layout_.first;
    if (size > bytes.size() || !read_exact(image, task + layout_.first, std::span(bytes).first(size))) return {};
    auto field = [&]<class T>(std::uint32_t offset, T) {
      T value;
      std::memcpy(&value, bytes.data() + (offset - layout_.first), sizeof value);
      return value;
    };
    CarvedTask carved;
    carved.physical = task;
    carved.pid = field(layout_.pid, std::int32_t{});
    carved.tgid = field(layout_.tgid, std::int32_t{});
    if (carved.pid < 0 || carved.pid >= kPidMaxLimit || carved.tgid < 0 || carved.tgid >= kPidMaxLimit) return {};
    if (carved.pid == 0 && carved.tgid != 0) return {};
    carved.exit_state = field(layout_.exit_state, std::uint32_t{});
    if (std::ranges::find(kExitStates, carved.exit_state) == std::end(kExitStates)) return {};
    carved.flags = field(layout_.flags, std::uint32_t{});
    const bool exiting = carved.exit_state != 0 || (carved.flags & kPfExiting) != 0;

    const std::uint64_t next = field(layout_.tasks, std::uint64_t{});
    const std::uint64_t prev = field(layout_.tasks + 8, std::uint64_t{});
    // Each link is a pointer or its own poison: list_del() poisons both, list_del_rcu() (the
    // kernel's own release_task(), and a rootkit unlinking a live task) only prev.
    if (!kernel_half_.plausible_link(next, kListPoisonNext) || !kernel_half_.plausible_link(prev, kListPoisonPrev))
      return {};
    const std::uint64_t stack = field(layout_.stack, std::uint64_t{});
    if (stack == 0 ? !exiting : (!kernel_pointer(stack) || stack % kThreadSize != 0)) return {};
    carved.mm = field(layout_.mm, std::uint64_t{});
    const std::uint64_t active_mm = field(layout_.active_mm, std::uint64_t{});
    if (carved.mm != 0 && (!kernel_pointer(carved.mm) || active_mm != carved.mm)) return {};
    if (carved.mm == 0 && (carved.flags & kPfKthread) == 0 && !exiting) return {};
    if (active_mm != 0 && !kernel_pointer(active_mm)) return {};
    carved.real_parent = field(layout_.real_parent, std::uint64_t{});
    if (!kernel_pointer(carved.real_parent)) return {};

    const char* comm = reinterpret_cast<const char*>(bytes.data() + (layout_.comm - layout_.first));
    const std::size_t length = strnlen(comm, kCommSize);
    if (length == 0 || length == kCommSize) return {};
    const auto is_control = [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; };
    if (std::any_of(comm, comm + length, is_control)) return {};
    carved.comm.assign(comm, length);
    return carved;
  }

 private:
  bool kernel_pointer(std::uint64_t value) const { return kernel_half_.contains(value); }

  const TaskScanLayout& layout_;
  KernelHalf kernel_half_;
};

}  // namespace

Expected<std::vector<CarvedTask>> scan_for_tasks(const Kernel& kernel, const PhysicalImage& image,
                                                 const TaskScanOptions& options, Diagnostics& diagnostics,
                                                 TaskScanStatistics* statistics) {
  if (kernel.os() != "linux") return make_error(Errc::invalid_argument, "not a Linux kernel");
  const auto& bound = kernel.layout<TaskScanLayout>();
  if (!bound) return bound.error();
  SchedulerClasses classes;
  for (std::string_view name : kSchedulerClasses)
    if (auto address = kernel.symbol(name)) classes.addresses.push_back(*address);
  if (classes.addresses.empty()) return make_error(Errc::not_found, "profile has no scheduler class symbol");
  std::ranges::sort(classes.addresses);
  classes.lowest = classes.addresses.front();
  classes.span = classes.addresses.back() - classes.lowest;

  const TaskJudge judge(*bound, kernel.kernel_layer().mode().virtual_bits);
  // Each worker keeps its own finds and count, merged after the scan.
  const unsigned workers = physical_scan_workers(image, {options.workers, {}});
  std::vector<std::vector<CarvedTask>> found(workers);
  std::vector<std::uint64_t> matches(workers, 0);
  const std::uint32_t sched_class = bound->sched_class;
  const auto scan = scan_physical(image, {options.workers, options.progress},
                                  [&](unsigned worker, Addr begin, std::span<const std::byte> bytes) {
                                    for (std::size_t at = 0; at + 8 <= bytes.size(); at += 8) {
                                      std::uint64_t word = 0;
                                      std::memcpy(&word, bytes.data() + at, 8);
                                      if (!classes.contains(word)) [[likely]]
                                        continue;
                                      ++matches[worker];
                                      const Addr hit = begin + at;
                                      if (hit < sched_class) continue;
                                      if (auto task = judge.judge(image, hit - sched_class))
                                        found[worker].push_back(std::move(*task));
                                    }
                                  });
  std::vector<CarvedTask> tasks;
  for (auto& list : found) std::ranges::move(list, std::back_inserter(tasks));
  std::ranges::sort(tasks, {}, &CarvedTask::physical);
  if (tasks.size() > kMaxCarvedTasks) {
    diagnostics.warn("psscan: " + std::to_string(tasks.size()) + " tasks carved, more than " +
                     std::to_string(kMaxCarvedTasks) + "; those at the highest addresses are left out");
    tasks.resize(kMaxCarvedTasks);
  }
  // The parent's tgid (the PPID a listing shows), through the kernel's page tables.
  for (CarvedTask& task : tasks) {
    const FieldReader fields(kernel.kernel_layer(), diagnostics, [&] {
      return "task at physical " + hex(task.physical) + " (pid " + std::to_string(task.pid) + ")";
    });
    task.ppid = fields.read<std::int32_t>("real_parent->tgid", task.real_parent + bound->tgid);
  }
  for (const Addr chunk : scan.unreadable_chunks)
    diagnostics.warn("psscan: physical memory at " + hex(chunk) + " (up to " +
                     std::to_string(kPhysicalScanChunk >> 20) + " MiB) is listed by " + std::string(image.name()) +
                     " but unreadable; not scanned");
  if (statistics != nullptr) {
    std::uint64_t matched = 0;
    for (const std::uint64_t count : matches) matched += count;
    *statistics = {.bytes = scan.bytes, .workers = scan.workers, .matches = matched};
  }
  return tasks;
}

}  // namespace vmi::linux_objects
