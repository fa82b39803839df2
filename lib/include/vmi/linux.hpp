// Linux kernel objects as typed values, for plugins and for programs linking the library.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vmi/diagnostics.hpp"
#include "vmi/kernel.hpp"
#include "vmi/value.hpp"

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

// The task_struct CPU `cpu` was running (per_cpu(current_task, cpu): current_task through 6.1,
// pcpu_hot.current_task since 6.2), kernel virtual: its idle task when it had nothing to run.
// Unreadable, with a warning naming the CPU, the field and its address, when __per_cpu_offset[cpu]
// or the pointer cannot be read or is NULL. Fails only when the profile lacks the variables.
Expected<Maybe<Addr>> current_task_of(const Kernel& kernel, std::uint32_t cpu, Diagnostics& diagnostics);

// current_task_of for every CPU the kernel set up (nr_cpu_ids of them): task_struct address ->
// CPU. Fails, naming what, when the CPU count or a CPU's task cannot be read.
Expected<std::map<Addr, std::uint32_t>> current_tasks(const Kernel& kernel, Diagnostics& diagnostics);

// The tasks at these task_struct addresses (found by another route than the task list), read as
// for_each_task reads them, in the order given; a task whose pid, tgid or comm cannot be read is
// reported and left out. `threads` is not read (it is empty).
Expected<std::vector<Task>> read_tasks(const Kernel& kernel, std::span<const Addr> addresses, Diagnostics& diagnostics);

// The user registers a task saved on entering the kernel: the struct pt_regs the entry code pushes
// at the top of its kernel stack (arch/x86/include/asm/ptrace.h). For a task blocked in a system
// call they are the call's number (orig_ax) and arguments, as /proc/PID/syscall shows them.
struct UserRegisters {
  Addr address = 0;  // the pt_regs, kernel virtual
  std::uint64_t orig_ax = 0, ax = 0, di = 0, si = 0, dx = 0, r10 = 0, r8 = 0, r9 = 0;
  std::uint64_t ip = 0, sp = 0, flags = 0;
  std::uint16_t cs = 0;
  // The system call the task entered the kernel through; nothing when it entered through an
  // interrupt or exception (orig_ax is -1 then).
  std::optional<std::int64_t> syscall() const {
    const auto number = static_cast<std::int64_t>(orig_ax);
    if (number < 0) return std::nullopt;
    return number;
  }
  // The x86-64 system call arguments, in order: rdi, rsi, rdx, r10, r8, r9.
  std::array<std::uint64_t, 6> arguments() const { return {di, si, dx, r10, r8, r9}; }
};

// The user registers saved at the top of `task`'s kernel stack (task->stack + THREAD_SIZE): not
// applicable for a kernel thread, which has none; unreadable, with a warning naming the task and
// the address, when the stack is not in the snapshot or the saved CS is no user code selector
// (the frame is not a user entry's). The layout is the profile's struct pt_regs where it has one,
// else the one the x86-64 entry code pushes. A task running on a CPU at the snapshot may have
// left the kernel since it saved them: they are those of its last entry.
Expected<Maybe<UserRegisters>> user_registers(const Kernel& kernel, const Task& task, Diagnostics& diagnostics);

// Every task the initial pid namespace's pid table holds (init_pid_ns.idr, the radix tree of 4.15
// and later; pid_hash before, which this reader does not know): the task_struct each allocated
// pid's PIDTYPE_PID list names, in pid order. A pid that no task holds any longer (a session or
// process group outliving its leader) is left out, as /proc leaves it out. Bounded (kMaxTasks
// entries, kMaxPidTableNodes nodes, the tree's depth) and cycle-safe; a node that cannot be read
// or does not belong where it is found is skipped with a warning naming its address. Fails only
// when the profile lacks the structures or the table's root cannot be read.
inline constexpr std::size_t kMaxPidTableNodes = std::size_t{1} << 16;
struct PidTableEntry {
  std::int32_t pid = 0;  // the number in the initial namespace (the tree's index)
  Addr pid_struct = 0;   // struct pid
  Addr task = 0;         // task_struct
};
Expected<void> for_each_pid_table_entry(const Kernel& kernel, Diagnostics& diagnostics,
                                        const std::function<bool(const PidTableEntry&)>& visit);

