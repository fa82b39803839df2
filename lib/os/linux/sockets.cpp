// The socket behind a file descriptor (net/socket.c sock_from_file) and its endpoints per family,
// read as /proc/net/{tcp,udp,unix,netlink,packet} print them, at offsets bound once per kernel.
#include <arpa/inet.h>

#include <array>

#include "os/field_reader.hpp"
#include "vmi/linux.hpp"
#include "vmi/object.hpp"

namespace vmi::linux_objects {

namespace {

constexpr std::uint16_t kAfUnix = 1, kAfInet = 2, kAfInet6 = 10, kAfNetlink = 16, kAfPacket = 17;
constexpr std::size_t kUnixPathMax = 108;  // sizeof(sockaddr_un.sun_path)

struct UnixLayout {
  std::uint32_t addr = 0, peer = 0, address_len = 0, address_name = 0;
};

struct SocketLayout {
  std::uint32_t file_private_data = 0;
  std::uint32_t socket_state = 0, socket_sk = 0;
  // struct sock, from its start (sock_common is its first member, __sk_common).
  std::uint32_t family = 0, state = 0, type = 0, protocol = 0;
  std::uint32_t local_port = 0, remote_port = 0, local_v4 = 0, remote_v4 = 0;
  std::optional<std::uint32_t> local_v6, remote_v6;           // CONFIG_IPV6
  std::optional<std::uint32_t> net, net_inum;                 // skc_net.net; net.ns.inum
  std::optional<std::uint32_t> sk_socket, inode_from_socket;  // SOCK_INODE: socket_alloc.vfs_inode
  std::uint32_t inode_ino = 0;
  std::optional<UnixLayout> unix_sock;
  std::optional<std::uint32_t> netlink_portid, netlink_dst_portid, packet_num;
  std::optional<std::uint32_t> sk_filter, filter_prog, prog_len, prog_orig;

  static Expected<SocketLayout> bind(const Profile& p) {
    auto optional = [&](std::string_view type, std::string_view field) -> std::optional<std::uint32_t> {
      if (auto offset = bind_offset(p, type, field)) return *offset;
      return std::nullopt;
    };
    SocketLayout l;
    l.file_private_data = VMI_TRY(bind_offset(p, "file", "private_data"));
    l.socket_state = VMI_TRY(bind_offset(p, "socket", "state"));
    l.socket_sk = VMI_TRY(bind_offset(p, "socket", "sk"));
    const std::uint32_t common = VMI_TRY(bind_offset(p, "sock", "__sk_common"));
    auto in_common = [&](std::string_view field) -> Expected<std::uint32_t> {
      return common + VMI_TRY(bind_offset(p, "sock_common", field));
    };
    l.family = VMI_TRY(in_common("skc_family"));
    l.state = VMI_TRY(in_common("skc_state"));
    l.local_port = VMI_TRY(in_common("skc_num"));
    l.remote_port = VMI_TRY(in_common("skc_dport"));
    l.local_v4 = VMI_TRY(in_common("skc_rcv_saddr"));
    l.remote_v4 = VMI_TRY(in_common("skc_daddr"));
    if (auto v6 = in_common("skc_v6_rcv_saddr")) l.local_v6 = *v6;
    if (auto v6 = in_common("skc_v6_daddr")) l.remote_v6 = *v6;
    auto net = in_common("skc_net");
    auto net_pointer = optional("possible_net_t", "net");
    auto ns = optional("net", "ns");
    auto inum = optional("ns_common", "inum");
    if (net && net_pointer && ns && inum) {
      l.net = *net + *net_pointer;
      l.net_inum = *ns + *inum;
    }
    l.type = VMI_TRY(bind_offset(p, "sock", "sk_type"));
    l.protocol = VMI_TRY(bind_offset(p, "sock", "sk_protocol"));
    l.sk_socket = optional("sock", "sk_socket");
    auto alloc_socket = optional("socket_alloc", "socket");
    auto alloc_inode = optional("socket_alloc", "vfs_inode");
    if (alloc_socket && alloc_inode) l.inode_from_socket = *alloc_inode - *alloc_socket;
    l.inode_ino = VMI_TRY(bind_offset(p, "inode", "i_ino"));
    auto addr = optional("unix_sock", "addr"), peer = optional("unix_sock", "peer");
    auto len = optional("unix_address", "len"), name = optional("unix_address", "name");
    auto sun_path = optional("sockaddr_un", "sun_path");
    if (addr && peer && len && name && sun_path) l.unix_sock = UnixLayout{*addr, *peer, *len, *name + *sun_path};
    l.netlink_portid = optional("netlink_sock", "portid");
    l.netlink_dst_portid = optional("netlink_sock", "dst_portid");
    l.packet_num = optional("packet_sock", "num");
    l.sk_filter = optional("sock", "sk_filter");
    l.filter_prog = optional("sk_filter", "prog");
    l.prog_len = optional("bpf_prog", "len");
    l.prog_orig = optional("bpf_prog", "orig_prog");
    return l;
  }
};

std::string address_text(int family, const void* bytes) {
  std::array<char, INET6_ADDRSTRLEN> text{};
  ::inet_ntop(family, bytes, text.data(), text.size());
  return text.data();
}

class SocketReader {
 public:
  SocketReader(const FieldReader& fields, const SocketLayout& layout) : fields_(fields), layout_(layout) {}

