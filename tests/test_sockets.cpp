// linux.sockstat (`netstat`) and the socket view under it against the guest's own
// /proc/net/{tcp,tcp6,udp,udp6,unix,netlink,packet} and readlink(/proc/PID/fd/N).
#include <arpa/inet.h>
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "samples.hpp"
#include "support.hpp"

using namespace vmi;
namespace fs = std::filesystem;

namespace {

enum SocketColumn : int {
  kNetNs,
  kProcess,
  kPid,
  kTid,
  kFd,
  kSockOffset,
  kFamily,
  kType,
  kProto,
  kSourceAddr,
  kSourcePort,
  kDestinationAddr,
  kDestinationPort,
  kState,
  kFilter,
  kInode
};

// What the guest's /proc/net tables say about one socket, in sockstat's terms. The names come
// from the kernel's headers (include/net/tcp_states.h, include/linux/net.h), not from the plugin.
struct TruthSocket {
  std::string table;
  std::string family, type, proto;
  std::string source_addr, source_port, destination_addr, destination_port;
  std::string state;  // empty: /proc/net does not show sockstat's state for this family
  bool unix_listening = false;
  std::string unix_ss_state;  // /proc/net/unix's St: socket.state (SS_*)
};

std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string word; in >> word;) out.push_back(word);
  return out;
}

std::string tcp_state_name(unsigned state) {
  static const std::map<unsigned, std::string> kNames = {
      {1, "ESTABLISHED"}, {2, "SYN_SENT"},   {3, "SYN_RECV"}, {4, "FIN_WAIT1"}, {5, "FIN_WAIT2"}, {6, "TIME_WAIT"},
      {7, "CLOSE"},       {8, "CLOSE_WAIT"}, {9, "LAST_ACK"}, {10, "LISTEN"},   {11, "CLOSING"}};
  auto it = kNames.find(state);
  return it == kNames.end() ? std::to_string(state) : it->second;
}

// "0100007F:1E61" (tcp4_seq_show: the address's 32-bit words as the CPU holds them, in hex, then
// the port in host order) -> address text and port.
std::pair<std::string, std::string> inet_endpoint(const std::string& field, bool v6) {
  const auto colon = field.find(':');
  REQUIRE(colon != std::string::npos);
  const std::string hex = field.substr(0, colon);
  REQUIRE(hex.size() == (v6 ? 32u : 8u));
  std::uint32_t words_[4] = {};
  for (std::size_t i = 0; i < hex.size() / 8; ++i)
    words_[i] = static_cast<std::uint32_t>(std::stoul(hex.substr(i * 8, 8), nullptr, 16));
  char text[INET6_ADDRSTRLEN] = {};
  REQUIRE(inet_ntop(v6 ? AF_INET6 : AF_INET, words_, text, sizeof text) != nullptr);
  return {text, std::to_string(std::stoul(field.substr(colon + 1), nullptr, 16))};
}

