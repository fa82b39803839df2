// A process's memory areas (vm_area_struct) in address order, named as fs/proc/task_mmu.c
// show_map_vma() names them. Kernels from 6.1 keep the areas in a maple tree (lib/maple_tree.c);
// older ones in a list through vm_next.
#include <algorithm>
#include <array>
#include <cstring>
#include <unordered_set>
#include <variant>

#include "os/field_reader.hpp"
#include "vmi/linux.hpp"
#include "vmi/object.hpp"

namespace vmi::linux_objects {

namespace {

constexpr std::uint64_t kVmRead = 0x1, kVmWrite = 0x2, kVmExec = 0x4, kVmMayShare = 0x80;
constexpr unsigned kPageShift = 12;
constexpr std::size_t kMaxAnonName = 80;  // ANON_VMA_NAME_MAX_LEN
constexpr std::size_t kMaxSpecialName = 64;
// lib/maple_tree.c on 64-bit: node size, how a node pointer encodes its type, slots per type.
constexpr std::size_t kMapleNodeSize = 256;
constexpr Addr kMapleNodeMask = 0xff;
constexpr unsigned kMapleTypeShift = 3;
constexpr unsigned kMapleLeaf64 = 1, kMapleRange64 = 2, kMapleArange64 = 3;
constexpr std::size_t kRange64Slots = 16, kArange64Slots = 10;
constexpr std::size_t kMapleMaxHeight = 31;             // MAPLE_HEIGHT_MAX
constexpr std::size_t kMaxMapleNodes = kMaxMemoryMaps;  // a full tree holds more areas than nodes

// Where the areas are: the maple tree (6.1+) or the vm_next list.
struct MapleLayout {
  std::uint32_t root = 0;  // mm_struct.mm_mt.ma_root
  std::uint32_t range_pivots = 0, range_slots = 0, range_meta_end = 0;
  std::uint32_t arange_pivots = 0, arange_slots = 0, arange_meta_end = 0;
};
struct AreaListLayout {
  std::uint32_t first = 0, next = 0;  // mm_struct.mmap, vm_area_struct.vm_next
};

struct MapsLayout {
  std::uint32_t vm_start = 0, vm_end = 0, vm_flags = 0, vm_mm = 0, vm_file = 0, vm_pgoff = 0, vm_ops = 0,
                vm_private_data = 0;
  std::optional<std::uint32_t> anon_name, anon_name_text;  // CONFIG_ANON_VMA_NAME
  std::uint32_t ops_name = 0, special_mapping_name = 0;
  std::variant<MapleLayout, AreaListLayout> areas;