  Maybe<Socket> read(Addr file) {
    Socket s;
    const auto socket = fields_.pointer("file.private_data", file + layout_.file_private_data);
    if (!socket) return Absence::unreadable;
    s.socket = *socket;
    const auto sock = fields_.pointer("socket.sk", s.socket + layout_.socket_sk);
    if (!sock) return Absence::unreadable;
    s.sock = *sock;
    const auto family = fields_.read<std::uint16_t>("sock.skc_family", s.sock + layout_.family);
    if (!family) return Absence::unreadable;
    s.family = *family;
    s.socket_state = maybe(fields_.read<std::uint32_t>("socket.state", s.socket + layout_.socket_state));
    s.type = maybe(fields_.read<std::uint16_t>("sock.sk_type", s.sock + layout_.type));
    s.protocol = maybe(fields_.read<std::uint16_t>("sock.sk_protocol", s.sock + layout_.protocol));
    s.state = maybe(fields_.read<std::uint8_t>("sock.skc_state", s.sock + layout_.state));
    s.net_namespace = net_namespace(s.sock);
    s.filter = filter(s.sock);
    s.local_address = s.remote_address = Absence::not_applicable;
    s.local_port = s.remote_port = Absence::not_applicable;
    s.peer_inode = Absence::not_applicable;
    switch (s.family) {
      case kAfInet:
      case kAfInet6:
        read_inet(s);
        break;
      case kAfUnix:
        read_unix(s);
        break;
      case kAfNetlink:
        s.local_port = optional_field("netlink_sock.portid", s.sock, layout_.netlink_portid);
        s.remote_port = optional_field("netlink_sock.dst_portid", s.sock, layout_.netlink_dst_portid);
        break;
      case kAfPacket:
        if (auto num = optional_field<std::uint16_t>("packet_sock.num", s.sock, layout_.packet_num);
            std::holds_alternative<std::uint16_t>(num)) {
          s.protocol = ntohs(std::get<std::uint16_t>(num));  // /proc/net/packet's Proto
        } else {
          s.protocol = std::get<Absence>(num);
        }
        break;
      default:
        break;
    }
    return s;
  }

 private:
  template <typename T>
  static Maybe<T> maybe(std::optional<T> value) {
    if (value) return *value;
    return Absence::unreadable;
  }

