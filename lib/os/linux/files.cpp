// A task's open files: its fdtable, each struct file, the path through dentries and mounts
// (fs/d_path.c prepend_path), the inode and fdinfo's flags, at offsets bound once per kernel.
#include <algorithm>
#include <array>
#include <cstdio>
#include <limits>

#include "os/linux/mount_paths.hpp"
#include "vmi/linux.hpp"
#include "vmi/object.hpp"

namespace vmi::linux_objects {

namespace {

constexpr std::size_t kSlotChunk = 512;          // fd pointers read at a time
constexpr std::size_t kMaxPathComponents = 256;  // PATH_MAX allows at most 2048 one-byte names
constexpr std::size_t kMaxPathBytes = 4096;      // PATH_MAX
constexpr std::size_t kMaxNameBytes = 255;       // NAME_MAX
constexpr std::size_t kMaxFsTypeName = 32;
constexpr std::uint32_t kCloseOnExec = 02000000;  // O_CLOEXEC
constexpr unsigned kMinorBits = 20;               // MINORBITS: the kernel's dev_t is major << 20 | minor

// One of an inode's times: a timespec64 (before 6.11) or separate seconds and nanoseconds.
struct TimeLayout {
  std::uint32_t seconds = 0, nanoseconds = 0, nanoseconds_size = 8;
};

struct FileLayout {
  std::uint32_t task_files = 0, files_fdt = 0, fdt_max_fds = 0, fdt_fd = 0, fdt_close_on_exec = 0;
  std::optional<std::uint32_t> task_fs, fs_root;
  std::uint32_t file_path = 0, file_inode = 0, file_flags = 0, file_pos = 0;
  std::uint32_t path_mnt = 0, path_dentry = 0;
  std::uint32_t dentry_parent = 0, dentry_name = 0, dentry_inode = 0, dentry_hash_pprev = 0, dentry_sb = 0;
  std::uint32_t qstr_name = 0, qstr_len = 0;
  std::uint32_t mount_mnt = 0, mount_parent = 0, mount_mountpoint = 0, vfsmount_root = 0;
  std::uint32_t inode_mode = 0, inode_ino = 0, inode_size = 0, inode_sb = 0;
  std::optional<TimeLayout> atime, mtime, ctime;
  std::uint32_t sb_dev = 0, sb_type = 0, fs_type_name = 0;

  static Expected<FileLayout> bind(const Profile& p) {
    FileLayout l;
    l.task_files = VMI_TRY(bind_offset(p, "task_struct", "files"));
    l.files_fdt = VMI_TRY(bind_offset(p, "files_struct", "fdt"));
    l.fdt_max_fds = VMI_TRY(bind_offset(p, "fdtable", "max_fds"));
    l.fdt_fd = VMI_TRY(bind_offset(p, "fdtable", "fd"));
    l.fdt_close_on_exec = VMI_TRY(bind_offset(p, "fdtable", "close_on_exec"));
    if (auto fs = bind_offset(p, "task_struct", "fs")) l.task_fs = *fs;
    if (auto root = bind_offset(p, "fs_struct", "root")) l.fs_root = *root;
    l.file_path = VMI_TRY(bind_offset(p, "file", "f_path"));
    l.file_inode = VMI_TRY(bind_offset(p, "file", "f_inode"));
    l.file_flags = VMI_TRY(bind_offset(p, "file", "f_flags"));
    l.file_pos = VMI_TRY(bind_offset(p, "file", "f_pos"));
    l.path_mnt = VMI_TRY(bind_offset(p, "path", "mnt"));
    l.path_dentry = VMI_TRY(bind_offset(p, "path", "dentry"));
    l.dentry_parent = VMI_TRY(bind_offset(p, "dentry", "d_parent"));
    l.dentry_name = VMI_TRY(bind_offset(p, "dentry", "d_name"));
    l.dentry_inode = VMI_TRY(bind_offset(p, "dentry", "d_inode"));
    l.dentry_hash_pprev =
        VMI_TRY(bind_offset(p, "dentry", "d_hash")) + VMI_TRY(bind_offset(p, "hlist_bl_node", "pprev"));
    l.dentry_sb = VMI_TRY(bind_offset(p, "dentry", "d_sb"));
    l.qstr_name = VMI_TRY(bind_offset(p, "qstr", "name"));
    l.qstr_len = VMI_TRY(bind_offset(p, "qstr", "len"));
    l.mount_mnt = VMI_TRY(bind_offset(p, "mount", "mnt"));
    l.mount_parent = VMI_TRY(bind_offset(p, "mount", "mnt_parent"));
    l.mount_mountpoint = VMI_TRY(bind_offset(p, "mount", "mnt_mountpoint"));
    l.vfsmount_root = VMI_TRY(bind_offset(p, "vfsmount", "mnt_root"));
    l.inode_mode = VMI_TRY(bind_offset(p, "inode", "i_mode"));
    l.inode_ino = VMI_TRY(bind_offset(p, "inode", "i_ino"));
    l.inode_size = VMI_TRY(bind_offset(p, "inode", "i_size"));
    l.inode_sb = VMI_TRY(bind_offset(p, "inode", "i_sb"));
    l.atime = bind_time(p, "atime");
    l.mtime = bind_time(p, "mtime");
    l.ctime = bind_time(p, "ctime");
    l.sb_dev = VMI_TRY(bind_offset(p, "super_block", "s_dev"));
    l.sb_type = VMI_TRY(bind_offset(p, "super_block", "s_type"));
    l.fs_type_name = VMI_TRY(bind_offset(p, "file_system_type", "name"));
    return l;
  }

