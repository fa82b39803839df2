// Every mount namespace's mounts, formatted field by field as fs/proc_namespace.c show_mountinfo()
// formats them. The file systems' own option printers (super_operations.show_options) are
// modelled for the ones a Debian guest mounts by default (tmpfs, devtmpfs and rootfs through
// shmem, proc, sysfs); any other printer leaves the superblock options unreadable, named.
#include <algorithm>
#include <array>
#include <cstdio>
#include <unordered_set>

#include "os/field_reader.hpp"
#include "os/linux/mount_paths.hpp"
#include "vmi/kernel_symbols.hpp"
#include "vmi/linux.hpp"
#include "vmi/object.hpp"

namespace vmi::linux_objects {

namespace {

// include/linux/mount.h and include/linux/fs.h
constexpr std::uint32_t kMntReadonly = 0x40, kMntShared = 0x1000, kMntUnbindable = 0x2000;
constexpr std::uint64_t kSbRdonly = 1;
constexpr unsigned kMinorBits = 20;
constexpr std::size_t kMaxName = 256;
constexpr std::size_t kMaxTreeDepth = 64;  // an rb-tree of kMaxMounts nodes is at most 2*16 deep

struct Flag {
  std::uint64_t bit;
  std::string_view text;
};
// show_mnt_opts() and show_sb_opts(), in their order.
constexpr Flag kMountFlags[] = {{0x01, ",nosuid"},     {0x02, ",nodev"},    {0x04, ",noexec"},     {0x08, ",noatime"},
                                {0x10, ",nodiratime"}, {0x20, ",relatime"}, {0x80, ",nosymfollow"}};
constexpr Flag kSuperFlags[] = {{16, ",sync"}, {128, ",dirsync"}, {64, ",mand"}, {std::uint64_t{1} << 25, ",lazytime"}};

struct MountLayout {
  std::uint32_t task_nsproxy = 0, nsproxy_mnt_ns = 0, ns_inum = 0;
  std::optional<std::uint32_t> ns_list, mount_list;    // before 6.8: mnt_namespace.list, mount.mnt_list
  std::optional<std::uint32_t> ns_mounts, mount_node;  // 6.8+: rb_root mnt_namespace.mounts, mount.mnt_node
  std::uint32_t rb_left = 0, rb_right = 0;
  std::uint32_t mount_mnt = 0, mount_parent = 0, mount_id = 0, mount_group = 0, mount_master = 0, mount_devname = 0;
  std::uint32_t mnt_root = 0, mnt_sb = 0, mnt_flags = 0;
  std::optional<std::uint32_t> mnt_userns, mnt_idmap;  // idmapped mounts: 5.12-6.2, 6.3+
  std::uint32_t sb_dev = 0, sb_flags = 0, sb_op = 0, sb_type = 0, sb_subtype = 0, sb_fs_info = 0, type_name = 0;
  std::uint32_t op_show_options = 0, op_show_devname = 0, op_show_path = 0;