  static Expected<MapsLayout> bind(const Profile& p) {
    MapsLayout l;
    l.vm_start = VMI_TRY(bind_offset(p, "vm_area_struct", "vm_start"));
    l.vm_end = VMI_TRY(bind_offset(p, "vm_area_struct", "vm_end"));
    l.vm_flags = VMI_TRY(bind_offset(p, "vm_area_struct", "vm_flags"));
    l.vm_mm = VMI_TRY(bind_offset(p, "vm_area_struct", "vm_mm"));
    l.vm_file = VMI_TRY(bind_offset(p, "vm_area_struct", "vm_file"));
    l.vm_pgoff = VMI_TRY(bind_offset(p, "vm_area_struct", "vm_pgoff"));
    l.vm_ops = VMI_TRY(bind_offset(p, "vm_area_struct", "vm_ops"));
    l.vm_private_data = VMI_TRY(bind_offset(p, "vm_area_struct", "vm_private_data"));
    l.ops_name = VMI_TRY(bind_offset(p, "vm_operations_struct", "name"));
    l.special_mapping_name = VMI_TRY(bind_offset(p, "vm_special_mapping", "name"));
    if (auto name = bind_offset(p, "vm_area_struct", "anon_name")) {
      l.anon_name = *name;
      l.anon_name_text = VMI_TRY(bind_offset(p, "anon_vma_name", "name"));
    }
    if (auto tree = bind_offset(p, "mm_struct", "mm_mt")) {
      MapleLayout m;
      m.root = *tree + VMI_TRY(bind_offset(p, "maple_tree", "ma_root"));
      m.range_pivots = VMI_TRY(bind_offset(p, "maple_range_64", "pivot"));
      m.range_slots = VMI_TRY(bind_offset(p, "maple_range_64", "slot"));
      m.range_meta_end =
          VMI_TRY(bind_offset(p, "maple_range_64", "meta")) + VMI_TRY(bind_offset(p, "maple_metadata", "end"));
      m.arange_pivots = VMI_TRY(bind_offset(p, "maple_arange_64", "pivot"));
      m.arange_slots = VMI_TRY(bind_offset(p, "maple_arange_64", "slot"));
      m.arange_meta_end =
          VMI_TRY(bind_offset(p, "maple_arange_64", "meta")) + VMI_TRY(bind_offset(p, "maple_metadata", "end"));
      l.areas = m;
    } else {
      l.areas = AreaListLayout{VMI_TRY(bind_offset(p, "mm_struct", "mmap")),
                               VMI_TRY(bind_offset(p, "vm_area_struct", "vm_next"))};
    }
    return l;
  }
};

// One maple node read whole: its type, pivots and slots, and how many slots hold data.
struct MapleNode {
  unsigned type = 0;
  std::size_t slots = 0;  // slots in use: data_end + 1
  std::array<std::uint64_t, kRange64Slots> slot{};
  std::array<std::uint64_t, kRange64Slots - 1> pivot{};
};

class MapsReader {
 public:
  MapsReader(const Kernel& kernel, const MapsLayout& layout, const Task& task, const MemoryLayout& memory,
             Diagnostics& diagnostics, const std::function<bool(MemoryMap&&)>& visit)
      : kernel_(kernel),
        layout_(layout),
        task_(task),
        memory_(memory),
        diagnostics_(diagnostics),
        fields_(kernel.kernel_layer(), diagnostics, [&task] { return owner_of(task); }),
        visit_(visit) {
    special_mapping_name_ = kernel.symbol("special_mapping_name");
  }

  void run() {
    if (const auto* maple = std::get_if<MapleLayout>(&layout_.areas)) {
      walk_maple(*maple);
    } else {
      walk_list(std::get<AreaListLayout>(layout_.areas));
    }
  }

 private:
  static std::string owner_of(const Task& task) {
    return "task " + hex(task.address) + " (pid " + std::to_string(task.pid) + ") memory map";
  }

  // Depth-first through the tree: leaves hold the areas in address order.
  void walk_maple(const MapleLayout& maple) {
    const auto root = fields_.read<std::uint64_t>("mm.mm_mt.ma_root", memory_.mm + maple.root);
    if (!root || *root == 0) return;
    if (!is_node(*root)) {  // a lone entry (index 0 only) stored in the root itself
      area(*root);
      return;
    }
    struct Pending {
      std::uint64_t node;
      Addr max;
      std::size_t depth;
    };
    std::vector<Pending> stack{{*root, ~Addr{0}, 0}};
    std::unordered_set<Addr> seen;
    while (!stack.empty() && !stopped_) {
      const Pending next = stack.back();
      stack.pop_back();
      const Addr at = next.node & ~kMapleNodeMask;
      if (next.depth > kMapleMaxHeight || seen.size() == kMaxMapleNodes || !seen.insert(at).second) {
        fields_.warn("maple node", at, "is deeper than the tree may be, seen before or past the node limit; skipped");
        continue;
      }
      const auto node = read_node(maple, next.node, next.max);
      if (!node) continue;
      if (node->type == kMapleLeaf64) {
        for (std::size_t i = 0; i < node->slots && !stopped_; ++i) {
          // NULL is a gap; a value with the low bits 10 is one of the tree's internal entries.
          if (node->slot[i] != 0 && !is_internal(node->slot[i])) area(node->slot[i]);
        }
        continue;
      }
      // Children go on the stack last first, so the lowest addresses come out first.
      for (std::size_t i = node->slots; i-- > 0;) {
        const Addr child_max = i < node->slots - 1 && i < node->pivot.size() ? node->pivot[i] : next.max;
        // A child is its node's address with its type in bits 3-6 (mt_mk_node()).
        if (node->slot[i] > kMapleNodeMask) stack.push_back({node->slot[i], child_max, next.depth + 1});
      }
    }
  }