  // i_Xtime_sec/i_Xtime_nsec (6.11+), else the timespec64 __i_Xtime (6.6+) or i_Xtime.
  static std::optional<TimeLayout> bind_time(const Profile& p, const std::string& which) {
    auto seconds = bind_offset(p, "inode", "i_" + which + "_sec");
    auto nanoseconds = bind_offset(p, "inode", "i_" + which + "_nsec");
    if (seconds && nanoseconds) return TimeLayout{*seconds, *nanoseconds, 4};
    auto spec = bind_offset(p, "inode", "__i_" + which);
    if (!spec) spec = bind_offset(p, "inode", "i_" + which);
    auto tv_sec = bind_offset(p, "timespec64", "tv_sec");
    auto tv_nsec = bind_offset(p, "timespec64", "tv_nsec");
    if (spec && tv_sec && tv_nsec) return TimeLayout{*spec + *tv_sec, *spec + *tv_nsec, 8};
    return std::nullopt;
  }
};

std::string file_mode_text(std::uint32_t mode) {
  constexpr std::array<std::pair<std::uint32_t, char>, 7> kTypes = {
      {{0140000, 's'}, {0120000, 'l'}, {0100000, '-'}, {060000, 'b'}, {040000, 'd'}, {020000, 'c'}, {010000, 'p'}}};
  char type = '?';  // no type bits: an anonymous inode (Python's stat.filemode prints '?' too)
  for (const auto& [bits, letter] : kTypes) {
    if ((mode & 0170000) == bits) type = letter;
  }
  std::string text(1, type);
  constexpr char kLetters[] = "rwxrwxrwx";
  for (int bit = 0; bit < 9; ++bit) text += (mode & (0400u >> bit)) != 0 ? kLetters[bit] : '-';
  // setuid, setgid and sticky replace the x of their triple, as ls shows them.
  auto special = [&](std::uint32_t flag, std::size_t at, char with_x, char without_x) {
    if ((mode & flag) != 0) text[at] = text[at] == 'x' ? with_x : without_x;
  };
  special(04000, 3, 's', 'S');
  special(02000, 6, 's', 'S');
  special(01000, 9, 't', 'T');
  return text;
}

Maybe<std::string> file_type_name(std::uint32_t mode) {
  switch (mode & 0170000) {
    case 0140000:
      return std::string("SOCK");
    case 0120000:
      return std::string("LNK");
    case 0100000:
      return std::string("REG");
    case 060000:
      return std::string("BLK");
    case 040000:
      return std::string("DIR");
    case 020000:
      return std::string("CHR");
    case 010000:
      return std::string("FIFO");
    default:
      return Absence::not_applicable;  // anonymous inodes carry permission bits only
  }
}

class FileReader {
 public:
  // `fdt` is the task's fdtable; its close-on-exec bitmap is found once for all its descriptors.
  // Without one (a file held other than through a descriptor) no flags are read.
  // `subject` names what a descriptor-less object is in warnings ("file", "mount").
  FileReader(const Kernel& kernel, const FileLayout& layout, const Task& task, std::optional<Addr> fdt,
             Diagnostics& diagnostics, std::string_view subject = "file")
      : layer_(kernel.kernel_layer()), layout_(layout), task_(task), diagnostics_(diagnostics), subject_(subject) {
    read_root();
    if (!fdt) return;
    const Addr at = *fdt + layout_.fdt_close_on_exec;
    if (auto bitmap = read_value<std::uint64_t>(layer_, at)) {
      close_on_exec_bitmap_ = *bitmap;
    } else {
      diagnostics_.warn(owner() + ": field 'fdtable.close_on_exec' at " + hex(at) +
                        " is unreadable; no descriptor's flags can be told");
    }
  }