  static Expected<MountLayout> bind(const Profile& p) {
    MountLayout l;
    l.task_nsproxy = VMI_TRY(bind_offset(p, "task_struct", "nsproxy"));
    l.nsproxy_mnt_ns = VMI_TRY(bind_offset(p, "nsproxy", "mnt_ns"));
    l.ns_inum = VMI_TRY(bind_offset(p, "mnt_namespace", "ns")) + VMI_TRY(bind_offset(p, "ns_common", "inum"));
    if (auto list = bind_offset(p, "mnt_namespace", "list")) {
      l.ns_list = *list;
      l.mount_list = VMI_TRY(bind_offset(p, "mount", "mnt_list"));
    } else {
      l.ns_mounts = VMI_TRY(bind_offset(p, "mnt_namespace", "mounts")) + VMI_TRY(bind_offset(p, "rb_root", "rb_node"));
      l.mount_node = VMI_TRY(bind_offset(p, "mount", "mnt_node"));
    }
    l.rb_left = VMI_TRY(bind_offset(p, "rb_node", "rb_left"));
    l.rb_right = VMI_TRY(bind_offset(p, "rb_node", "rb_right"));
    l.mount_mnt = VMI_TRY(bind_offset(p, "mount", "mnt"));
    l.mount_parent = VMI_TRY(bind_offset(p, "mount", "mnt_parent"));
    l.mount_id = VMI_TRY(bind_offset(p, "mount", "mnt_id"));
    l.mount_group = VMI_TRY(bind_offset(p, "mount", "mnt_group_id"));
    l.mount_master = VMI_TRY(bind_offset(p, "mount", "mnt_master"));
    l.mount_devname = VMI_TRY(bind_offset(p, "mount", "mnt_devname"));
    l.mnt_root = VMI_TRY(bind_offset(p, "vfsmount", "mnt_root"));
    l.mnt_sb = VMI_TRY(bind_offset(p, "vfsmount", "mnt_sb"));
    l.mnt_flags = VMI_TRY(bind_offset(p, "vfsmount", "mnt_flags"));
    if (auto userns = bind_offset(p, "vfsmount", "mnt_userns")) l.mnt_userns = *userns;
    if (auto idmap = bind_offset(p, "vfsmount", "mnt_idmap")) l.mnt_idmap = *idmap;
    l.sb_dev = VMI_TRY(bind_offset(p, "super_block", "s_dev"));
    l.sb_flags = VMI_TRY(bind_offset(p, "super_block", "s_flags"));
    l.sb_op = VMI_TRY(bind_offset(p, "super_block", "s_op"));
    l.sb_type = VMI_TRY(bind_offset(p, "super_block", "s_type"));
    l.sb_subtype = VMI_TRY(bind_offset(p, "super_block", "s_subtype"));
    l.sb_fs_info = VMI_TRY(bind_offset(p, "super_block", "s_fs_info"));
    l.type_name = VMI_TRY(bind_offset(p, "file_system_type", "name"));
    l.op_show_options = VMI_TRY(bind_offset(p, "super_operations", "show_options"));
    l.op_show_devname = VMI_TRY(bind_offset(p, "super_operations", "show_devname"));
    l.op_show_path = VMI_TRY(bind_offset(p, "super_operations", "show_path"));
    return l;
  }
};

// The shmem and proc option printers' inputs (mm/shmem.c, fs/proc/root.c).
struct OptionLayout {
  std::optional<std::uint32_t> max_blocks, max_inodes, mode, uid, gid, huge, full_inums, mpol, noswap;
  std::optional<std::uint32_t> proc_gid, proc_hide_pid, proc_pid_only;

  static Expected<OptionLayout> bind(const Profile& p) {
    OptionLayout l;
    auto at = [&](std::optional<std::uint32_t>& target, std::string_view type, std::string_view field) {
      if (auto offset = bind_offset(p, type, field)) target = *offset;
    };
    at(l.max_blocks, "shmem_sb_info", "max_blocks");
    at(l.max_inodes, "shmem_sb_info", "max_inodes");
    at(l.mode, "shmem_sb_info", "mode");
    at(l.uid, "shmem_sb_info", "uid");
    at(l.gid, "shmem_sb_info", "gid");
    at(l.huge, "shmem_sb_info", "huge");
    at(l.full_inums, "shmem_sb_info", "full_inums");
    at(l.mpol, "shmem_sb_info", "mpol");
    at(l.noswap, "shmem_sb_info", "noswap");
    at(l.proc_gid, "proc_fs_info", "pid_gid");
    at(l.proc_hide_pid, "proc_fs_info", "hide_pid");
    at(l.proc_pid_only, "proc_fs_info", "pidonly");
    return l;
  }
};

// seq_escape(): each byte of `escape` as a backslash and three octal digits.
std::string escaped(std::string_view text, std::string_view escape) {
  std::string out;
  for (const char c : text) {
    if (escape.find(c) == std::string_view::npos) {
      out += c;
      continue;
    }
    char octal[8];
    std::snprintf(octal, sizeof octal, "\\%03o", static_cast<unsigned char>(c));
    out += octal;
  }
  return out;
}
constexpr std::string_view kPathEscapes = " \t\n\\";
constexpr std::string_view kNameEscapes = " \t\n\\#";  // mangle()

class MountReader {
 public:
  MountReader(const Kernel& kernel, const MountLayout& layout, Diagnostics& diagnostics)
      : kernel_(kernel), layout_(layout), diagnostics_(diagnostics) {
    for (auto [target, name] :
         {std::pair{&shmem_show_options_, "shmem_show_options"}, std::pair{&proc_show_options_, "proc_show_options"},
          std::pair{&kernfs_show_options_, "kernfs_sop_show_options"},
          std::pair{&kernfs_show_path_, "kernfs_sop_show_path"}, std::pair{&init_user_ns_, "init_user_ns"},
          std::pair{&nop_idmap_, "nop_mnt_idmap"}, std::pair{&totalram_pages_, "_totalram_pages"}})
      *target = kernel.symbol(name);
  }