// A task_struct carved from physical memory, judged by its own consistency rather than by any
// list holding it (a hidden, exited or freed task is found as well as a listed one): sched_class
// points at one of the kernel's scheduler classes; pid and tgid lie within PID_MAX_LIMIT; the
// exit state is one the kernel sets; each task-list link is a kernel pointer or the poison
// list_del() or list_del_rcu() leaves in it; the stack is a THREAD_SIZE-aligned kernel pointer (NULL once an exited
// task's stack is freed); a task with an mm has it as active_mm too, and one without is a kernel
// thread or exiting; the real parent is a kernel pointer; comm is a non-empty NUL-terminated
// name without control characters.
struct CarvedTask {
  Addr physical = 0;  // task_struct's physical address
  std::int32_t pid = 0, tgid = 0;
  std::string comm;
  std::uint32_t flags = 0;           // PF_*
  std::uint32_t exit_state = 0;      // 0, EXIT_DEAD 0x10, EXIT_ZOMBIE 0x20, EXIT_TRACE 0x30
  Addr real_parent = 0;              // kernel virtual
  std::optional<std::int32_t> ppid;  // real_parent->tgid; nothing (with a warning) when unreadable
  Addr mm = 0;
};

struct TaskScanOptions {
  // Threads reading the image at once; 0: one per core (std::thread::hardware_concurrency).
  unsigned workers = 0;
  // Called from the calling thread as the scan advances (bytes scanned, bytes in all); may be empty.
  std::function<void(std::uint64_t done, std::uint64_t total)> progress;
};

// What a scan went through.
struct TaskScanStatistics {
  std::uint64_t bytes = 0;    // of physical memory scanned
  unsigned workers = 0;       // threads that scanned
  std::uint64_t matches = 0;  // words equal to a scheduler class's address (candidates judged)
};

// At most this many tasks are carved (kMaxTasks live tasks, and as many exited ones again).
inline constexpr std::size_t kMaxCarvedTasks = kMaxTasks * 2;

// Scans all of `image` (the physical memory `kernel` was found in) for tasks (CarvedTask), in
// chunks on `options.workers` threads, the file pages behind scanned chunks dropped from the
// process as the scan goes, so peak RSS stays bounded whatever the image's size. Tasks are
// returned in physical-address order. Fails only when the profile lacks task_struct's fields or
// every scheduler class symbol.
Expected<std::vector<CarvedTask>> scan_for_tasks(const Kernel& kernel, const PhysicalImage& image,
                                                 const TaskScanOptions& options, Diagnostics& diagnostics,
                                                 TaskScanStatistics* statistics = nullptr);

// One loaded kernel module, as /proc/modules and /sys/module show it. The name is always read (a
// module without one is reported and skipped); every other field is empty when it could not be
// read, with a warning naming the module's address and the field.
struct Module {
  Addr address = 0;  // struct module, kernel virtual
  std::string name;
  std::optional<std::string> state;        // "Live", "Loading", "Unloading" or "Unformed"
  std::optional<std::uint64_t> size;       // every section of the module, as /proc/modules counts it
  std::optional<Addr> base;                // the core text's load address (/proc/modules' address)
  std::optional<std::uint64_t> code_size;  // the core text's size
  std::optional<std::int64_t> refcount;    // module_refcount(): refcnt less its base reference
  // The modules using this one and "[permanent]" for a module with an init but no exit, joined
  // by ",": /proc/modules' fourth column without its trailing comma, empty (not "-") for none.
  std::optional<std::string> used_by;
  std::optional<std::string> taints;  // the module's taint letters, "OE" ("" for none)
  // Parameters as "name=value" joined by ", ", values formatted as sysfs shows them.
  std::optional<std::string> arguments;
};

// At most this many modules are visited (a real kernel loads a few hundred).
inline constexpr std::size_t kMaxModules = 1u << 16;

// Visits every module on the kernel's `modules` list, in list order (newest first, as
// /proc/modules). Unlike /proc, a module still being laid out (state "Unformed") is shown too.
// Bounded (kMaxModules) and cycle-safe; fails only when the list head is unknown or unreadable.
Expected<void> for_each_module(const Kernel& kernel, Diagnostics& diagnostics,
                               const std::function<bool(Module&&)>& visit);

// The module whose struct module is at `address`, found by another route than the list (a scan,
// sysfs); fails when its name cannot be read.
Expected<Module> read_module(const Kernel& kernel, Addr address, Diagnostics& diagnostics);