  // A mount's paths, warnings naming the mount: its mount point as the task sees it, and its
  // root inside its own file system.
  std::optional<MountPath> mount_point(Addr mount, Addr vfsmount, Addr dentry) {
    FileDescriptor d = subject(mount);
    MountPath path;
    auto text = walk_path(d, vfsmount, dentry, &path.below_root);
    if (!text) return std::nullopt;
    path.text = std::move(*text);
    return path;
  }
  std::optional<std::string> root_inside(Addr mount, Addr dentry) { return dentry_path(subject(mount), dentry); }

  FileDescriptor read(std::int32_t fd, Addr file) {
    FileDescriptor d;
    d.pid = task_.tgid;
    d.tid = task_.pid;
    d.process = task_.comm;
    d.fd = fd;
    d.file = file;
    if (fd < 0) {  // a mapped file: no descriptor, no flags, no position
      read_inode(d);
      d.path = path_of(d);
      return d;
    }
    if (auto flags = read_at<std::uint32_t>(d, "f_flags", file + layout_.file_flags)) {
      std::uint32_t shown = *flags;
      if (auto cloexec = close_on_exec(d, fd)) {
        if (*cloexec) shown |= kCloseOnExec;
        char text[16];
        std::snprintf(text, sizeof text, "0%o", shown);
        d.flags = text;
      }
    }
    d.position = read_at<std::int64_t>(d, "f_pos", file + layout_.file_pos);
    read_inode(d);
    d.path = path_of(d);
    return d;
  }

 private:
  FileDescriptor subject(Addr object) const {
    FileDescriptor d;
    d.pid = task_.tgid;
    d.tid = task_.pid;
    d.fd = -1;
    d.file = object;
    return d;
  }

  std::string owner() const { return "task " + hex(task_.address) + " (pid " + std::to_string(task_.pid) + ")"; }

  void unreadable(const FileDescriptor& d, std::string_view field, Addr at, std::string_view why = "is unreadable") {
    const std::string holder = d.fd < 0 ? " " + subject_ + " " + hex(d.file) : " fd " + std::to_string(d.fd);
    diagnostics_.warn(owner() + holder + ": field '" + std::string(field) + "' at " + hex(at) + " " + std::string(why));
  }

  // A pointer field that must not be NULL: nothing, with a warning, when it is NULL or unreadable.
  std::optional<Addr> pointer_at(const FileDescriptor& d, std::string_view field, Addr at) {
    auto value = read_at<std::uint64_t>(d, field, at);
    if (value && *value == 0) {
      unreadable(d, field, at, "is NULL");
      return std::nullopt;
    }
    return value;
  }

  template <typename T>
  std::optional<T> read_at(const FileDescriptor& d, std::string_view field, Addr at) {
    auto value = read_value<T>(layer_, at);
    if (value) return *value;
    unreadable(d, field, at);
    return std::nullopt;
  }