  Mount read(Addr mount, std::uint32_t namespace_id, const Task& task) {
    const FieldReader fields(kernel_.kernel_layer(), diagnostics_, [mount] { return "mount " + hex(mount); });
    Mount m;
    m.mount = mount;
    m.namespace_id = namespace_id;
    m.pid = task.tgid;
    for (auto* cell : {&m.root, &m.mount_point, &m.options, &m.fields, &m.fstype, &m.source, &m.superblock_options})
      *cell = Absence::unreadable;
    m.id = m.parent_id = Absence::unreadable;
    m.major = m.minor = Absence::unreadable;
    const Addr vfsmount = mount + layout_.mount_mnt;
    if (auto id = fields.read<std::int32_t>("mnt_id", mount + layout_.mount_id)) m.id = *id;
    if (auto parent = fields.pointer("mnt_parent", mount + layout_.mount_parent)) {
      if (auto id = fields.read<std::int32_t>("mnt_parent->mnt_id", *parent + layout_.mount_id)) m.parent_id = *id;
    }
    const auto root = fields.pointer("mnt.mnt_root", vfsmount + layout_.mnt_root);
    const auto sb = fields.pointer("mnt.mnt_sb", vfsmount + layout_.mnt_sb);
    const auto flags = fields.read<std::uint32_t>("mnt.mnt_flags", vfsmount + layout_.mnt_flags);
    if (root) {
      if (auto point = mount_point_path(kernel_, task, mount, vfsmount, *root, diagnostics_)) {
        if (!point->below_root) {
          hidden_ = true;  // /proc's seq_path_root() skips it
          return m;
        }
        m.mount_point = escaped(point->text, kPathEscapes);
      }
    }
    if (flags) {
      m.options = mount_options(fields, vfsmount, *flags);
      m.fields = propagation(fields, mount, *flags);
    }
    if (!sb) return m;
    if (auto dev = fields.read<std::uint32_t>("s_dev", *sb + layout_.sb_dev)) {
      m.major = *dev >> kMinorBits;
      m.minor = *dev & ((1u << kMinorBits) - 1);
    }
    const auto type = file_system_type(fields, *sb);
    if (type) m.fstype = escaped(*type, kNameEscapes);
    const auto ops = fields.pointer("s_op", *sb + layout_.sb_op);
    if (!ops) return m;
    const auto show_path = fields.read<std::uint64_t>("s_op->show_path", *ops + layout_.op_show_path);
    const bool plain_path = show_path && (*show_path == 0 || (*show_path == kernfs_show_path_ && type == "sysfs"));
    if (root && plain_path) {
      if (auto path = root_inside_file_system(kernel_, task, mount, *root, diagnostics_))
        m.root = escaped(*path, kPathEscapes);
    } else if (show_path) {
      fields.warn("s_op->show_path", *ops + layout_.op_show_path,
                  "is " + function_name(*show_path) + ", which prints the root its own way; root not shown");
    }
    m.source = source(fields, mount, *ops);
    if (type) m.superblock_options = superblock_options(fields, *sb, *ops, *type);
    return m;
  }

  // Whether the last mount read lies outside the process's root (and is left out).
  bool take_hidden() { return std::exchange(hidden_, false); }

 private:
  std::string function_name(Addr function) const {
    if (auto symbol = kernel_symbol_at(kernel_, function)) return symbol->text();
    return hex(function) + " (outside the kernel image)";
  }

  std::string mount_options(const FieldReader& fields, Addr vfsmount, std::uint32_t flags) {
    std::string text = (flags & kMntReadonly) != 0 ? "ro" : "rw";
    for (const auto& flag : kMountFlags)
      if ((flags & flag.bit) != 0) text += flag.text;
    // is_idmapped_mnt(): the mount's idmapping is not the initial one.
    std::optional<std::uint64_t> mapping;
    std::optional<Addr> identity;
    if (layout_.mnt_idmap) {
      mapping = fields.read<std::uint64_t>("mnt.mnt_idmap", vfsmount + *layout_.mnt_idmap);
      identity = nop_idmap_;
    } else if (layout_.mnt_userns) {
      mapping = fields.read<std::uint64_t>("mnt.mnt_userns", vfsmount + *layout_.mnt_userns);
      identity = init_user_ns_;
    }
    if (mapping && identity && *mapping != *identity) text += ",idmapped";
    return text;
  }