// Modules found by two routes besides the `modules` list, as struct module addresses in address
// order. The scan reads the module area (mod_tree's addr_min..addr_max, at most
// kMaxModuleScanBytes) for a struct module whose mkobj.mod points back to it, with a state and a
// printable name; sysfs walks /sys/module's kset (module_kset), leaving out built-in modules,
// which have a kobject but no struct module. Each fails only when the profile lacks the structures.
inline constexpr std::uint64_t kMaxModuleScanBytes = std::uint64_t{1} << 31;
Expected<std::vector<Addr>> scan_for_modules(const Kernel& kernel, Diagnostics& diagnostics);
Expected<std::vector<Addr>> sysfs_modules(const Kernel& kernel, Diagnostics& diagnostics);

// A module as it lies in memory, enough to rebuild it as a relocatable ELF file: its loaded
// sections, named as /sys/module/NAME/sections names them, and its symbols as /proc/kallsyms
// lists them. Sections of the init regions, freed once the module's init ran, are left out.
struct ModuleSection {
  std::string name;
  Addr address = 0;
  // From the section's address to the next section's or the end of its memory region (a section's
  // own size is not kept in memory): alignment padding is counted in.
  std::uint64_t size = 0;
  bool executable = false, writable = false;  // from the region holding it
  std::vector<std::byte> bytes;               // `size` bytes; pages the snapshot lacks are zero
};
struct ModuleSymbol {
  std::string name;
  Addr address = 0;
  std::uint64_t size = 0;
  std::uint8_t info = 0, other = 0;  // Elf64_Sym's st_info and st_other, as the kernel keeps them
};
struct ModuleImage {
  std::vector<ModuleSection> sections;  // in address order
  std::vector<ModuleSymbol> symbols;    // in the module's core symbol table's order
  std::vector<Addr> missing_pages;      // pages of the sections not in the snapshot, in order
};

// At most this many sections, symbols and bytes are read for one module (real modules have tens
// of sections, thousands of symbols and a few MiB).
inline constexpr std::uint32_t kMaxModuleSections = 4096;
inline constexpr std::uint32_t kMaxModuleSymbols = 1u << 20;
inline constexpr std::uint64_t kMaxModuleImageBytes = std::uint64_t{1} << 26;

// Reads `module`'s sections (module->sect_attrs) and core symbols (module->kallsyms). Fails when
// the profile cannot place them or the section table is unreadable; unreadable symbols are left
// out with a warning naming the module, the field and its address.
Expected<ModuleImage> read_module_image(const Kernel& kernel, const Module& module, Diagnostics& diagnostics);
// The module's core symbols alone (what /proc/kallsyms lists for it), without its sections.
Expected<std::vector<ModuleSymbol>> read_module_symbols(const Kernel& kernel, const Module& module,
                                                        Diagnostics& diagnostics);

// The kernel's code as a hook check sees it: the kernel image's text (_stext.._etext, and the
// init text _sinittext.._einittext the kernel's own stale pointers may lead to) and each listed
// module's core text. A handler elsewhere (module data, the direct map, a module unlinked
// from the list) belongs to no known code.
struct CodeOwner {
  std::string module;                 // "__kernel__" or a module's name; empty: no known code
  std::optional<std::string> symbol;  // "name+0xoff" when the owner's symbols name the address
};
class KnownCode {
 public:
  // Fails when the profile lacks _stext/_etext or the module list cannot be read.
  static Expected<KnownCode> gather(const Kernel& kernel, Diagnostics& diagnostics);
  CodeOwner owner_of(Addr address) const;

 private:
  struct ModuleText {
    Addr start = 0, end = 0;
    std::string name;
    std::vector<std::pair<Addr, std::string>> symbols;  // sorted by address
  };
  const Kernel* kernel_ = nullptr;
  std::vector<std::pair<Addr, Addr>> kernel_text_;  // [start, end) of the text and the init text
  std::vector<ModuleText> modules_;
};

// One return address on a kernel stack: the word at `slot` points into known code right after a
// call instruction.
struct StackFrame {
  Addr slot = 0;            // where on the stack, kernel virtual
  Addr return_address = 0;  // the word there
  CodeOwner owner;          // whose code it returns into, and the symbol when known
};

// At most this many frames are reported from one stack.
inline constexpr std::size_t kMaxStackFrames = 32;