  template <typename T>
  Maybe<T> maybe(std::optional<T> value) {
    if (value) return *value;
    return Absence::unreadable;
  }

  // The task's root (task->fs->root), where paths stop; the global root when it is unknown.
  void read_root() {
    if (!layout_.task_fs || !layout_.fs_root) return;
    const Addr at = task_.address + *layout_.task_fs;
    auto fs = read_value<std::uint64_t>(layer_, at);
    if (!fs)
      diagnostics_.warn(owner() + ": field 'fs' at " + hex(at) + " is unreadable; paths go up to the global root");
    if (!fs || *fs == 0) return;
    auto mnt = read_value<std::uint64_t>(layer_, *fs + *layout_.fs_root + layout_.path_mnt);
    auto dentry = read_value<std::uint64_t>(layer_, *fs + *layout_.fs_root + layout_.path_dentry);
    if (mnt && dentry) root_ = {*mnt, *dentry};
  }

  std::optional<bool> close_on_exec(const FileDescriptor& d, std::int32_t fd) {
    if (!close_on_exec_bitmap_) return std::nullopt;
    const Addr word_at = *close_on_exec_bitmap_ + static_cast<std::uint64_t>(fd / 64) * 8;
    auto word = read_at<std::uint64_t>(d, "close_on_exec bitmap", word_at);
    if (!word) return std::nullopt;
    return ((*word >> (fd % 64)) & 1) != 0;
  }

  void read_inode(FileDescriptor& d) {
    const auto inode = read_at<std::uint64_t>(d, "f_inode", d.file + layout_.file_inode);
    if (!inode || *inode == 0) {
      const Absence why = inode ? Absence::not_applicable : Absence::unreadable;
      d.type = d.mode = why;
      d.device = why;
      d.inode = why;
      d.changed_ns = d.modified_ns = d.accessed_ns = d.size = why;
      return;
    }
    const Addr at = *inode;
    d.inode = maybe(read_at<std::uint64_t>(d, "inode.i_ino", at + layout_.inode_ino));
    if (auto mode = read_at<std::uint16_t>(d, "inode.i_mode", at + layout_.inode_mode)) {
      d.mode = file_mode_text(*mode);
      d.type = file_type_name(*mode);
    } else {
      d.mode = d.type = Absence::unreadable;
    }
    d.size = maybe(read_at<std::int64_t>(d, "inode.i_size", at + layout_.inode_size));
    d.accessed_ns = time_of(d, at, layout_.atime, "atime");
    d.modified_ns = time_of(d, at, layout_.mtime, "mtime");
    d.changed_ns = time_of(d, at, layout_.ctime, "ctime");
    d.device = Absence::unreadable;
    if (const auto sb = pointer_at(d, "inode.i_sb", at + layout_.inode_sb)) {
      if (auto dev = read_at<std::uint32_t>(d, "super_block.s_dev", *sb + layout_.sb_dev))
        d.device = DeviceNumber{*dev >> kMinorBits, *dev & ((1u << kMinorBits) - 1)};
    }
  }

  Maybe<std::int64_t> time_of(const FileDescriptor& d, Addr inode, const std::optional<TimeLayout>& layout,
                              std::string_view name) {
    if (!layout) return Absence::unreadable;
    const std::string field = "inode." + std::string(name);
    auto seconds = read_at<std::int64_t>(d, field, inode + layout->seconds);
    std::optional<std::int64_t> nanoseconds;
    if (layout->nanoseconds_size == 4) {
      if (auto ns = read_at<std::uint32_t>(d, field, inode + layout->nanoseconds)) nanoseconds = *ns;
    } else {
      nanoseconds = read_at<std::int64_t>(d, field, inode + layout->nanoseconds);
    }
    if (!seconds || !nanoseconds) return Absence::unreadable;
    // A time the kernel can hold (timespec64 normalised: 0 <= ns < 1e9) and that fits in int64 ns.
    constexpr std::int64_t kNs = 1'000'000'000;
    constexpr std::int64_t kMaxSeconds = std::numeric_limits<std::int64_t>::max() / kNs - 1;
    if (*seconds > kMaxSeconds || *seconds < -kMaxSeconds || *nanoseconds < 0 || *nanoseconds >= kNs) {
      unreadable(d, field, inode + layout->seconds,
                 "holds " + std::to_string(*seconds) + " s " + std::to_string(*nanoseconds) + " ns, not a time");
      return Absence::unreadable;
    }
    return *seconds * kNs + *nanoseconds;
  }