  Maybe<std::string> propagation(const FieldReader& fields, Addr mount, std::uint32_t flags) const {
    std::string text;
    auto add = [&](const std::string& field) { text += (text.empty() ? "" : " ") + field; };
    if ((flags & kMntShared) != 0) {
      auto group = fields.read<std::int32_t>("mnt_group_id", mount + layout_.mount_group);
      if (!group) return Absence::unreadable;
      add("shared:" + std::to_string(*group));
    }
    auto master = fields.read<std::uint64_t>("mnt_master", mount + layout_.mount_master);
    if (!master) return Absence::unreadable;
    if (*master != 0) {
      auto group = fields.read<std::int32_t>("mnt_master->mnt_group_id", *master + layout_.mount_group);
      if (!group) return Absence::unreadable;
      add("master:" + std::to_string(*group));
      // get_dominating_id() needs the peer groups of the reader's root: not modelled.
      fields.warn("mnt_master", mount + layout_.mount_master,
                  "makes a slave mount; a propagate_from field, if /proc would show one, is not shown");
    }
    if ((flags & kMntUnbindable) != 0) add("unbindable");
    return text;
  }

  std::optional<std::string> file_system_type(const FieldReader& fields, Addr sb) {
    const auto type = fields.pointer("s_type", sb + layout_.sb_type);
    if (!type) return std::nullopt;
    const auto name_at = fields.pointer("s_type->name", *type + layout_.type_name);
    if (!name_at) return std::nullopt;
    auto name = read_c_string(kernel_.kernel_layer(), *name_at, kMaxName);
    if (!name) {
      fields.warn("s_type->name string", *name_at);
      return std::nullopt;
    }
    const auto subtype = fields.read<std::uint64_t>("s_subtype", sb + layout_.sb_subtype);
    if (!subtype) return std::nullopt;
    if (*subtype != 0) {
      auto text = read_c_string(kernel_.kernel_layer(), *subtype, kMaxName);
      if (!text) {
        fields.warn("s_subtype string", *subtype);
        return std::nullopt;
      }
      if (!text->empty()) *name += "." + *text;
    }
    return *name;
  }

  Maybe<std::string> source(const FieldReader& fields, Addr mount, Addr ops) {
    const auto show_devname = fields.read<std::uint64_t>("s_op->show_devname", ops + layout_.op_show_devname);
    if (!show_devname) return Absence::unreadable;
    if (*show_devname != 0) {
      fields.warn("s_op->show_devname", ops + layout_.op_show_devname,
                  "is " + function_name(*show_devname) + ", which prints the source its own way; source not shown");
      return Absence::unreadable;
    }
    const auto devname = fields.read<std::uint64_t>("mnt_devname", mount + layout_.mount_devname);
    if (!devname) return Absence::unreadable;
    if (*devname == 0) return std::string("none");
    auto text = read_c_string(kernel_.kernel_layer(), *devname, kMaxName);
    if (!text) {
      fields.warn("mnt_devname string", *devname);
      return Absence::unreadable;
    }
    return escaped(*text, kNameEscapes);
  }

  Maybe<std::string> superblock_options(const FieldReader& fields, Addr sb, Addr ops, const std::string& type) {
    const auto flags = fields.read<std::uint64_t>("s_flags", sb + layout_.sb_flags);
    const auto show_options = fields.read<std::uint64_t>("s_op->show_options", ops + layout_.op_show_options);
    if (!flags || !show_options) return Absence::unreadable;
    std::string text = (*flags & kSbRdonly) != 0 ? "ro" : "rw";
    for (const auto& flag : kSuperFlags)
      if ((*flags & flag.bit) != 0) text += flag.text;
    if (*show_options == 0 || (*show_options == kernfs_show_options_ && type == "sysfs")) return text;
    const auto info = fields.pointer("s_fs_info", sb + layout_.sb_fs_info);
    if (!info) return Absence::unreadable;
    std::optional<std::string> own;
    if (*show_options == shmem_show_options_) {
      own = shmem_options(fields, *info);
    } else if (*show_options == proc_show_options_) {
      own = proc_options(fields, *info);
    } else {
      fields.warn("s_op->show_options", ops + layout_.op_show_options,
                  "is " + function_name(*show_options) + ", whose options this reader does not model");
    }
    if (!own) return Absence::unreadable;
    return text + *own;
  }

  const OptionLayout& options_layout() const { return *kernel_.layout<OptionLayout>(); }

