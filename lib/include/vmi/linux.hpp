// Linux kernel objects as typed values, for plugins and for programs linking the library.
#pragma once

#include <functional>
#include <optional>
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

// A process's memory as its mm_struct describes it, and where its page tables are.
struct MemoryLayout {
  Addr mm = 0;               // mm_struct, kernel virtual
  Addr page_table_root = 0;  // mm->pgd, physical
  Addr start_code = 0, end_code = 0, start_stack = 0;
  Addr arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;  // argv and environment strings
};

// The task's memory layout: not applicable for a task without an mm (a kernel thread),
// unreadable with a warning naming the task, the field and its address when a field cannot be
// read. Fails only when the profile lacks mm_struct's fields.
Expected<Maybe<MemoryLayout>> memory_layout(const Kernel& kernel, const Task& task, Diagnostics& diagnostics);

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
  Maybe<std::string> device;  // "major:minor" of the inode's file system (stat's st_dev)
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