// Every socket of truth/net.tsv, by inode.
std::map<std::string, TruthSocket> truth_sockets(const test::Sample& sample) {
  const auto path = sample.dir / "truth" / "net.tsv";
  REQUIRE_MESSAGE(fs::exists(path), "no truth/net.tsv in ", sample.dir.string(),
                  ": rebuild the samples (TRUTH_VERSION 5)");
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  REQUIRE(line == "table\tline");
  std::map<std::string, TruthSocket> sockets;
  while (std::getline(in, line)) {
    const auto tab = line.find('\t');
    REQUIRE(tab != std::string::npos);
    TruthSocket s;
    s.table = line.substr(0, tab);
    const auto w = words(line.substr(tab + 1));
    std::string inode;
    if (s.table == "tcp" || s.table == "tcp6" || s.table == "udp" || s.table == "udp6") {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      REQUIRE(w.size() >= 10);
      const bool v6 = s.table.ends_with('6');
      const bool tcp = s.table.starts_with("tcp");
      s.family = v6 ? "AF_INET6" : "AF_INET";
      s.type = tcp ? "STREAM" : "DGRAM";
      s.proto = tcp ? "TCP" : "UDP";
      std::tie(s.source_addr, s.source_port) = inet_endpoint(w[1], v6);
      std::tie(s.destination_addr, s.destination_port) = inet_endpoint(w[2], v6);
      s.state = tcp_state_name(static_cast<unsigned>(std::stoul(w[3], nullptr, 16)));
      inode = w[9];
    } else if (s.table == "unix") {
      // Num RefCount Protocol Flags Type St Inode [Path]
      REQUIRE(w.size() >= 7);
      s.family = "AF_UNIX";
      const auto type = std::stoul(w[4], nullptr, 16);
      s.type = type == 1 ? "STREAM" : type == 2 ? "DGRAM" : type == 5 ? "SEQPACKET" : std::to_string(type);
      s.proto = "N/A";
      s.unix_listening = (std::stoul(w[3], nullptr, 16) & 0x10000) != 0;  // __SO_ACCEPTCON
      s.unix_ss_state = w[5];
      inode = w[6];
      s.source_addr = w.size() > 7 ? w[7] : "";
      s.source_port = inode;
    } else if (s.table == "netlink") {
      // sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
      REQUIRE(w.size() >= 10);
      s.family = "AF_NETLINK";
      s.proto = w[1] == "0" ? "NETLINK_ROUTE" : w[1];
      s.source_port = w[2];
      inode = w[9];
    } else if (s.table == "packet") {
      // sk RefCnt Type Proto Iface R Rmem User Inode
      REQUIRE(w.size() >= 9);
      s.family = "AF_PACKET";
      s.type = w[2] == "2" ? "DGRAM" : w[2] == "3" ? "RAW" : w[2];
      s.proto = std::to_string(std::stoul(w[3], nullptr, 16));
      s.source_port = "N/A";  // a packet socket has no port
      inode = w[8];
    } else {
      FAIL("unknown table ", s.table);
    }
    sockets[inode] = s;
  }
  return sockets;
}

std::string cell_string(const Row& row, int column) {
  const Cell& cell = row.cells.at(static_cast<std::size_t>(column));
  if (const auto* absence = std::get_if<Absence>(&cell)) return *absence == Absence::unreadable ? "-" : "N/A";
  if (const auto* text = std::get_if<std::string>(&cell)) return *text;
  if (const auto* number = std::get_if<std::int64_t>(&cell)) return std::to_string(*number);
  if (const auto* number = std::get_if<std::uint64_t>(&cell)) return std::to_string(*number);
  return "?";
}

// The socket descriptors of truth/fds.tsv: (pid, fd) -> inode, from readlink's "socket:[INO]".
std::map<std::pair<int, int>, std::string> truth_socket_descriptors(const test::Sample& sample) {
  std::ifstream in(sample.dir / "truth" / "fds.tsv");
  std::string line;
  std::getline(in, line);
  std::map<std::pair<int, int>, std::string> descriptors;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string pid, fd, link;
    std::getline(fields, pid, '\t');
    std::getline(fields, fd, '\t');
    std::getline(fields, link, '\t');
    if (link.starts_with("socket:[") && link.ends_with("]"))
      descriptors[{std::stoi(pid), std::stoi(fd)}] = link.substr(8, link.size() - 9);
  }
  return descriptors;
}

