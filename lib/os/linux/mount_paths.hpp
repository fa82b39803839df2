// The paths of a mount, for the mount walk (mounts.cpp); files.cpp's path walk computes them.
#pragma once

#include <optional>
#include <string>

#include "vmi/linux.hpp"

namespace vmi::linux_objects {

// Paths of a mount as `task` sees them, warnings naming the mount (struct mount, `mount`):
// (vfsmount, dentry) walked through mount points up to task->fs->root (prepend_path()), with
// below_root false when the walk reached the top of the mount tree instead (/proc leaves such a
// mount out); and a dentry's path inside its own file system (dentry_path_raw()).
struct MountPath {
  std::string text;
  bool below_root = false;
};
std::optional<MountPath> mount_point_path(const Kernel& kernel, const Task& task, Addr mount, Addr vfsmount,
                                          Addr dentry, Diagnostics& diagnostics);
std::optional<std::string> root_inside_file_system(const Kernel& kernel, const Task& task, Addr mount, Addr dentry,
                                                   Diagnostics& diagnostics);

}  // namespace vmi::linux_objects