  // shmem_show_options(): what differs from a tmpfs's defaults (half of RAM for blocks and inodes).
  std::optional<std::string> shmem_options(const FieldReader& fields, Addr info) {
    const OptionLayout& l = options_layout();
    if (!l.max_blocks || !l.max_inodes || !l.mode || !l.uid || !l.gid || !l.full_inums || !l.mpol) {
      fields.warn("shmem_sb_info", info, "has fields this reader does not know; options not shown");
      return std::nullopt;
    }
    const auto ram_pages =
        totalram_pages_ ? fields.read<std::uint64_t>("_totalram_pages", *totalram_pages_) : std::nullopt;
    const auto blocks = fields.read<std::uint64_t>("max_blocks", info + *l.max_blocks);
    const auto inodes = fields.read<std::uint64_t>("max_inodes", info + *l.max_inodes);
    const auto mode = fields.read<std::uint16_t>("mode", info + *l.mode);
    const auto uid = fields.read<std::uint32_t>("uid", info + *l.uid);
    const auto gid = fields.read<std::uint32_t>("gid", info + *l.gid);
    const auto full_inums = fields.read<std::uint8_t>("full_inums", info + *l.full_inums);
    const auto mpol = fields.read<std::uint64_t>("mpol", info + *l.mpol);
    const auto huge = l.huge ? fields.read<std::uint8_t>("huge", info + *l.huge) : std::optional<std::uint8_t>(0);
    const auto noswap =
        l.noswap ? fields.read<std::uint8_t>("noswap", info + *l.noswap) : std::optional<std::uint8_t>(0);
    if (!ram_pages || !blocks || !inodes || !mode || !uid || !gid || !full_inums || !mpol || !huge || !noswap)
      return std::nullopt;
    std::string text;
    const std::uint64_t half = *ram_pages / 2;  // shmem_default_max_blocks() and _inodes() without highmem
    if (*blocks != half) text += ",size=" + std::to_string(*blocks << 2) + "k";
    if (*inodes != half) text += ",nr_inodes=" + std::to_string(*inodes);
    if (*mode != 01777) {
      char octal[16];
      std::snprintf(octal, sizeof octal, ",mode=%03o", static_cast<unsigned>(*mode));
      text += octal;
    }
    if (*uid != 0) text += ",uid=" + std::to_string(*uid);
    if (*gid != 0) text += ",gid=" + std::to_string(*gid);
    // ",inode32" is shown too when the kernel is built with CONFIG_TMPFS_INODE64, which is not known here.
    if (*full_inums != 0) {
      text += ",inode64";
    } else {
      fields.warn("full_inums", info + *l.full_inums,
                  "is false: ',inode32' is shown by kernels built with "
                  "CONFIG_TMPFS_INODE64 and is not shown here");
    }
    if (*huge != 0) {
      constexpr std::array<std::string_view, 4> kHuge = {"never", "always", "within_size", "advise"};
      text += ",huge=";
      text += *huge < kHuge.size() ? std::string(kHuge[*huge]) : *huge == 0xff ? "deny" : "force";
    }
    if (*mpol != 0) {
      fields.warn("mpol", info + *l.mpol, "is set; the mount's mpol= option is not shown");
      return std::nullopt;
    }
    if (*noswap != 0) text += ",noswap";
    return text;
  }

  // proc_show_options(): gid=, hidepid=, subset=pid when set.
  std::optional<std::string> proc_options(const FieldReader& fields, Addr info) {
    const OptionLayout& l = options_layout();
    if (!l.proc_gid || !l.proc_hide_pid || !l.proc_pid_only) {
      fields.warn("proc_fs_info", info, "has fields this reader does not know; options not shown");
      return std::nullopt;
    }
    const auto gid = fields.read<std::uint32_t>("pid_gid", info + *l.proc_gid);
    const auto hide = fields.read<std::uint32_t>("hide_pid", info + *l.proc_hide_pid);
    const auto pid_only = fields.read<std::uint32_t>("pidonly", info + *l.proc_pid_only);
    if (!gid || !hide || !pid_only) return std::nullopt;
    std::string text;
    if (*gid != 0) text += ",gid=" + std::to_string(*gid);
    if (*hide != 0) {
      constexpr std::pair<std::uint32_t, std::string_view> kHide[] = {
          {1, "noaccess"}, {2, "invisible"}, {4, "ptraceable"}};
      const auto* found = std::ranges::find(kHide, *hide, &std::pair<std::uint32_t, std::string_view>::first);
      text += ",hidepid=" + (found != std::end(kHide) ? std::string(found->second) : std::to_string(*hide));
    }
    if (*pid_only != 0) text += ",subset=pid";
    return text;
  }

