// sockstat: every socket reachable from a process's file descriptors, with its endpoints.
#include <algorithm>
#include <array>
#include <cstdio>

#include "plugins/plugins.hpp"
#include "plugins/socket_names.hpp"
#include "vmi/linux.hpp"
#include "vmi/rows.hpp"

namespace vmi {

namespace {

using linux_objects::Socket;

struct SocketRow {
  Maybe<std::uint32_t> net_namespace;
  std::string process;
  std::int32_t pid = 0, tid = 0, fd = 0;
  Maybe<Addr> sock;
  Maybe<std::string> family;
  Maybe<std::string> type, protocol;
  Maybe<std::string> source_address, source_port, destination_address, destination_port;
  Maybe<std::string> state, filter;
  Maybe<std::uint64_t> inode;
};

// Volatility 3's sockstat columns (ports as text: a unix socket's "port" is its inode; Filter as
// k=v pairs), then the socket's inode, which lsof's "socket:[INO]" names.
constexpr auto kSocketRow =
    declare_row(column<&SocketRow::net_namespace>("NetNS"), column<&SocketRow::process>("Process Name"),
                column<&SocketRow::pid>("PID"), column<&SocketRow::tid>("TID"), column<&SocketRow::fd>("FD"),
                column<&SocketRow::sock, ColumnType::address>("Sock Offset"), column<&SocketRow::family>("Family"),
                column<&SocketRow::type>("Type"), column<&SocketRow::protocol>("Proto"),
                column<&SocketRow::source_address>("Source Addr"), column<&SocketRow::source_port>("Source Port"),
                column<&SocketRow::destination_address>("Destination Addr"),
                column<&SocketRow::destination_port>("Destination Port"), column<&SocketRow::state>("State"),
                column<&SocketRow::filter>("Filter"), column<&SocketRow::inode>("Inode"));

// An attached BPF program as "k=v,...": N/A for a socket without one.
Maybe<std::string> filter_text(const Maybe<linux_objects::SocketFilter>& filter) {
  const auto* attached = std::get_if<linux_objects::SocketFilter>(&filter);
  if (attached == nullptr) return std::get<Absence>(filter);
  return "bpf_filter_type=" + std::string(attached->classic ? "cBPF" : "eBPF") +
         ",bpf_instructions=" + std::to_string(attached->instructions) + ",bpf_prog=" + hex(attached->program);
}

SocketRow descriptor_row(const linux_objects::FileDescriptor& descriptor) {
  SocketRow row;
  row.process = descriptor.process;
  row.pid = descriptor.pid;
  row.tid = descriptor.tid;
  row.fd = descriptor.fd;
  row.inode = descriptor.inode;
  return row;
}

// A socket descriptor whose struct socket or sock could not be read (a warning says where).
SocketRow unreadable_row(const linux_objects::FileDescriptor& descriptor) {
  SocketRow row = descriptor_row(descriptor);
  row.net_namespace = Absence::unreadable;
  row.sock = Absence::unreadable;
  row.family = Absence::unreadable;
  row.type = row.protocol = row.state = row.filter = Absence::unreadable;
  row.source_address = row.source_port = row.destination_address = row.destination_port = Absence::unreadable;
  return row;
}

SocketRow row_of(const linux_objects::FileDescriptor& descriptor, const Socket& s) {
  SocketRow row = descriptor_row(descriptor);
  row.net_namespace = s.net_namespace;
  row.sock = s.sock;
  row.family = family_name(s.family);
  row.type = socket_type_name(s.type);
  row.protocol = protocol_name(s);
  row.source_address = s.local_address;
  row.destination_address = s.remote_address;
  if (s.family == kAfUnix) {  // Volatility 3's convention: a unix socket's ports are inodes
    row.source_port = text_of(descriptor.inode);
    row.destination_port = text_of(s.peer_inode);
  } else {
    row.source_port = text_of(s.local_port);
    row.destination_port = text_of(s.remote_port);
  }
  row.state = state_name(s);
  row.filter = filter_text(s.filter);
  return row;
}

constexpr PluginOption kOptions[] = {
    {"pid", OptionType::integers, "only these process IDs (comma-separated)"},
    {"netns", OptionType::integers, "only sockets of these network namespaces (inode numbers, comma-separated)"},
    {"threads", OptionType::flag, "repeat a process's sockets for each thread that shares its descriptor table"},
};

Expected<void> run_sockstat(PluginContext& context) {
  const auto pids = VMI_TRY(context.args.integers("pid"));
  const auto namespaces = VMI_TRY(context.args.integers("netns"));
  const bool every_thread = context.args.flag("threads");
  const Kernel& kernel = *context.kernel;
  RowWriter rows(context.out, kSocketRow);
  linux_objects::DescriptorBudget budget;
  bool wanted = true;
  std::optional<Addr> leader_table;
  std::optional<Error> failed;  // the kernel's file or socket structures could not be bound
  auto in_namespaces = [&](const Maybe<std::uint32_t>& ns) {
    if (namespaces.empty()) return true;
    const auto* inum = std::get_if<std::uint32_t>(&ns);
    return inum != nullptr && std::ranges::find(namespaces, std::int64_t{*inum}) != namespaces.end();
  };
  VMI_TRY_VOID(linux_objects::for_each_task(kernel, true, context.diagnostics, [&](auto&& task) {
    if (!pids.empty() && std::ranges::find(pids, task.tgid) == pids.end()) return true;
    const auto table = linux_objects::file_table_of(kernel, task, context.diagnostics);
    const bool leader = task.pid == task.tgid;
    if (leader) leader_table = table;
    if (!leader && !every_thread && table == leader_table) return true;
    if (!table) return true;
    auto walked = linux_objects::for_each_file_descriptor(
        kernel, task, *table, budget, context.diagnostics, [&](linux_objects::FileDescriptor&& descriptor) {
          auto socket = linux_objects::socket_of(kernel, task, descriptor, context.diagnostics);
          if (!socket) {
            failed = socket.error();
            return false;
          }
          if (const auto* s = std::get_if<Socket>(&*socket)) {
            if (in_namespaces(s->net_namespace)) wanted = rows.write(row_of(descriptor, *s));
          } else if (std::get<Absence>(*socket) == Absence::unreadable && namespaces.empty() &&
                     descriptor.type == Maybe<std::string>(std::string("SOCK"))) {
            wanted = rows.write(unreadable_row(descriptor));
          }
          return wanted;
        });
    if (!walked) failed = walked.error();
    return wanted && !failed;
  }));
  if (failed) return *failed;
  return {};
}

}  // namespace

constexpr std::string_view kSockstatAliases[] = {"linux.sockstat.Sockstat"};
const Plugin kSockstatPlugin{.name = "linux.sockstat",
                             .short_name = "netstat",
                             .os = "linux",
                             .aliases = kSockstatAliases,
                             .description = "List every socket open in a process, with its addresses and state",
                             .needs = Requirement::kernel,
                             .columns = kSocketRow.columns,
                             .tree = false,
                             .options = kOptions,
                             .run = run_sockstat};

}  // namespace vmi