// `netstat` lists exactly the guest's socket descriptors, each with the family, type, protocol,
// endpoints and state /proc/net shows for its inode, in the guest's network namespace.
void check_sockets_equal_proc_net(Session& session, const test::Sample& sample) {
  const auto sockets = truth_sockets(sample);
  const auto descriptors = truth_socket_descriptors(sample);
  const std::string& net_ns = test::guest_fact(sample, "NET_NS");  // "net:[4026531840]"
  REQUIRE(net_ns.starts_with("net:["));
  const std::string namespace_inode = net_ns.substr(5, net_ns.size() - 6);
  auto table = vmi::run_plugin(session, "netstat");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  std::set<std::pair<int, int>> listed;
  std::map<std::string, std::string> peer_of;  // unix inode -> the peer inode sockstat shows
  std::set<std::string> families;
  for (const Row& row : table->rows) {
    const int pid = static_cast<int>(test::cell_integer(row, kPid).value());
    const int fd = static_cast<int>(test::cell_integer(row, kFd).value());
    CAPTURE(pid);
    CAPTURE(fd);
    CHECK(listed.insert({pid, fd}).second);
    const auto descriptor = descriptors.find({pid, fd});
    if (descriptor == descriptors.end()) {
      FAIL_CHECK("not a socket descriptor in the guest's /proc: inode ", cell_string(row, kInode));
      continue;
    }
    const std::string& inode = descriptor->second;
    CAPTURE(inode);
    CHECK(cell_string(row, kInode) == inode);
    CHECK(cell_string(row, kFilter) == "N/A");  // the workload attaches no BPF program
    CHECK(cell_string(row, kNetNs) == namespace_inode);
    CHECK(test::cell_address(row, kSockOffset).value_or(0) != 0);
    const auto it = sockets.find(inode);
    if (it == sockets.end()) {
      FAIL_CHECK("inode in no /proc/net table");
      continue;
    }
    const TruthSocket& s = it->second;
    CAPTURE(s.table);
    families.insert(s.family);
    CHECK(cell_string(row, kFamily) == s.family);
    if (!s.type.empty()) CHECK(cell_string(row, kType) == s.type);
    CHECK(cell_string(row, kProto) == s.proto);
    CHECK(cell_string(row, kSourcePort) == s.source_port);
    if (s.family == "AF_INET" || s.family == "AF_INET6") {
      CHECK(cell_string(row, kSourceAddr) == s.source_addr);
      CHECK(cell_string(row, kDestinationAddr) == s.destination_addr);
      CHECK(cell_string(row, kDestinationPort) == s.destination_port);
      CHECK(cell_string(row, kState) == s.state);
    } else if (s.family == "AF_UNIX") {
      CHECK(cell_string(row, kSourceAddr) == s.source_addr);
      // sockstat shows sk_state; /proc/net/unix shows __SO_ACCEPTCON for a listener and the
      // socket's SS_* state (03: connected).
      const std::string state = cell_string(row, kState);
      CHECK((state == "LISTEN") == s.unix_listening);
      if (s.type == "STREAM" && !s.unix_listening) CHECK((state == "ESTABLISHED") == (s.unix_ss_state == "03"));
      peer_of[inode] = cell_string(row, kDestinationPort);
    }
  }
  for (const auto& [key, inode] : descriptors) {
    CAPTURE(key.first);
    CAPTURE(key.second);
    CHECK_MESSAGE(listed.contains(key), "missing socket:[", inode, "]");
  }
  // A connected unix pair names each other (the workload's socketpair): peers are symmetric and
  // are socket descriptors of the guest.
  std::size_t connected = 0;
  for (const auto& [inode, peer] : peer_of) {
    if (peer == "N/A") continue;
    ++connected;
    CAPTURE(inode);
    REQUIRE(peer_of.contains(peer));
    CHECK(peer_of.at(peer) == inode);
  }
  CHECK(connected >= 2);
  for (const char* family : {"AF_UNIX", "AF_INET", "AF_NETLINK", "AF_PACKET"})
    CHECK_MESSAGE(families.contains(family), family);
}

}  // namespace

TEST_CASE("netstat on every sample, raw and ELF, equals the guest's /proc/net tables for every socket descriptor") {
  test::for_each_sample_image(check_sockets_equal_proc_net);
}

TEST_CASE("netstat on every recovery kernel, with the profile recovered from the snapshot, equals /proc/net") {
  test::for_each_recovery_image(check_sockets_equal_proc_net);
}

TEST_CASE("netstat --netns keeps only the named network namespace's sockets, --pid one process's") {
  const auto samples = test::load_samples();
  const auto& sample = samples.front();
  auto session = test::open_sample(sample.dir / "memory.raw", test::profile_for(sample));
  const std::string& net_ns = test::guest_fact(sample, "NET_NS");
  const std::string namespace_inode = net_ns.substr(5, net_ns.size() - 6);
  const auto descriptors = truth_socket_descriptors(sample);
  PluginArgs args;
  args.values["netns"] = namespace_inode;
  auto all = vmi::run_plugin(session, "linux.sockstat.Sockstat", args);
  REQUIRE(all.has_value());
  CHECK(all->rows.size() == descriptors.size());
  args.values["netns"] = "1";  // no namespace has inode 1 (proc_alloc_inum starts at 0xF0000000)
  auto none = vmi::run_plugin(session, "netstat", args);
  REQUIRE(none.has_value());
  CHECK(none->rows.empty());
  const int pid = descriptors.begin()->first.first;
  PluginArgs one;
  one.values["pid"] = std::to_string(pid);
  auto mine = vmi::run_plugin(session, "netstat", one);
  REQUIRE(mine.has_value());
  std::size_t expected = 0;
  for (const auto& [key, inode] : descriptors) expected += key.first == pid ? 1 : 0;
  CHECK(mine->rows.size() == expected);
}