  std::optional<std::string> name_of(const FileDescriptor& d, Addr dentry) {
    const Addr qstr = dentry + layout_.dentry_name;
    auto length = read_at<std::uint32_t>(d, "dentry.d_name.len", qstr + layout_.qstr_len);
    auto pointer = read_at<std::uint64_t>(d, "dentry.d_name.name", qstr + layout_.qstr_name);
    if (!length || !pointer) return std::nullopt;
    if (*length > kMaxNameBytes) {
      unreadable(d, "dentry.d_name.len", qstr + layout_.qstr_len,
                 "holds " + std::to_string(*length) + ", above NAME_MAX");
      return std::nullopt;
    }
    std::string name(*length, '\0');
    if (!read_exact(layer_, *pointer, std::as_writable_bytes(std::span(name)))) {
      unreadable(d, "dentry.d_name string", *pointer);
      return std::nullopt;
    }
    return name;
  }

  std::optional<std::string> fs_type_of(const FileDescriptor& d, Addr dentry) {
    const auto sb = pointer_at(d, "dentry.d_sb", dentry + layout_.dentry_sb);
    if (!sb) return std::nullopt;
    const auto type = pointer_at(d, "super_block.s_type", *sb + layout_.sb_type);
    if (!type) return std::nullopt;
    const auto name = pointer_at(d, "file_system_type.name", *type + layout_.fs_type_name);
    if (!name) return std::nullopt;
    auto text = read_c_string(layer_, *name, kMaxFsTypeName);
    if (!text) {
      unreadable(d, "file_system_type.name string", *name);
      return std::nullopt;
    }
    return *text;
  }

  // What d_path() gives: a pseudo file system's own name (its d_dname), else the path.
  std::optional<std::string> path_of(const FileDescriptor& d) {
    const Addr path = d.file + layout_.file_path;
    const auto vfsmount = pointer_at(d, "f_path.mnt", path + layout_.path_mnt);
    const auto dentry = pointer_at(d, "f_path.dentry", path + layout_.path_dentry);
    if (!vfsmount || !dentry) return std::nullopt;
    const auto fs_type = fs_type_of(d, *dentry);
    if (!fs_type) return std::nullopt;
    if (*fs_type == "pipefs" || *fs_type == "sockfs") {  // pipefs_dname, sockfs_dname
      const auto* ino = std::get_if<std::uint64_t>(&d.inode);
      if (ino == nullptr) return std::nullopt;
      return std::string(*fs_type == "pipefs" ? "pipe" : "socket") + ":[" + std::to_string(*ino) + "]";
    }
    if (*fs_type == "anon_inodefs") {  // anon_inodefs_dname
      auto name = name_of(d, *dentry);
      if (!name) return std::nullopt;
      return "anon_inode:" + *name;
    }
    auto text = walk_path(d, *vfsmount, *dentry);
    if (!text) return std::nullopt;
    // d_path marks a file whose dentry was unlinked: unhashed and not a root.
    auto pprev = read_at<std::uint64_t>(d, "dentry.d_hash.pprev", *dentry + layout_.dentry_hash_pprev);
    auto parent = read_at<std::uint64_t>(d, "dentry.d_parent", *dentry + layout_.dentry_parent);
    if (!pprev || !parent) return std::nullopt;
    if (*pprev == 0 && *parent != *dentry) *text += " (deleted)";
    return text;
  }