  // A field of a family's own sock type (netlink_sock, packet_sock), which embeds struct sock
  // first: unreadable with a warning when the profile cannot place it.
  template <typename T = std::uint32_t>
  Maybe<T> optional_field(std::string_view name, Addr sock, std::optional<std::uint32_t> offset) {
    if (!offset) {
      fields_.warn(name, sock, "is not in the profile");
      return Absence::unreadable;
    }
    return maybe(fields_.read<T>(name, sock + *offset));
  }

  Maybe<std::uint32_t> net_namespace(Addr sock) {
    if (!layout_.net || !layout_.net_inum) return Absence::unreadable;
    const auto net = fields_.pointer("sock.skc_net", sock + *layout_.net);
    if (!net) return Absence::unreadable;
    return maybe(fields_.read<std::uint32_t>("net.ns.inum", *net + *layout_.net_inum));
  }

  // sk_filter_charge()'s program: classic filters keep their original (bpf_prog.orig_prog).
  Maybe<SocketFilter> filter(Addr sock) {
    if (!layout_.sk_filter || !layout_.filter_prog || !layout_.prog_len || !layout_.prog_orig) {
      fields_.warn("sock.sk_filter", sock, "is not in the profile");
      return Absence::unreadable;
    }
    const auto attached = fields_.read<std::uint64_t>("sock.sk_filter", sock + *layout_.sk_filter);
    if (!attached) return Absence::unreadable;
    if (*attached == 0) return Absence::not_applicable;
    const auto program = fields_.pointer("sk_filter.prog", *attached + *layout_.filter_prog);
    if (!program) return Absence::unreadable;
    const auto length = fields_.read<std::uint32_t>("bpf_prog.len", *program + *layout_.prog_len);
    const auto original = fields_.read<std::uint64_t>("bpf_prog.orig_prog", *program + *layout_.prog_orig);
    if (!length || !original) return Absence::unreadable;
    return SocketFilter{*program, *original != 0, *length};
  }

  void read_inet(Socket& s) {
    const bool v6 = s.family == kAfInet6;
    s.local_port = maybe<std::uint32_t>(fields_.read<std::uint16_t>("sock.skc_num", s.sock + layout_.local_port));
    if (auto port = fields_.read<std::uint16_t>("sock.skc_dport", s.sock + layout_.remote_port)) {
      s.remote_port = std::uint32_t{ntohs(*port)};
    } else {
      s.remote_port = Absence::unreadable;
    }
    if (v6 && (!layout_.local_v6 || !layout_.remote_v6)) {
      fields_.warn("sock.skc_v6_rcv_saddr", s.sock, "is not in the profile (a kernel without IPv6?)");
      s.local_address = s.remote_address = Absence::unreadable;
      return;
    }
    const std::size_t size = v6 ? 16 : 4;
    const int family = v6 ? AF_INET6 : AF_INET;
    const Addr local = s.sock + (v6 ? *layout_.local_v6 : layout_.local_v4);
    const Addr remote = s.sock + (v6 ? *layout_.remote_v6 : layout_.remote_v4);
    if (auto bytes = fields_.bytes(v6 ? "sock.skc_v6_rcv_saddr" : "sock.skc_rcv_saddr", local, size)) {
      s.local_address = address_text(family, bytes->data());
    } else {
      s.local_address = Absence::unreadable;
    }
    if (auto bytes = fields_.bytes(v6 ? "sock.skc_v6_daddr" : "sock.skc_daddr", remote, size)) {
      s.remote_address = address_text(family, bytes->data());
    } else {
      s.remote_address = Absence::unreadable;
    }
  }

