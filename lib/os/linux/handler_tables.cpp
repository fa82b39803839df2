// Function pointers the kernel calls through that rootkits redirect: the seq_operations behind
// /proc/net's tables (what netstat and ss read), each tty's line-discipline receive_buf (every
// byte typed), and the keyboard notifier chain (every key press). Offsets bound once per kernel.
#include <set>

#include "os/field_reader.hpp"
#include "vmi/linux.hpp"
#include "vmi/object.hpp"

namespace vmi::linux_objects {

namespace {

// The seq_operations of /proc/net/{tcp,tcp6,udp,udp6,raw,raw6,unix,packet,arp,netlink} on kernels
// of 4.18 and later, when the afinfo structures lost their seq_fops/seq_ops members. Tables of code
// built as a module (af_packet on some configurations) are not in the kernel's profile and are
// left out.
constexpr std::string_view kSeqOperations[] = {"tcp4_seq_ops", "tcp6_seq_ops",   "udp_seq_ops",  "udp6_seq_ops",
                                               "raw_seq_ops",  "raw6_seq_ops",   "unix_seq_ops", "packet_seq_ops",
                                               "arp_seq_ops",  "netlink_seq_ops"};
constexpr std::string_view kSeqMembers[] = {"start", "next", "stop", "show"};

constexpr std::size_t kMaxTtyDrivers = 4096;
constexpr std::uint32_t kMaxTtyLines = 1u << 16;            // per driver; pty masters keep no ttys array
constexpr std::size_t kMaxTtySlots = std::size_t{1} << 18;  // over all drivers: 2 MiB of ttys[] read
constexpr std::size_t kMaxNotifiers = 4096;
constexpr std::size_t kTtyNameSize = 64;

struct SeqLayout {
  std::array<std::uint32_t, 4> members{};
  static Expected<SeqLayout> bind(const Profile& p) {
    SeqLayout l;
    for (std::size_t i = 0; i < l.members.size(); ++i)
      l.members[i] = VMI_TRY(bind_offset(p, "seq_operations", kSeqMembers[i]));
    return l;
  }
};

struct TtyLayout {
  std::uint32_t driver_list = 0, driver_name = 0, driver_num = 0, driver_ttys = 0;
  std::uint32_t tty_name = 0, tty_ldisc = 0, ldisc_ops = 0, receive_buf = 0;
  static Expected<TtyLayout> bind(const Profile& p) {
    TtyLayout l;
    l.driver_list = VMI_TRY(bind_offset(p, "tty_driver", "tty_drivers"));
    l.driver_name = VMI_TRY(bind_offset(p, "tty_driver", "name"));
    l.driver_num = VMI_TRY(bind_offset(p, "tty_driver", "num"));
    l.driver_ttys = VMI_TRY(bind_offset(p, "tty_driver", "ttys"));
    l.tty_name = VMI_TRY(bind_offset(p, "tty_struct", "name"));
    l.tty_ldisc = VMI_TRY(bind_offset(p, "tty_struct", "ldisc"));
    l.ldisc_ops = VMI_TRY(bind_offset(p, "tty_ldisc", "ops"));
    l.receive_buf = VMI_TRY(bind_offset(p, "tty_ldisc_ops", "receive_buf"));
    return l;
  }
};

struct NotifierLayout {
  std::uint32_t head = 0, call = 0, next = 0;
  static Expected<NotifierLayout> bind(const Profile& p) {
    NotifierLayout l;
    l.head = VMI_TRY(bind_offset(p, "atomic_notifier_head", "head"));
    l.call = VMI_TRY(bind_offset(p, "notifier_block", "notifier_call"));
    l.next = VMI_TRY(bind_offset(p, "notifier_block", "next"));
    return l;
  }
};

}  // namespace

Expected<std::vector<Handler>> network_seq_handlers(const Kernel& kernel, Diagnostics& diagnostics) {
  const auto& layout = kernel.layout<SeqLayout>();
  if (!layout) return layout.error();
  std::vector<Handler> handlers;
  for (std::string_view table : kSeqOperations) {
    const auto address = kernel.symbol(table);
    if (!address) continue;
    FieldReader reader(kernel.kernel_layer(), diagnostics, [&] { return std::string(table) + " at " + hex(*address); });
    for (std::size_t i = 0; i < layout->members.size(); ++i) {
      const Addr at = *address + layout->members[i];
      handlers.push_back({.owner = std::string(table),
                          .member = std::string(kSeqMembers[i]),
                          .at = at,
                          .handler = reader.read<std::uint64_t>(kSeqMembers[i], at)});
    }
  }
  return handlers;
}

Expected<std::vector<Handler>> tty_receive_handlers(const Kernel& kernel, Diagnostics& diagnostics) {
  const auto& bound = kernel.layout<TtyLayout>();
  if (!bound) return bound.error();
  const TtyLayout& l = *bound;
  const auto drivers = kernel.symbol("tty_drivers");
  if (!drivers) return make_error(Errc::not_found, "profile has no symbol 'tty_drivers'");
  const Layer& layer = kernel.kernel_layer();
  std::vector<Handler> handlers;
  std::size_t slots_left = kMaxTtySlots;
  const ListWalk walk = walk_list(layer, *drivers, kMaxTtyDrivers, [&](Addr node) {
    const Addr driver = node - l.driver_list;
    FieldReader reader(layer, diagnostics, [&] { return "tty_driver " + hex(driver); });
    const auto num = reader.read<std::uint32_t>("num", driver + l.driver_num);
    const auto ttys = reader.read<std::uint64_t>("ttys", driver + l.driver_ttys);
    if (!num || !ttys || *ttys == 0) return true;  // pty masters allocate on open: no ttys array
    std::uint32_t lines = *num;
    if (lines > kMaxTtyLines) {
      reader.warn("num", driver + l.driver_num,
                  "holds " + std::to_string(lines) + "; only the first " + std::to_string(kMaxTtyLines) + " read");
      lines = kMaxTtyLines;
    }
    if (lines > slots_left) {
      // Every driver within bounds, yet together too many: a forged list of drivers.
      diagnostics.warn("tty_drivers: the drivers hold more than " + std::to_string(kMaxTtySlots) +
                       " tty slots; the rest, from tty_driver " + hex(driver) + " on, are not read");
      return false;
    }
    slots_left -= lines;
    std::vector<std::uint64_t> slots(lines);
    if (!read_exact(layer, *ttys, std::as_writable_bytes(std::span(slots)))) {
      reader.warn("ttys[]", *ttys);
      return true;
    }
    for (const Addr tty : slots) {
      if (tty == 0) continue;
      FieldReader tty_reader(layer, diagnostics, [&] { return "tty_struct " + hex(tty); });
      const auto name = tty_reader.bytes("name", tty + l.tty_name, kTtyNameSize);
      const auto ldisc = tty_reader.read<std::uint64_t>("ldisc", tty + l.tty_ldisc);
      if (!name || !ldisc || *ldisc == 0) continue;  // no line discipline while hung up
      const auto ops = tty_reader.pointer("ldisc->ops", *ldisc + l.ldisc_ops);
      if (!ops) continue;
      handlers.push_back({.owner = name->substr(0, name->find('\0')),
                          .member = "receive_buf",
                          .at = *ops + l.receive_buf,
                          .handler = tty_reader.read<std::uint64_t>("ldisc->ops->receive_buf", *ops + l.receive_buf)});
    }
    return true;
  });
  if (walk.end != ListEnd::complete) diagnostics.warn("tty_drivers: " + walk.problem);
  return handlers;
}

Expected<std::vector<Handler>> keyboard_notifiers(const Kernel& kernel, Diagnostics& diagnostics) {
  const auto& bound = kernel.layout<NotifierLayout>();
  if (!bound) return bound.error();
  const auto head = kernel.symbol("keyboard_notifier_list");
  if (!head) return make_error(Errc::not_found, "profile has no symbol 'keyboard_notifier_list'");
  const Layer& layer = kernel.kernel_layer();
  FieldReader reader(layer, diagnostics, [] { return std::string("keyboard_notifier_list"); });
  std::vector<Handler> handlers;
  std::set<Addr> seen;
  auto block = reader.read<std::uint64_t>("head", *head + bound->head);
  while (block && *block != 0) {
    if (!seen.insert(*block).second || seen.size() > kMaxNotifiers) {
      diagnostics.warn("keyboard_notifier_list: the chain " +
                       (seen.size() > kMaxNotifiers ? "holds more than " + std::to_string(kMaxNotifiers) + " blocks"
                                                    : "returns to " + hex(*block)) +
                       "; stopped");
      break;
    }
    const Addr at = *block + bound->call;
    handlers.push_back({.owner = hex(*block),
                        .member = "notifier_call",
                        .at = at,
                        .handler = reader.read<std::uint64_t>("notifier_call", at)});
    block = reader.read<std::uint64_t>("next", *block + bound->next);
  }
  return handlers;
}

}  // namespace vmi::linux_objects