// The return addresses on the kernel stack from `sp` up to the top of its THREAD_SIZE-aligned
// block, innermost first, found by scanning every word (Debian's kernels unwind with ORC, not
// frame pointers): a word counts when it points into `code` and the bytes before it decode
// (Capstone) as a call that ends exactly there. A scan also finds stale return addresses a frame
// left behind; the first frame is the innermost. A stack that ends in an unmapped page before its
// block does (an IRQ stack, vmapped with a guard page) leads on to the stack its topmost word
// points into (the interrupted one), as the kernel's unwinder goes on. Bounded (kMaxStackFrames,
// four stacks); RSP's own page missing is warned about, naming it. Fails only when Capstone cannot
// be loaded.
Expected<std::vector<StackFrame>> scan_kernel_stack(const Kernel& kernel, const KnownCode& code, Addr sp,
                                                    Diagnostics& diagnostics);

// A function pointer the kernel calls through, where a rootkit may put its own code.
struct Handler {
  std::string owner;            // what holds it: "tcp4_seq_ops", a tty's name ("ttyS0"), a notifier_block's address
  std::string member;           // the pointer's field: "show", "receive_buf", "notifier_call"
  Addr at = 0;                  // where the pointer is kept
  std::optional<Addr> handler;  // its value; empty (with a warning) when unreadable
};

// The start/next/stop/show of the seq_operations behind /proc/net's tcp, tcp6, udp, udp6, raw,
// raw6, unix, packet, arp and netlink tables (kernels of 4.18 and later), those the profile names.
Expected<std::vector<Handler>> network_seq_handlers(const Kernel& kernel, Diagnostics& diagnostics);
// Each tty's line discipline's receive_buf (tty_drivers → driver->ttys[] → tty->ldisc->ops),
// owner the tty's name; a tty without a line discipline (hung up) is left out. Bounded per driver.
Expected<std::vector<Handler>> tty_receive_handlers(const Kernel& kernel, Diagnostics& diagnostics);
// The notifier_call of every block on keyboard_notifier_list, in chain order; bounded, cycle-safe.
Expected<std::vector<Handler>> keyboard_notifiers(const Kernel& kernel, Diagnostics& diagnostics);

// One record of the kernel log (the printk ring buffer), as /dev/kmsg shows it.
struct LogRecord {
  std::uint64_t sequence = 0;      // printk's sequence number
  std::uint64_t timestamp_ns = 0;  // local_clock() at printk, ns since boot
  std::uint8_t facility = 0;       // 0 kern, 1 user, ... (syslog facilities)
  std::uint8_t level = 0;          // 0 emerg ... 7 debug
  std::uint32_t caller_id = 0;     // 0x80000000 | CPU in interrupt context, else the task's pid
  bool finalized = true;           // false: the last record, still open for a continuation
  std::string text;                // raw bytes, without a trailing newline
  std::string subsystem, device;   // the dictionary (dev_printk_info), empty when none
};

// At most this many records are read (the ring of a 6.1 kernel holds 2^15 descriptors by default
// and log_buf_len allows 2^25 bytes).
inline constexpr std::size_t kMaxLogRecords = std::size_t{1} << 20;

// Visits the kernel log's records, oldest first, from the lockless ring buffer of 5.10 and later
// (`prb`). Records whose descriptor was reused, or whose text block is out of place, are skipped
// with a warning naming the descriptor's address. Fails when the kernel has no such ring (older
// kernels keep a log_buf of struct printk_log records instead) or it cannot be read.
Expected<void> for_each_log_record(const Kernel& kernel, Diagnostics& diagnostics,
                                   const std::function<bool(LogRecord&&)>& visit);

// One mount of a mount namespace, as /proc/PID/mountinfo shows it to a task of that namespace
// (fs/proc_namespace.c show_mountinfo()): paths and names escaped as there (space, tab, newline
// and backslash as \ooo). A field that cannot be read, or that the kernel computes with code
// this reader does not model (a file system's own show_options, show_devname or show_path), is
// unreadable, with a warning naming the mount and why.
struct Mount {
  Addr mount = 0;                  // struct mount, kernel virtual
  std::uint32_t namespace_id = 0;  // the mount namespace's inode number (/proc/PID/ns/mnt)
  std::int32_t pid = 0;            // the process of that namespace whose root the paths are under
  Maybe<std::int32_t> id, parent_id;
  Maybe<std::uint32_t> major, minor;      // the file system's device
  Maybe<std::string> root;                // the mount's root inside its file system
  Maybe<std::string> mount_point;         // as the process sees it
  Maybe<std::string> options;             // per-mount: "rw,nosuid,relatime"
  Maybe<std::string> fields;              // "shared:1 master:2 unbindable", "" for none
  Maybe<std::string> fstype;              // "tmpfs", "fuse.sshfs"
  Maybe<std::string> source;              // mnt_devname, "none" when it has none
  Maybe<std::string> superblock_options;  // "rw,size=1024k,inode64"
};