  static bool is_internal(std::uint64_t entry) { return (entry & 3) == 2; }
  // The root marks a node with bit 1 (mte_mk_root()): xa_is_node().
  static bool is_node(std::uint64_t entry) { return is_internal(entry) && entry > 4096; }

  // mas_data_end(): an arange node keeps its end in its metadata; a range or leaf node uses all
  // its slots when its last pivot is set (the last but one when that pivot is the node's max),
  // else its metadata.
  std::optional<MapleNode> read_node(const MapleLayout& maple, std::uint64_t encoded, Addr max) {
    const Addr at = encoded & ~kMapleNodeMask;
    std::array<std::byte, kMapleNodeSize> raw{};
    if (!read_exact(kernel_.kernel_layer(), at, raw)) {
      fields_.warn("maple node", at);
      return std::nullopt;
    }
    auto u64 = [&](std::uint32_t offset) {
      std::uint64_t v = 0;
      std::memcpy(&v, raw.data() + offset, sizeof v);
      return v;
    };
    MapleNode node;
    node.type = static_cast<unsigned>((encoded >> kMapleTypeShift) & 0xf);
    std::size_t slot_count = 0;
    std::size_t end = 0;
    std::uint32_t pivots = 0;
    std::uint32_t slots = 0;
    if (node.type == kMapleLeaf64 || node.type == kMapleRange64) {
      slot_count = kRange64Slots;
      pivots = maple.range_pivots;
      slots = maple.range_slots;
    } else if (node.type == kMapleArange64) {
      slot_count = kArange64Slots;
      pivots = maple.arange_pivots;
      slots = maple.arange_slots;
    } else {
      fields_.warn("maple node", at, "has type " + std::to_string(node.type) + ", not one an mm's tree uses; skipped");
      return std::nullopt;
    }
    for (std::size_t i = 0; i < slot_count; ++i) node.slot[i] = u64(slots + static_cast<std::uint32_t>(8 * i));
    for (std::size_t i = 0; i + 1 < slot_count; ++i) node.pivot[i] = u64(pivots + static_cast<std::uint32_t>(8 * i));
    const auto meta_end = static_cast<std::size_t>(
        std::to_integer<std::uint8_t>(raw[node.type == kMapleArange64 ? maple.arange_meta_end : maple.range_meta_end]));
    if (node.type == kMapleArange64 || node.pivot[slot_count - 2] == 0) {
      end = meta_end;
    } else {
      end = node.pivot[slot_count - 2] == max ? slot_count - 2 : slot_count - 1;
    }
    if (end >= slot_count) {
      fields_.warn("maple node", at,
                   "says it ends at slot " + std::to_string(end) + " of " + std::to_string(slot_count) + "; skipped");
      return std::nullopt;
    }
    node.slots = end + 1;
    return node;
  }

  void walk_list(const AreaListLayout& list) {
    auto next = fields_.read<std::uint64_t>("mm.mmap", memory_.mm + list.first);
    for (std::size_t n = 0; next && *next != 0 && !stopped_; ++n) {
      if (n == kMaxMemoryMaps) {
        fields_.warn("vm_next", *next,
                     "continues past " + std::to_string(kMaxMemoryMaps) + " areas; the rest is left out");
        return;
      }
      if (!area(*next)) return;  // a list out of address order may loop: stop at the first bad area
      next = fields_.read<std::uint64_t>("vm_area_struct.vm_next", *next + list.next);
    }
  }

