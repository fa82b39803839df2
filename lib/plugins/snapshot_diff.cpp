// diff: each snapshot's processes, command lines, descriptors, sockets and modules are read
// through the walks pslist, psaux, lsof, sockstat and lsmod use, kept compactly by identity, and
// compared. Only Linux kernels are read.
#include "vmi/snapshot_diff.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "plugins/socket_names.hpp"
#include "vmi/linux.hpp"
#include "vmi/rows.hpp"
#include "vmi/session.hpp"
#include "vmi/text.hpp"

namespace vmi {

namespace {

struct Change {
  std::string change;  // exited, started, changed, closed, opened, unloaded, loaded
  std::string object;  // process, cmdline, fd, socket, module
  Maybe<std::int32_t> pid = Absence::not_applicable;
  Maybe<std::int64_t> start = Absence::not_applicable;  // the process's creation, ns since the epoch
  std::string name;                                     // the process's comm, the module's name
  Maybe<std::string> before = Absence::not_applicable;
  Maybe<std::string> after = Absence::not_applicable;
};

Change change_of(std::string change, std::string object) {
  Change row;
  row.change = std::move(change);
  row.object = std::move(object);
  return row;
}

constexpr auto kChangeRow =
    declare_row(column<&Change::change>("Change"), column<&Change::object>("Object"), column<&Change::pid>("PID"),
                column<&Change::start, ColumnType::timestamp>("Start Time"), column<&Change::name>("Name"),
                column<&Change::before>("Before"), column<&Change::after>("After"));

// A process across snapshots: its PID and when it started (ns since boot; empty when unreadable,
// and then only the PID identifies it).
struct ProcessKey {
  std::int32_t pid = 0;
  std::optional<std::uint64_t> start;
  bool operator<(const ProcessKey& other) const { return std::tie(pid, start) < std::tie(other.pid, other.start); }
};

struct ProcessState {
  std::string comm;
  std::optional<std::int32_t> ppid;
  std::optional<std::int64_t> created;                         // ns since the epoch
  Maybe<std::string> arguments;                                // as psaux shows them
  std::set<std::pair<std::int32_t, std::string>> descriptors;  // fd number, what it names
};

struct SocketState {
  ProcessKey holder;  // the first process found holding it
  std::int32_t fd = 0;
  std::string description;
};

struct ModuleState {
  std::optional<std::uint64_t> size;
};

struct GuestState {
  std::map<ProcessKey, ProcessState> processes;
  std::map<std::uint64_t, SocketState> sockets;                 // by inode
  std::map<std::pair<std::string, Addr>, ModuleState> modules;  // by name and base
};

std::string text_or(const Maybe<std::string>& value, std::string_view absent) {
  if (const auto* text = std::get_if<std::string>(&value)) return *text;
  return std::string(absent);
}

// "UDP 127.0.0.1:7790 -> 0.0.0.0:0 CLOSE", "AF_UNIX STREAM /tmp/x.sock LISTEN": sockstat's fields
// in one line.
std::string socket_description(const linux_objects::Socket& socket) {
  std::string text = socket.family == kAfInet || socket.family == kAfInet6
                         ? text_or(protocol_name(socket), "?")
                         : family_name(socket.family) + " " + text_or(socket_type_name(socket.type), "?");
  auto endpoint = [](const Maybe<std::string>& address, const Maybe<std::uint32_t>& port) {
    std::string spelled = text_or(address, "");
    if (const auto* number = std::get_if<std::uint32_t>(&port)) spelled += ":" + std::to_string(*number);
    return spelled;
  };
  const std::string local = endpoint(socket.local_address, socket.local_port);
  const std::string remote = endpoint(socket.remote_address, socket.remote_port);
  if (!local.empty()) text += " " + local;
  if (!remote.empty()) text += " -> " + remote;
  const auto state = state_name(socket);
  if (const auto* named = std::get_if<std::string>(&state)) text += " " + *named;
  return text;
}

class StateReader {
 public:
  StateReader(const Kernel& kernel, Diagnostics& diagnostics) : kernel_(kernel), diagnostics_(diagnostics) {}

  Expected<GuestState> read() {
    std::optional<Error> failed;
    VMI_TRY_VOID(linux_objects::for_each_task(kernel_, false, diagnostics_, [&](linux_objects::Task&& task) {
      auto added = add_process(task);
      if (!added) failed = added.error();
      return !failed;
    }));
    if (failed) return *failed;
    VMI_TRY_VOID(linux_objects::for_each_module(kernel_, diagnostics_, [&](linux_objects::Module&& module) {
      if (module.base) state_.modules[{module.name, *module.base}] = ModuleState{module.size};
      return true;
    }));
    return std::move(state_);
  }