// At most this many mount namespaces and mounts per namespace are read.
inline constexpr std::size_t kMaxMountNamespaces = 1u << 12;
inline constexpr std::size_t kMaxMounts = 1u << 16;

// Visits every mount of every mount namespace a process uses, namespace by namespace in the
// order their first process is found on the task list, each in /proc/PID/mountinfo's order (the
// namespace's list before 6.8, its tree ordered by mount id since). A mount that is not below the
// process's root is left out, as /proc leaves it out. Bounded and cycle-safe; fails only when
// the profile lacks the structures.
Expected<void> for_each_mount(const Kernel& kernel, Diagnostics& diagnostics,
                              const std::function<bool(Mount&&)>& visit);

// A task's capability sets, as /proc/PID/status shows them (CapInh, CapPrm, CapEff, CapBnd,
// CapAmb), from its objective credentials (real_cred). Bit n is capability n (CAP_CHOWN = 0).
struct Capabilities {
  Maybe<std::uint64_t> inheritable, permitted, effective, bounding;
  Maybe<std::uint64_t> ambient;  // not applicable before 4.3, which had no ambient set
};

// `task`'s capabilities; a set that cannot be read is unreadable, with a warning naming the task,
// the field and its address. Fails only when the profile lacks cred's capability fields.
Expected<Capabilities> capabilities_of(const Kernel& kernel, const Task& task, Diagnostics& diagnostics);

// The address of `task`'s objective credentials (task->real_cred), which only the threads of one
// process share on a clean kernel (copy_creds() gives every other child its own); nothing, with a
// warning, when it is unreadable or NULL. Fails only when the profile lacks the field.
Expected<std::optional<Addr>> credentials_of(const Kernel& kernel, const Task& task, Diagnostics& diagnostics);

// A process's memory as its mm_struct describes it, and where its page tables are.
struct MemoryLayout {
  Addr mm = 0;               // mm_struct, kernel virtual
  Addr page_table_root = 0;  // mm->pgd, physical
  Addr start_code = 0, end_code = 0, start_stack = 0;
  Addr start_brk = 0, brk = 0;                                  // the heap
  Addr arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;  // argv and environment strings
};

// The task's memory layout: not applicable for a task without an mm (a kernel thread),
// unreadable with a warning naming the task, the field and its address when a field cannot be
// read. Fails only when the profile lacks mm_struct's fields.
Expected<Maybe<MemoryLayout>> memory_layout(const Kernel& kernel, const Task& task, Diagnostics& diagnostics);

// The physical address of the task's top-level page table (mm->pgd), read without the rest of its
// memory layout: not applicable for a kernel thread, unreadable with a warning as memory_layout.
Expected<Maybe<Addr>> page_table_root_of(const Kernel& kernel, const Task& task, Diagnostics& diagnostics);

// The task's user address space: its page tables under the kernel's paging mode (kernels with
// page-table isolation included: the kernel's copy of the top table maps user space too), kept
// on the kernel per page-table root. Reads of unmapped or swapped-out pages fail naming the
// address.
std::shared_ptr<const PagedLayer> address_space(const Kernel& kernel, const MemoryLayout& layout);

// At most this much of a process's argument or environment area is read (the kernel caps both
// together at a quarter of the stack limit: 2 MiB by default).
inline constexpr std::size_t kMaxUserStrings = std::size_t{2} << 20;

// The raw bytes of a process's argument area [arg_start, arg_end) or environment area
// [env_start, env_end), read through its own page tables: NUL-separated strings as
// /proc/PID/cmdline and /proc/PID/environ give them. Not applicable for a kernel thread;
// unreadable, with a warning naming the task and the first address not in the snapshot, when a
// page of it is missing. Fails only when the profile lacks mm_struct's fields.
Expected<Maybe<std::string>> process_arguments(const Kernel& kernel, const Task& task, Diagnostics& diagnostics);
Expected<Maybe<std::string>> process_environment(const Kernel& kernel, const Task& task, Diagnostics& diagnostics);