  // Reads, checks and hands over one area; false when it was skipped.
  bool area(Addr vma) {
    if (count_ == kMaxMemoryMaps) {
      fields_.warn("memory areas", vma, "exceed " + std::to_string(kMaxMemoryMaps) + "; the rest are left out");
      stopped_ = true;
      return false;
    }
    MemoryMap map;
    map.vma = vma;
    const auto start = fields_.read<std::uint64_t>("vm_area_struct.vm_start", vma + layout_.vm_start);
    const auto end = fields_.read<std::uint64_t>("vm_area_struct.vm_end", vma + layout_.vm_end);
    const auto mm = fields_.read<std::uint64_t>("vm_area_struct.vm_mm", vma + layout_.vm_mm);
    const auto flags = fields_.read<std::uint64_t>("vm_area_struct.vm_flags", vma + layout_.vm_flags);
    if (!start || !end || !mm || !flags) return false;
    if (*mm != memory_.mm || *start >= *end || *start < previous_end_) {
      fields_.warn("vm_area_struct", vma,
                   "(" + hex(*start) + "-" + hex(*end) + ") does not belong to mm " + hex(memory_.mm) +
                       " or breaks address order; skipped");
      return false;
    }
    previous_end_ = *end;
    map.start = *start;
    map.end = *end;
    map.flags = *flags;
    ++count_;
    describe(map);
    if (!visit_(std::move(map))) stopped_ = true;
    return true;
  }

  // The offset, device, inode and name /proc/PID/maps shows (show_map_vma()).
  void describe(MemoryMap& map) {
    const auto file = fields_.read<std::uint64_t>("vm_area_struct.vm_file", map.vma + layout_.vm_file);
    if (!file) {
      map.page_offset = map.inode = Absence::unreadable;
      map.major = map.minor = Absence::unreadable;
      map.name = Absence::unreadable;
      return;
    }
    map.file = *file;
    if (map.file != 0) {
      describe_file_area(map);
      return;
    }
    map.page_offset = map.inode = std::uint64_t{0};
    map.major = map.minor = std::uint32_t{0};
    map.name = anonymous_name(map);
  }

  void describe_file_area(MemoryMap& map) {
    if (auto pgoff = fields_.read<std::uint64_t>("vm_area_struct.vm_pgoff", map.vma + layout_.vm_pgoff)) {
      map.page_offset = *pgoff << kPageShift;
    } else {
      map.page_offset = Absence::unreadable;
    }
    const FileDescriptor file = describe_file(kernel_, task_, map.file, diagnostics_);
    map.inode = file.inode;
    map.major = map.minor = Absence::unreadable;
    if (const auto* device = std::get_if<DeviceNumber>(&file.device)) {
      map.major = device->major;
      map.minor = device->minor;
    }
    if (file.path) {
      map.name = *file.path;
    } else {
      map.name = Absence::unreadable;
    }
  }

  // Anonymous memory: a special mapping's own name ([vdso], [vvar]), [heap], [stack], a name
  // given with PR_SET_VMA_ANON_NAME, else nothing.
  Maybe<std::string> anonymous_name(const MemoryMap& map) {
    const auto ops = fields_.read<std::uint64_t>("vm_area_struct.vm_ops", map.vma + layout_.vm_ops);
    if (!ops) return Absence::unreadable;
    if (*ops != 0) {
      const auto name_function = fields_.read<std::uint64_t>("vm_ops->name", *ops + layout_.ops_name);
      if (!name_function) return Absence::unreadable;
      if (*name_function != 0) return named_by(map, *name_function);
    }
    if (map.start <= memory_.brk && map.end >= memory_.start_brk) return std::string("[heap]");
    if (map.start <= memory_.start_stack && map.end >= memory_.start_stack) return std::string("[stack]");
    if (layout_.anon_name) {
      const auto name = fields_.read<std::uint64_t>("vm_area_struct.anon_name", map.vma + *layout_.anon_name);
      if (!name) return Absence::unreadable;
      if (*name != 0) {
        auto text = read_c_string(kernel_.kernel_layer(), *name + *layout_.anon_name_text, kMaxAnonName);
        if (!text) {
          fields_.warn("anon_vma_name.name", *name + *layout_.anon_name_text);
          return Absence::unreadable;
        }
        return "[anon:" + *text + "]";
      }
    }
    return std::string();
  }