 private:
  Expected<void> add_process(const linux_objects::Task& task) {
    const ProcessKey key{task.tgid, task.start_boottime_ns};
    ProcessState process{task.comm, task.ppid, task.creation_unix_ns, Absence::unreadable, {}};
    // A kernel thread has no argument area (psaux's "[name]" carries a worker's current work,
    // which changes by the moment: not a command line).
    if (task.kernel_thread.value_or(false)) {
      process.arguments = Absence::not_applicable;
    } else {
      auto bytes = VMI_TRY(linux_objects::process_arguments(kernel_, task, diagnostics_));
      if (auto* raw = std::get_if<std::string>(&bytes)) {
        process.arguments = command_line_text(std::move(*raw));
      } else {
        process.arguments = std::get<Absence>(bytes);
      }
      VMI_TRY_VOID(add_descriptors(task, key, process));
    }
    state_.processes.insert_or_assign(key, std::move(process));
    return {};
  }

  Expected<void> add_descriptors(const linux_objects::Task& task, const ProcessKey& key, ProcessState& process) {
    const auto table = linux_objects::file_table_of(kernel_, task, diagnostics_);
    if (!table || *table == 0) return {};
    std::optional<Error> failed;
    VMI_TRY_VOID(linux_objects::for_each_file_descriptor(
        kernel_, task, *table, budget_, diagnostics_, [&](linux_objects::FileDescriptor&& descriptor) {
          process.descriptors.emplace(descriptor.fd, descriptor.path.value_or("(unreadable)"));
          const auto* inode = std::get_if<std::uint64_t>(&descriptor.inode);
          if (inode == nullptr || state_.sockets.contains(*inode)) return true;
          auto socket = linux_objects::socket_of(kernel_, task, descriptor, diagnostics_);
          if (!socket) {
            failed = socket.error();
            return false;
          }
          if (const auto* found = std::get_if<linux_objects::Socket>(&*socket))
            state_.sockets.emplace(*inode, SocketState{key, descriptor.fd, socket_description(*found)});
          return true;
        }));
    if (failed) return *failed;
    return {};
  }

  const Kernel& kernel_;
  Diagnostics& diagnostics_;
  linux_objects::DescriptorBudget budget_;
  GuestState state_;
};

Expected<const Kernel*> linux_kernel_of(Session& session, std::string_view which) {
  const Kernel* kernel = VMI_TRY(session.kernel());
  if (kernel->os() != "linux")
    return make_error(Errc::unsupported, std::string(which) + " snapshot: diff reads Linux kernels; this one is " +
                                             std::string(kernel->os()));
  return kernel;
}

Change process_change(std::string change, std::string object, const ProcessKey& key, const ProcessState& process) {
  Change row = change_of(std::move(change), std::move(object));
  row.pid = key.pid;
  row.start = process.created ? Maybe<std::int64_t>(*process.created) : Absence::unreadable;
  row.name = process.comm;
  return row;
}

std::string process_text(const ProcessState& process) {
  const auto* absence = std::get_if<Absence>(&process.arguments);
  return "PPID " + (process.ppid ? std::to_string(*process.ppid) : std::string("?")) + ": " +
         (absence == nullptr                    ? std::get<std::string>(process.arguments)
          : *absence == Absence::not_applicable ? std::string("(kernel thread)")
                                                : std::string("(arguments unreadable)"));
}

// A socket's row: the process found holding it, its endpoints, the descriptor and inode.
Change socket_change(std::string change, std::uint64_t inode, const SocketState& socket, const GuestState& state) {
  Change row = change_of(std::move(change), "socket");
  row.pid = socket.holder.pid;
  if (const auto holder = state.processes.find(socket.holder); holder != state.processes.end()) {
    row.name = holder->second.comm;
    if (holder->second.created) row.start = *holder->second.created;
  }
  (row.change == "closed" ? row.before : row.after) =
      socket.description + " (fd " + std::to_string(socket.fd) + ", inode " + std::to_string(inode) + ")";
  return row;
}

class Differ {
 public:
  Differ(const GuestState& before, const GuestState& after, RowSink& out)
      : before_(before), after_(after), rows_(out, kChangeRow) {}

  void run() {
    if (processes() && command_lines() && descriptors() && sockets()) modules();
  }

 private:
  // The processes of either snapshot, in key order: (key, before or null, after or null).
  template <class Visit>
  bool each_process(Visit visit) {
    std::set<ProcessKey> keys;
    for (const auto& [key, _] : before_.processes) keys.insert(key);
    for (const auto& [key, _] : after_.processes) keys.insert(key);
    return std::ranges::all_of(keys, [&](const ProcessKey& key) {
      const auto old_process = before_.processes.find(key);
      const auto new_process = after_.processes.find(key);
      return visit(key, old_process == before_.processes.end() ? nullptr : &old_process->second,
                   new_process == after_.processes.end() ? nullptr : &new_process->second);
    });
  }

