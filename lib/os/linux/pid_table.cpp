// The initial pid namespace's pid table: init_pid_ns.idr, an IDR over the xarray (radix tree) of
// include/linux/xarray.h since 4.15, mapping each allocated pid number to its struct pid. A second
// view of the tasks beside the task list: a rootkit that unlinks a task from one rarely mends both.
#include <algorithm>
#include <vector>

#include "os/field_reader.hpp"
#include "vmi/linux.hpp"
#include "vmi/object.hpp"

namespace vmi::linux_objects {

namespace {

// An xarray entry's low two bits: 0b10 marks an internal entry, and an internal entry above 4096
// is a node pointer plus 2 (xa_is_node, xa_to_node); smaller ones are retry, zero and sibling
// markers. Bit 0 set is a value entry, never a pointer.
constexpr std::uint64_t kInternalMask = 3, kInternal = 2;
constexpr std::uint64_t kMaxInternalMarker = 4096;
constexpr std::uint32_t kMaxDepth = 11;                         // 64-bit indices, 6 bits per level
constexpr std::uint64_t kPidMaxLimit = std::uint64_t{1} << 22;  // PID_MAX_LIMIT on 64-bit

struct PidTableLayout {
  std::uint32_t idr = 0, idr_base = 0;  // pid_namespace.idr (its xarray's xa_head), idr.idr_base
  std::uint32_t node_shift = 0, node_parent = 0, node_slots = 0, slots = 0, chunk_shift = 0;
  std::uint32_t pid_tasks = 0;  // pid.tasks[PIDTYPE_PID].first
  std::uint32_t pid_links = 0;  // task_struct.pid_links[PIDTYPE_PID]

  static Expected<PidTableLayout> bind(const Profile& p) {
    PidTableLayout l;
    const std::uint32_t idr = VMI_TRY(bind_offset(p, "pid_namespace", "idr"));
    const std::uint32_t root = VMI_TRY(bind_offset(p, "idr", "idr_rt"));
    l.idr = idr + root + VMI_TRY(bind_offset(p, "xarray", "xa_head"));
    l.idr_base = idr + VMI_TRY(bind_offset(p, "idr", "idr_base"));
    l.node_shift = VMI_TRY(bind_offset(p, "xa_node", "shift"));
    l.node_parent = VMI_TRY(bind_offset(p, "xa_node", "parent"));
    const FieldInfo slots = VMI_TRY(p.field("xa_node", "slots"));
    l.node_slots = slots.offset;
    l.slots = static_cast<std::uint32_t>(p.size_of(slots.type).value_or(0) / 8);
    if (l.slots < 2 || (l.slots & (l.slots - 1)) != 0 || l.slots > 256)
      return make_error(Errc::invalid_argument, "profile: xa_node.slots holds " + std::to_string(l.slots) +
                                                    " entries, not a power of two up to 256");
    l.chunk_shift = static_cast<std::uint32_t>(__builtin_ctz(l.slots));
    l.pid_tasks = VMI_TRY(bind_offset(p, "pid", "tasks"));
    l.pid_links = VMI_TRY(bind_offset(p, "task_struct", "pid_links"));
    return l;
  }
};

bool is_node(std::uint64_t entry) { return (entry & kInternalMask) == kInternal && entry > kMaxInternalMarker; }

struct PendingNode {
  Addr node = 0;
  Addr parent = 0;          // the node that points to it, 0 for the root
  std::uint64_t first = 0;  // the index of its slot 0
  std::uint32_t shift = 0;  // what its parent implies it has (the root's is read)
  std::uint32_t depth = 0;
};

class PidTableWalk {
 public:
  PidTableWalk(const Kernel& kernel, const PidTableLayout& layout, Diagnostics& diagnostics)
      : layer_(kernel.kernel_layer()), layout_(layout), diagnostics_(diagnostics) {}