  // vm_ops->name(vma): special_mapping_name() returns the vm_special_mapping's name; any other
  // function cannot be run offline.
  Maybe<std::string> named_by(const MemoryMap& map, Addr function) {
    if (function != special_mapping_name_) {
      fields_.warn("vm_ops->name", map.vma + layout_.vm_ops,
                   "is " + hex(function) + ", a naming function other than special_mapping_name");
      return Absence::unreadable;
    }
    const auto mapping = fields_.pointer("vm_area_struct.vm_private_data", map.vma + layout_.vm_private_data);
    if (!mapping) return Absence::unreadable;
    const auto name = fields_.pointer("vm_special_mapping.name", *mapping + layout_.special_mapping_name);
    if (!name) return Absence::unreadable;
    auto text = read_c_string(kernel_.kernel_layer(), *name, kMaxSpecialName);
    if (!text) {
      fields_.warn("vm_special_mapping.name string", *name);
      return Absence::unreadable;
    }
    return *text;
  }

  const Kernel& kernel_;
  const MapsLayout& layout_;
  const Task& task_;
  const MemoryLayout& memory_;
  Diagnostics& diagnostics_;
  FieldReader fields_;
  const std::function<bool(MemoryMap&&)>& visit_;
  std::optional<Addr> special_mapping_name_;
  Addr previous_end_ = 0;
  std::size_t count_ = 0;
  bool stopped_ = false;
};

}  // namespace

std::string MemoryMap::permissions() const {
  std::string text = "----";
  if ((flags & kVmRead) != 0) text[0] = 'r';
  if ((flags & kVmWrite) != 0) text[1] = 'w';
  if ((flags & kVmExec) != 0) text[2] = 'x';
  text[3] = (flags & kVmMayShare) != 0 ? 's' : 'p';
  return text;
}

Expected<void> for_each_memory_map(const Kernel& kernel, const Task& task, const MemoryLayout& layout,
                                   Diagnostics& diagnostics, const std::function<bool(MemoryMap&&)>& visit) {
  const auto& bound = kernel.layout<MapsLayout>();
  if (!bound) return bound.error();
  MapsReader(kernel, *bound, task, layout, diagnostics, visit).run();
  return {};
}

Expected<void> for_each_process_area(const Kernel& kernel, std::span<const std::int64_t> pids, Diagnostics& diagnostics,
                                     const std::function<bool(const ProcessMemory&, MemoryMap&&)>& visit) {
  std::optional<Error> failed;  // the profile lacks the structures
  VMI_TRY_VOID(for_each_task(kernel, false, diagnostics, [&](const Task& task) {
    if (!pids.empty() && std::ranges::find(pids, task.tgid) == pids.end()) return true;
    if (task.kernel_thread.value_or(false)) return true;  // no user memory
    auto layout = memory_layout(kernel, task, diagnostics);
    if (!layout) {
      failed = layout.error();
      return false;
    }
    const auto* memory = std::get_if<MemoryLayout>(&*layout);
    if (memory == nullptr) return true;  // warned about, or an exiting task without memory
    const auto space = address_space(kernel, *memory);
    const ProcessMemory process{task, *memory, *space};
    bool more = true;
    auto walked = for_each_memory_map(kernel, task, *memory, diagnostics, [&](MemoryMap&& map) {
      more = visit(process, std::move(map));
      return more;
    });
    if (!walked) {
      failed = walked.error();
      return false;
    }
    return more;
  }));
  if (failed) return *failed;
  return {};
}

}  // namespace vmi::linux_objects
