// mountinfo: every mount of every mount namespace, as /proc/PID/mountinfo shows it.
#include <algorithm>

#include "plugins/plugins.hpp"
#include "vmi/linux.hpp"
#include "vmi/rows.hpp"

namespace vmi {

namespace {

using linux_objects::Mount;

struct MountRow {
  std::uint32_t namespace_id = 0;
  Maybe<std::int32_t> id, parent_id;
  Maybe<std::string> device, root, mount_point, options, fields, fstype, source, superblock_options;
  std::int32_t pid = 0;
};

// Volatility 3's mountinfo columns, then the process whose root the paths are under.
constexpr auto kMountRow =
    declare_row(column<&MountRow::namespace_id>("MNT_NS_ID"), column<&MountRow::id>("MOUNT ID"),
                column<&MountRow::parent_id>("PARENT_ID"), column<&MountRow::device>("MAJOR:MINOR"),
                column<&MountRow::root>("ROOT"), column<&MountRow::mount_point>("MOUNT_POINT"),
                column<&MountRow::options>("MOUNT_OPTIONS"), column<&MountRow::fields>("FIELDS"),
                column<&MountRow::fstype>("FSTYPE"), column<&MountRow::source>("MOUNT_SRC"),
                column<&MountRow::superblock_options>("SB_OPTIONS"), column<&MountRow::pid>("PID"));

constexpr PluginOption kOptions[] = {
    {"mntns", OptionType::integers, "only these mount namespaces (inode numbers, comma-separated)"}};

Maybe<std::string> device_of(const Mount& m) {
  const auto* major = std::get_if<std::uint32_t>(&m.major);
  const auto* minor = std::get_if<std::uint32_t>(&m.minor);
  if (major == nullptr || minor == nullptr) return Absence::unreadable;
  return std::to_string(*major) + ":" + std::to_string(*minor);
}

Expected<void> run_mountinfo(PluginContext& context) {
  const auto namespaces = VMI_TRY(context.args.integers("mntns"));
  RowWriter rows(context.out, kMountRow);
  return linux_objects::for_each_mount(*context.kernel, context.diagnostics, [&](Mount&& m) {
    if (!namespaces.empty() && std::ranges::find(namespaces, std::int64_t{m.namespace_id}) == namespaces.end())
      return true;
    const MountRow row{m.namespace_id, m.id,     m.parent_id, device_of(m),         m.root, m.mount_point, m.options,
                       m.fields,       m.fstype, m.source,    m.superblock_options, m.pid};
    return rows.write(row);
  });
}

}  // namespace

constexpr std::string_view kMountinfoAliases[] = {"linux.mountinfo.MountInfo"};
const Plugin kMountinfoPlugin{.name = "linux.mountinfo",
                              .short_name = "mountinfo",
                              .os = "linux",
                              .aliases = kMountinfoAliases,
                              .description = "Every mount of every mount namespace, as /proc/PID/mountinfo shows it",
                              .needs = Requirement::kernel,
                              .columns = kMountRow.columns,
                              .tree = false,
                              .options = kOptions,
                              .run = run_mountinfo};

}  // namespace vmi