  void read_unix(Socket& s) {
    if (!layout_.unix_sock) {
      fields_.warn("unix_sock.addr", s.sock, "is not in the profile");
      s.local_address = s.remote_address = Absence::unreadable;
      s.peer_inode = Absence::unreadable;
      return;
    }
    s.local_address = unix_name(s.sock);
    const auto peer = fields_.read<std::uint64_t>("unix_sock.peer", s.sock + layout_.unix_sock->peer);
    if (!peer) {
      s.remote_address = Absence::unreadable;
      s.peer_inode = Absence::unreadable;
    } else if (*peer == 0) {
      s.remote_address = Absence::not_applicable;  // not connected
      s.peer_inode = Absence::not_applicable;
    } else {
      s.remote_address = unix_name(*peer);
      s.peer_inode = inode_of_sock(*peer);
    }
  }

  // The bound name as /proc/net/unix prints it (net/unix/af_unix.c unix_seq_show): "" when
  // unbound; a path without its terminating NUL; an abstract name as '@' and its bytes, NULs '@'.
  Maybe<std::string> unix_name(Addr sock) {
    const UnixLayout& u = *layout_.unix_sock;
    const auto address = fields_.read<std::uint64_t>("unix_sock.addr", sock + u.addr);
    if (!address) return Absence::unreadable;
    if (*address == 0) return std::string();
    const auto length = fields_.read<std::int32_t>("unix_address.len", *address + u.address_len);
    if (!length) return Absence::unreadable;
    // len counts sun_family (2 bytes) and, for a path, the terminating NUL.
    constexpr std::int32_t kFamilySize = 2;
    const std::int32_t name_length = *length - kFamilySize;
    if (name_length <= 0 || name_length > static_cast<std::int32_t>(kUnixPathMax)) {
      fields_.warn("unix_address.len", *address + u.address_len,
                   "holds " + std::to_string(*length) + ", not a sockaddr_un length");
      return Absence::unreadable;
    }
    auto name = fields_.bytes("unix_address.name", *address + u.address_name, static_cast<std::size_t>(name_length));
    if (!name) return Absence::unreadable;
    if ((*name)[0] != '\0') {
      name->pop_back();
      return name->substr(0, name->find('\0'));
    }
    for (char& c : *name) {
      if (c == '\0') c = '@';
    }
    return *name;
  }

  // sock_i_ino(): the inode of the socket the sock belongs to, through socket_alloc.
  Maybe<std::uint64_t> inode_of_sock(Addr sock) {
    if (!layout_.sk_socket || !layout_.inode_from_socket) {
      fields_.warn("socket_alloc.vfs_inode", sock, "is not in the profile");
      return Absence::unreadable;
    }
    const auto socket = fields_.read<std::uint64_t>("sock.sk_socket", sock + *layout_.sk_socket);
    if (!socket) return Absence::unreadable;
    if (*socket == 0) return std::uint64_t{0};  // an orphaned peer: sock_i_ino() says 0 too
    return maybe(fields_.read<std::uint64_t>("inode.i_ino", *socket + *layout_.inode_from_socket + layout_.inode_ino));
  }

  const FieldReader& fields_;
  const SocketLayout& layout_;
};

}  // namespace

Expected<Maybe<Socket>> socket_of(const Kernel& kernel, const Task& task, const FileDescriptor& descriptor,
                                  Diagnostics& diagnostics) {
  const auto* type = std::get_if<std::string>(&descriptor.type);
  if (type == nullptr) {
    // No file type: an anonymous inode is no socket; an unreadable mode was already reported.
    return Maybe<Socket>(std::get<Absence>(descriptor.type));
  }
  if (*type != "SOCK") return Maybe<Socket>(Absence::not_applicable);
  const auto& bound = kernel.layout<SocketLayout>();
  if (!bound) return bound.error();
  // The owner's name is formatted only for a warning, not for every socket read.
  const FieldReader fields(kernel.kernel_layer(), diagnostics, [&] {
    return "task " + hex(task.address) + " (pid " + std::to_string(task.pid) + ") fd " + std::to_string(descriptor.fd);
  });
  return SocketReader(fields, *bound).read(descriptor.file);
}

}  // namespace vmi::linux_objects