// One memory area of a process (a vm_area_struct), as /proc/PID/maps shows it.
struct MemoryMap {
  Addr vma = 0;             // vm_area_struct, kernel virtual
  Addr start = 0, end = 0;  // [start, end)
  std::uint64_t flags = 0;  // vm_flags (VM_READ 0x1, VM_WRITE 0x2, VM_EXEC 0x4, VM_MAYSHARE 0x80, ...)
  Addr file = 0;            // struct file behind the area (vm_file), 0 for anonymous memory
  // For a file: its offset in bytes (vm_pgoff << 12), its file system's device and its inode
  // number; 0 for anonymous memory, as /proc shows it.
  Maybe<std::uint64_t> page_offset, inode;
  Maybe<std::uint32_t> major, minor;
  // /proc's last column: the file's path (" (deleted)" after an unlinked one), "[heap]",
  // "[stack]", "[vdso]", "[vvar]", "[anon:NAME]", or empty for anonymous memory.
  Maybe<std::string> name;
  std::string permissions() const;  // /proc's "r-xp": read, write, execute, then shared or private
};

// At most this many areas are read from one process (vm.max_map_count is 65530 by default).
inline constexpr std::size_t kMaxMemoryMaps = std::size_t{1} << 18;

// Visits the areas of `task`'s memory (`layout`, its memory_layout) in address order: the maple
// tree of 6.1 and later (mm->mm_mt), else the vm_next list (mm->mmap). The walk is bounded
// (kMaxMemoryMaps areas, the tree's depth and node count) and cycle-safe; a node or area that
// cannot be read, or one that does not belong to this mm or breaks address order, is skipped
// with a warning naming the task and the address. Fails only when the profile lacks the
// structures.
Expected<void> for_each_memory_map(const Kernel& kernel, const Task& task, const MemoryLayout& layout,
                                   Diagnostics& diagnostics, const std::function<bool(MemoryMap&&)>& visit);

// A user process's memory, as walks over every process's areas see it.
struct ProcessMemory {
  const Task& task;
  const MemoryLayout& layout;
  const PagedLayer& space;  // its address space (address_space())
};

// Visits each area of each user process (thread-group leaders with memory: kernel threads have
// none) in task-list order, each process's in address order; `pids`, when not empty, keeps only
// those processes. A process whose memory cannot be read is warned about and skipped. Fails only
// when the profile lacks the structures.
Expected<void> for_each_process_area(const Kernel& kernel, std::span<const std::int64_t> pids, Diagnostics& diagnostics,
                                     const std::function<bool(const ProcessMemory&, MemoryMap&&)>& visit);

// A file system's device number (stat's st_dev) split as the kernel's MAJOR() and MINOR() split it.
struct DeviceNumber {
  std::uint32_t major = 0;
  std::uint32_t minor = 0;
  std::string text() const { return std::to_string(major) + ":" + std::to_string(minor); }
};

// One open file descriptor of a task, as /proc/PID/fd and /proc/PID/fdinfo show it. The inode's
// fields are not applicable when the file has none; any field that cannot be read is unreadable,
// with a warning naming the task, the descriptor, the field and its address.
struct FileDescriptor {
  std::int32_t pid = 0;  // the task's thread-group id
  std::int32_t tid = 0;  // the task's own id
  std::string process;   // the task's comm
  std::int32_t fd = 0;
  Addr file = 0;  // struct file, kernel virtual
  // What readlink(/proc/PID/fd/N) shows: the path through dentries and mount points (with
  // " (deleted)" after an unlinked file), "pipe:[INO]", "socket:[INO]", "anon_inode:[eventfd]".
  std::optional<std::string> path;
  Maybe<DeviceNumber> device;  // the inode's file system (stat's st_dev), shown as "major:minor"
  Maybe<std::uint64_t> inode;
  Maybe<std::string> type;  // REG, DIR, LNK, FIFO, SOCK, CHR, BLK; N/A for an anonymous inode
  Maybe<std::string> mode;  // as `ls -l` shows it: "-rw-r--r--"
  Maybe<std::int64_t> changed_ns, modified_ns, accessed_ns;  // inode times, ns since the epoch
  Maybe<std::int64_t> size;
  std::optional<std::string> flags;      // fdinfo's "flags": f_flags and O_CLOEXEC, octal ("0100002")
  std::optional<std::int64_t> position;  // fdinfo's "pos"
};