  // prepend_path(): names up to the root of each mount, then across to the mount point below it,
  // until the task's root or the top of the mount tree; `below_root` tells which it was.
  std::optional<std::string> walk_path(const FileDescriptor& d, Addr vfsmount, Addr dentry,
                                       bool* below_root = nullptr) {
    std::vector<std::string> names;
    std::size_t bytes = 0;
    if (below_root != nullptr) *below_root = false;
    for (std::size_t step = 0; step < 2 * kMaxPathComponents; ++step) {
      if (root_ && dentry == root_->second && vfsmount == root_->first) {
        if (below_root != nullptr) *below_root = true;
        return joined(names);
      }
      auto mount_root = read_at<std::uint64_t>(d, "vfsmount.mnt_root", vfsmount + layout_.vfsmount_root);
      auto parent = read_at<std::uint64_t>(d, "dentry.d_parent", dentry + layout_.dentry_parent);
      if (!mount_root || !parent) return std::nullopt;
      if (dentry == *mount_root || *parent == dentry) {
        const Addr mount = vfsmount - layout_.mount_mnt;
        auto mount_parent = read_at<std::uint64_t>(d, "mount.mnt_parent", mount + layout_.mount_parent);
        if (!mount_parent) return std::nullopt;
        if (*mount_parent == mount || *mount_parent == 0) return joined(names);  // the top of the tree
        auto mountpoint = read_at<std::uint64_t>(d, "mount.mnt_mountpoint", mount + layout_.mount_mountpoint);
        if (!mountpoint) return std::nullopt;
        dentry = *mountpoint;
        vfsmount = *mount_parent + layout_.mount_mnt;
        continue;
      }
      auto name = name_of(d, dentry);
      if (!name) return std::nullopt;
      bytes += name->size() + 1;
      if (names.size() == kMaxPathComponents || bytes > kMaxPathBytes) {
        unreadable(d, "path", dentry, "is longer than PATH_MAX (a dentry cycle?)");
        return std::nullopt;
      }
      names.push_back(std::move(*name));
      dentry = *parent;
    }
    unreadable(d, "path", dentry, "crosses too many mounts");
    return std::nullopt;
  }

  // dentry_path_raw(): names up to the root of the dentry's own file system.
  std::optional<std::string> dentry_path(const FileDescriptor& d, Addr dentry) {
    std::vector<std::string> names;
    std::size_t bytes = 0;
    for (std::size_t step = 0; step <= kMaxPathComponents; ++step) {
      auto parent = read_at<std::uint64_t>(d, "dentry.d_parent", dentry + layout_.dentry_parent);
      if (!parent) return std::nullopt;
      if (*parent == dentry) return joined(names);
      auto name = name_of(d, dentry);
      if (!name) return std::nullopt;
      bytes += name->size() + 1;
      if (bytes > kMaxPathBytes) break;
      names.push_back(std::move(*name));
      dentry = *parent;
    }
    unreadable(d, "path", dentry, "is longer than PATH_MAX (a dentry cycle?)");
    return std::nullopt;
  }

  static std::string joined(const std::vector<std::string>& names) {
    if (names.empty()) return "/";
    std::string text;
    for (auto it = names.rbegin(); it != names.rend(); ++it) text += "/" + *it;
    return text;
  }