  // Visits entries in index order; false when `visit` stopped it.
  bool run(std::uint64_t head, std::uint64_t base, const std::function<bool(const PidTableEntry&)>& visit) {
    if (!is_node(head)) return head == 0 || leaf(base, head, visit);
    std::vector<PendingNode> stack{{.node = head - kInternal, .parent = 0, .first = 0, .shift = 0, .depth = 0}};
    bool root = true;
    while (!stack.empty()) {
      const PendingNode pending = stack.back();
      stack.pop_back();
      if (++nodes_ > kMaxPidTableNodes) {
        diagnostics_.warn("pid table: more than " + std::to_string(kMaxPidTableNodes) + " nodes; stopped");
        return true;
      }
      FieldReader reader(layer_, diagnostics_, [&] { return "pid table node " + hex(pending.node); });
      const auto shift = reader.read<std::uint8_t>("shift", pending.node + layout_.node_shift);
      const auto parent = reader.read<std::uint64_t>("parent", pending.node + layout_.node_parent);
      if (!shift || !parent) continue;
      if (root ? *shift > kMaxDepth * layout_.chunk_shift : (*shift != pending.shift || *parent != pending.parent)) {
        reader.warn("shift", pending.node + layout_.node_shift,
                    "says shift " + std::to_string(*shift) + " and parent " + hex(*parent) +
                        ", not where the tree holds it; skipped");
        continue;
      }
      root = false;
      std::vector<std::uint64_t> slots(layout_.slots);
      if (!read_exact(layer_, pending.node + layout_.node_slots, std::as_writable_bytes(std::span(slots)))) {
        reader.warn("slots", pending.node + layout_.node_slots);
        continue;
      }
      if (*shift == 0) {  // a leaf node: its entries are struct pids, visited in index order
        for (std::uint32_t i = 0; i < layout_.slots; ++i) {
          if (slots[i] != 0 && !is_node(slots[i]) && !leaf(base + pending.first + i, slots[i], visit)) return false;
        }
        continue;
      }
      // Children are pushed last-first so the stack pops them in index order.
      for (std::uint32_t i = layout_.slots; i-- > 0;) {
        if (!is_node(slots[i])) continue;  // an inner node holds nodes only
        if (*shift < layout_.chunk_shift || pending.depth + 1 > kMaxDepth) {
          reader.warn("slots", pending.node + layout_.node_slots + i * 8ull, "points to a node below the leaves");
          continue;
        }
        stack.push_back({.node = slots[i] - kInternal,
                         .parent = pending.node,
                         .first = pending.first + (std::uint64_t{i} << *shift),
                         .shift = *shift - layout_.chunk_shift,
                         .depth = pending.depth + 1});
      }
    }
    return true;
  }

 private:
  bool leaf(std::uint64_t index, std::uint64_t entry, const std::function<bool(const PidTableEntry&)>& visit) {
    if ((entry & kInternalMask) != 0) return true;  // a value or a retry/zero marker: no struct pid
    if (index >= kPidMaxLimit) {
      diagnostics_.warn("pid table: entry " + hex(entry) + " at index " + std::to_string(index) +
                        ", past PID_MAX_LIMIT; skipped");
      return true;
    }
    if (++entries_ > kMaxTasks) {
      if (entries_ == kMaxTasks + 1)
        diagnostics_.warn("pid table: more than " + std::to_string(kMaxTasks) + " pids; stopped");
      return false;
    }
    const auto pid = static_cast<std::int32_t>(index);
    FieldReader reader(layer_, diagnostics_,
                       [&] { return "pid " + std::to_string(pid) + " (struct pid " + hex(entry) + ")"; });
    const auto first = reader.read<std::uint64_t>("tasks[PIDTYPE_PID].first", entry + layout_.pid_tasks);
    if (!first || *first == 0) return true;  // no task holds this pid any longer
    return visit({.pid = pid, .pid_struct = entry, .task = *first - layout_.pid_links});
  }

  const Layer& layer_;
  const PidTableLayout& layout_;
  Diagnostics& diagnostics_;
  std::size_t nodes_ = 0, entries_ = 0;
};

}  // namespace

Expected<void> for_each_pid_table_entry(const Kernel& kernel, Diagnostics& diagnostics,
                                        const std::function<bool(const PidTableEntry&)>& visit) {
  if (kernel.os() != "linux") return make_error(Errc::invalid_argument, "not a Linux kernel");
  const auto& bound = kernel.layout<PidTableLayout>();
  if (!bound) return bound.error();
  const auto namespace_address = kernel.symbol("init_pid_ns");
  if (!namespace_address) return make_error(Errc::not_found, "profile has no symbol 'init_pid_ns'");
  const Layer& layer = kernel.kernel_layer();
  const auto head = read_value<std::uint64_t>(layer, *namespace_address + bound->idr);
  if (!head)
    return make_error(Errc::unmapped,
                      "init_pid_ns.idr's root at " + hex(*namespace_address + bound->idr) + " is unreadable");
  const auto base = read_value<std::uint32_t>(layer, *namespace_address + bound->idr_base);
  if (!base)
    return make_error(Errc::unmapped,
                      "init_pid_ns.idr.idr_base at " + hex(*namespace_address + bound->idr_base) + " is unreadable");
  PidTableWalk(kernel, *bound, diagnostics).run(*head, *base, visit);
  return {};
}

}  // namespace vmi::linux_objects