// At most this many descriptor slots are read from one table (Volatility 3 takes more than
// 500000 as corrupt), and a budget caps the slots of every table one walk reads together.
inline constexpr std::uint32_t kMaxDescriptors = 1u << 20;
struct DescriptorBudget {
  std::size_t slots_left = std::size_t{1} << 23;
  bool warned = false;
};

// The files_struct a task uses (task->files): threads of a process share one. Empty, with a
// warning, when it cannot be read; zero for a task without one (an exiting task).
std::optional<Addr> file_table_of(const Kernel& kernel, const Task& task, Diagnostics& diagnostics);

// Visits every open descriptor in `table` (a file_table_of result) in descriptor order, reporting
// them as `task`'s. Paths are resolved relative to the task's root (task->fs->root), as /proc
// resolves them for a reader in the same mount namespace.
Expected<void> for_each_file_descriptor(const Kernel& kernel, const Task& task, Addr table, DescriptorBudget& budget,
                                        Diagnostics& diagnostics, const std::function<bool(FileDescriptor&&)>& visit);

// A struct file `task` holds other than through a descriptor (a memory area's vm_file), read as
// for_each_file_descriptor reads a descriptor's: path, inode, device, mode, times; fd is -1 and
// flags are not read.
FileDescriptor describe_file(const Kernel& kernel, const Task& task, Addr file, Diagnostics& diagnostics);

// The socket behind a file descriptor: its struct socket and the struct sock under it
// (include/linux/net.h, include/net/sock.h). Endpoints are shown per family as /proc/net/* shows
// them, each field not applicable where the family has no such thing:
//   AF_INET, AF_INET6  addresses as inet_ntop writes them, ports in host order;
//   AF_UNIX            the bound name (a path, or "@name" in the abstract namespace, embedded
//                      NULs as '@', as /proc/net/unix), the peer's name and the peer's inode;
//   AF_NETLINK         the port id (local port) and the destination port id (remote port);
//   AF_PACKET          the bound protocol (ETH_P_*, host order) as the protocol.
// A field that cannot be read is unreadable, with a warning naming the task, the descriptor, the
// field and its address.
// A BPF program attached to a socket (SO_ATTACH_FILTER, SO_ATTACH_BPF: sk->sk_filter->prog).
struct SocketFilter {
  Addr program = 0;                // struct bpf_prog
  bool classic = false;            // attached as classic BPF (the kernel kept the original program)
  std::uint32_t instructions = 0;  // bpf_prog.len
};

struct Socket {
  Addr socket = 0;                     // struct socket, kernel virtual (file->private_data)
  Addr sock = 0;                       // struct sock (socket->sk)
  std::uint16_t family = 0;            // AF_*
  Maybe<std::uint16_t> type;           // SOCK_STREAM, SOCK_DGRAM, ... (sk_type)
  Maybe<std::uint16_t> protocol;       // sk_protocol: IPPROTO_*, NETLINK_*; packet: po->num
  Maybe<std::uint8_t> state;           // sk_state: TCP_ESTABLISHED, TCP_LISTEN, ... (unix too)
  Maybe<std::uint32_t> socket_state;   // socket.state: SS_UNCONNECTED, SS_CONNECTED, ...
  Maybe<std::uint32_t> net_namespace;  // the network namespace's inode number (net.ns.inum)
  Maybe<std::string> local_address, remote_address;
  Maybe<std::uint32_t> local_port, remote_port;
  Maybe<std::uint64_t> peer_inode;  // AF_UNIX: the connected peer's inode
  Maybe<SocketFilter> filter;       // not applicable when no filter is attached
};

// The socket open as `descriptor` (one of `task`'s): not applicable when the file is not a socket,
// unreadable (with a warning) when its struct socket, struct sock or family cannot be read. Fails
// only when the profile lacks the socket structures themselves.
Expected<Maybe<Socket>> socket_of(const Kernel& kernel, const Task& task, const FileDescriptor& descriptor,
                                  Diagnostics& diagnostics);

}  // namespace vmi::linux_objects