  // Visits what `from` holds and `to` lacks, in key order, while `visit` returns true.
  template <class Map, class Visit>
  static bool each_missing(const Map& from, const Map& to, Visit visit) {
    return std::ranges::all_of(
        from, [&](const auto& entry) { return to.contains(entry.first) || visit(entry.first, entry.second); });
  }

  bool processes() {
    return each_missing(before_.processes, after_.processes,
                        [&](const ProcessKey& key, const ProcessState& process) {
                          Change row = process_change("exited", "process", key, process);
                          row.before = process_text(process);
                          return rows_.write(row);
                        }) &&
           each_missing(after_.processes, before_.processes, [&](const ProcessKey& key, const ProcessState& process) {
             Change row = process_change("started", "process", key, process);
             row.after = process_text(process);
             return rows_.write(row);
           });
  }

  bool command_lines() {
    return each_process([&](const ProcessKey& key, const ProcessState* old_process, const ProcessState* new_process) {
      if (!old_process || !new_process) return true;
      const auto* old_arguments = std::get_if<std::string>(&old_process->arguments);
      const auto* new_arguments = std::get_if<std::string>(&new_process->arguments);
      if (!old_arguments || !new_arguments || *old_arguments == *new_arguments) return true;
      Change row = process_change("changed", "cmdline", key, *new_process);
      row.before = *old_arguments;
      row.after = *new_arguments;
      return rows_.write(row);
    });
  }

  bool descriptors() {
    static const ProcessState kNone;
    return each_process([&](const ProcessKey& key, const ProcessState* old_process, const ProcessState* new_process) {
      const ProcessState& old_state = old_process ? *old_process : kNone;
      const ProcessState& new_state = new_process ? *new_process : kNone;
      for (const auto& [fd, path] : old_state.descriptors) {
        if (new_state.descriptors.contains({fd, path})) continue;
        Change row = process_change("closed", "fd", key, old_state);
        row.before = std::to_string(fd) + " " + path;
        if (!rows_.write(row)) return false;
      }
      for (const auto& [fd, path] : new_state.descriptors) {
        if (old_state.descriptors.contains({fd, path})) continue;
        Change row = process_change("opened", "fd", key, new_state);
        row.after = std::to_string(fd) + " " + path;
        if (!rows_.write(row)) return false;
      }
      return true;
    });
  }

  bool sockets() {
    return each_missing(before_.sockets, after_.sockets,
                        [&](std::uint64_t inode, const SocketState& socket) {
                          return rows_.write(socket_change("closed", inode, socket, before_));
                        }) &&
           each_missing(after_.sockets, before_.sockets, [&](std::uint64_t inode, const SocketState& socket) {
             return rows_.write(socket_change("opened", inode, socket, after_));
           });
  }

  void modules() {
    const auto text = [](Addr base, const ModuleState& module) {
      return "base " + hex(base) + ", size " + (module.size ? std::to_string(*module.size) : std::string("?"));
    };
    each_missing(before_.modules, after_.modules,
                 [&](const auto& identity, const ModuleState& module) {
                   Change row = change_of("unloaded", "module");
                   row.name = identity.first;
                   row.before = text(identity.second, module);
                   return rows_.write(row);
                 }) &&
        each_missing(after_.modules, before_.modules, [&](const auto& identity, const ModuleState& module) {
          Change row = change_of("loaded", "module");
          row.name = identity.first;
          row.after = text(identity.second, module);
          return rows_.write(row);
        });
  }

  const GuestState& before_;
  const GuestState& after_;
  RowWriter<Change, kChangeRow.columns.size()> rows_;
};

}  // namespace

std::span<const Column> snapshot_diff_columns() { return kChangeRow.columns; }

Expected<void> diff_snapshots(Session& before, Session& after, RowSink& out) {
  const Kernel* old_kernel = VMI_TRY(linux_kernel_of(before, "first"));
  const Kernel* new_kernel = VMI_TRY(linux_kernel_of(after, "second"));
  if (old_kernel->banner() != new_kernel->banner())
    return make_error(Errc::invalid_argument, "the snapshots hold different kernels ('" +
                                                  std::string(old_kernel->banner()) + "' and '" +
                                                  std::string(new_kernel->banner()) + "'): not one guest");
  if (old_kernel->symbol("_text") != new_kernel->symbol("_text"))
    after.diagnostics().warn(
        "diff: the kernel is loaded at another address in the second snapshot (another boot): processes are "
        "matched by PID and start time since boot, which do not correspond across boots");
  const GuestState old_state = VMI_TRY(StateReader(*old_kernel, before.diagnostics()).read());
  const GuestState new_state = VMI_TRY(StateReader(*new_kernel, after.diagnostics()).read());
  out.begin(kChangeRow.columns, false);
  Differ(old_state, new_state, out).run();
  return {};
}

}  // namespace vmi