  const Layer& layer_;
  const FileLayout& layout_;
  const Task& task_;
  Diagnostics& diagnostics_;
  std::string subject_;
  std::optional<std::pair<Addr, Addr>> root_;  // vfsmount, dentry
  std::optional<Addr> close_on_exec_bitmap_;
};

}  // namespace

std::optional<Addr> file_table_of(const Kernel& kernel, const Task& task, Diagnostics& diagnostics) {
  const auto& bound = kernel.layout<FileLayout>();
  if (!bound) return std::nullopt;
  const Addr at = task.address + bound->task_files;
  auto files = read_value<std::uint64_t>(kernel.kernel_layer(), at);
  if (files) return *files;
  diagnostics.warn("task " + hex(task.address) + " (pid " + std::to_string(task.pid) + "): field 'files' at " +
                   hex(at) + " is unreadable");
  return std::nullopt;
}

FileDescriptor describe_file(const Kernel& kernel, const Task& task, Addr file, Diagnostics& diagnostics) {
  const auto& bound = kernel.layout<FileLayout>();
  if (!bound) {
    diagnostics.warn("file " + hex(file) + ": " + bound.error().message);
    FileDescriptor d;
    d.pid = task.tgid;
    d.tid = task.pid;
    d.process = task.comm;
    d.fd = -1;
    d.file = file;
    d.device = Absence::unreadable;
    d.type = d.mode = Absence::unreadable;
    d.inode = Absence::unreadable;
    d.changed_ns = d.modified_ns = d.accessed_ns = d.size = Absence::unreadable;
    return d;
  }
  return FileReader(kernel, *bound, task, std::nullopt, diagnostics).read(-1, file);
}

std::optional<MountPath> mount_point_path(const Kernel& kernel, const Task& task, Addr mount, Addr vfsmount,
                                          Addr dentry, Diagnostics& diagnostics) {
  const auto& bound = kernel.layout<FileLayout>();
  if (!bound) return std::nullopt;
  return FileReader(kernel, *bound, task, std::nullopt, diagnostics, "mount").mount_point(mount, vfsmount, dentry);
}

std::optional<std::string> root_inside_file_system(const Kernel& kernel, const Task& task, Addr mount, Addr dentry,
                                                   Diagnostics& diagnostics) {
  const auto& bound = kernel.layout<FileLayout>();
  if (!bound) return std::nullopt;
  return FileReader(kernel, *bound, task, std::nullopt, diagnostics, "mount").root_inside(mount, dentry);
}

Expected<void> for_each_file_descriptor(const Kernel& kernel, const Task& task, Addr table, DescriptorBudget& budget,
                                        Diagnostics& diagnostics, const std::function<bool(FileDescriptor&&)>& visit) {
  const auto& bound = kernel.layout<FileLayout>();
  if (!bound) return bound.error();
  const FileLayout& layout = *bound;
  if (table == 0) return {};
  const Layer& layer = kernel.kernel_layer();
  const std::string owner = "task " + hex(task.address) + " (pid " + std::to_string(task.pid) + ")";
  auto fdt = read_value<std::uint64_t>(layer, table + layout.files_fdt);
  if (!fdt || *fdt == 0) {
    diagnostics.warn(owner + ": field 'files.fdt' at " + hex(table + layout.files_fdt) +
                     (fdt ? " is NULL" : " is unreadable"));
    return {};
  }
  auto max_fds = read_value<std::uint32_t>(layer, *fdt + layout.fdt_max_fds);
  auto slots = read_value<std::uint64_t>(layer, *fdt + layout.fdt_fd);
  if (!max_fds || !slots) {
    diagnostics.warn(owner + ": fdtable at " + hex(*fdt) + " is unreadable");
    return {};
  }
  std::uint32_t count = *max_fds;
  if (count > kMaxDescriptors) {
    diagnostics.warn(owner + ": fdtable.max_fds at " + hex(*fdt + layout.fdt_max_fds) + " holds " +
                     std::to_string(count) + "; only the first " + std::to_string(kMaxDescriptors) + " are read");
    count = kMaxDescriptors;
  }
  if (count > budget.slots_left) {
    if (!budget.warned)
      diagnostics.warn("open files: more descriptor slots than one walk reads; later tables are cut short");
    budget.warned = true;
    count = static_cast<std::uint32_t>(budget.slots_left);
  }
  budget.slots_left -= count;

  FileReader reader(kernel, layout, task, *fdt, diagnostics);
  std::array<std::uint64_t, kSlotChunk> chunk{};
  for (std::uint32_t first = 0; first < count; first += kSlotChunk) {
    const std::size_t n = std::min<std::size_t>(kSlotChunk, count - first);
    const Addr at = *slots + std::uint64_t{first} * 8;
    if (!read_exact(layer, at, std::as_writable_bytes(std::span(chunk.data(), n)))) {
      diagnostics.warn(owner + ": descriptors " + std::to_string(first) + "-" + std::to_string(first + n - 1) + " at " +
                       hex(at) + " are unreadable");
      continue;
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (chunk[i] == 0) continue;
      if (!visit(reader.read(static_cast<std::int32_t>(first + i), chunk[i]))) return {};
    }
  }
  return {};
}

}  // namespace vmi::linux_objects