  const Kernel& kernel_;
  const MountLayout& layout_;
  Diagnostics& diagnostics_;
  std::optional<Addr> shmem_show_options_, proc_show_options_, kernfs_show_options_, kernfs_show_path_;
  std::optional<Addr> init_user_ns_, nop_idmap_, totalram_pages_;
  bool hidden_ = false;
};

// The mounts of one namespace in mountinfo's order: its list, or its tree in order.
std::vector<Addr> mounts_of(const Kernel& kernel, const MountLayout& l, Addr ns, Diagnostics& diagnostics) {
  const Layer& layer = kernel.kernel_layer();
  std::vector<Addr> mounts;
  if (l.ns_list) {
    const ListWalk walk = walk_list(layer, ns + *l.ns_list, kMaxMounts, [&](Addr node) {
      mounts.push_back(node - *l.mount_list);
      return true;
    });
    if (walk.end != ListEnd::complete)
      diagnostics.warn("mount namespace " + hex(ns) + ": mount list " + walk.problem + "; later mounts left out");
    return mounts;
  }
  const FieldReader fields(layer, diagnostics, [ns] { return "mount namespace " + hex(ns); });
  auto node = fields.read<std::uint64_t>("mounts.rb_node", ns + *l.ns_mounts);
  std::vector<Addr> path;  // in-order walk without recursion
  std::unordered_set<Addr> seen;
  Addr at = node.value_or(0);
  while ((at != 0 || !path.empty()) && mounts.size() < kMaxMounts) {
    if (at != 0) {
      if (path.size() == kMaxTreeDepth || !seen.insert(at).second) {
        fields.warn("mount tree node", at, "is too deep or seen before; the rest of the tree is left out");
        break;
      }
      path.push_back(at);
      at = fields.read<std::uint64_t>("rb_left", at + l.rb_left).value_or(0);
      continue;
    }
    const Addr current = path.back();
    path.pop_back();
    mounts.push_back(current - *l.mount_node);
    at = fields.read<std::uint64_t>("rb_right", current + l.rb_right).value_or(0);
  }
  return mounts;
}

}  // namespace

Expected<void> for_each_mount(const Kernel& kernel, Diagnostics& diagnostics,
                              const std::function<bool(Mount&&)>& visit) {
  const auto& bound = kernel.layout<MountLayout>();
  if (!bound) return bound.error();
  const MountLayout& l = *bound;
  if (!kernel.layout<OptionLayout>()) return kernel.layout<OptionLayout>().error();
  const Layer& layer = kernel.kernel_layer();
  // Each namespace with the first process found using it, whose root the paths are under.
  std::vector<std::pair<Addr, Task>> namespaces;
  std::unordered_set<Addr> seen;
  VMI_TRY_VOID(for_each_task(kernel, false, diagnostics, [&](Task&& task) {
    const FieldReader fields(layer, diagnostics, [&task] {
      return "task " + hex(task.address) + " (pid " + std::to_string(task.pid) + ")";
    });
    const auto nsproxy = fields.read<std::uint64_t>("nsproxy", task.address + l.task_nsproxy);
    if (!nsproxy || *nsproxy == 0) return true;  // an exiting task has none
    const auto ns = fields.pointer("nsproxy->mnt_ns", *nsproxy + l.nsproxy_mnt_ns);
    if (!ns || !seen.insert(*ns).second) return true;
    if (namespaces.size() == kMaxMountNamespaces) {
      diagnostics.warn("more than " + std::to_string(kMaxMountNamespaces) + " mount namespaces; the rest are left out");
      return false;
    }
    namespaces.emplace_back(*ns, std::move(task));
    return true;
  }));
  MountReader reader(kernel, l, diagnostics);
  for (const auto& entry : namespaces) {
    const Addr ns = entry.first;  // named: a lambda cannot capture a structured binding in clang 14
    const Task& task = entry.second;
    const FieldReader fields(layer, diagnostics, [ns] { return "mount namespace " + hex(ns); });
    const auto inum = fields.read<std::uint32_t>("ns.inum", ns + l.ns_inum);
    if (!inum) continue;
    for (const Addr mount : mounts_of(kernel, l, ns, diagnostics)) {
      Mount m = reader.read(mount, *inum, task);
      if (reader.take_hidden()) continue;
      if (!visit(std::move(m))) return {};
    }
  }
  return {};
}

}  // namespace vmi::linux_objects
