// capabilities: each task's capability sets, by name and as /proc/PID/status shows them.
#include <algorithm>
#include <cstdio>

#include "plugins/plugins.hpp"
#include "vmi/linux.hpp"
#include "vmi/rows.hpp"

namespace vmi {

namespace {

struct CapabilityRow {
  std::string name;
  std::int32_t tid = 0, pid = 0;
  std::optional<std::int32_t> ppid;
  std::optional<std::uint32_t> euid;
  Maybe<std::string> inheritable, permitted, effective, bounding, ambient;
  Maybe<std::string> inheritable_mask, permitted_mask, effective_mask, bounding_mask, ambient_mask;
};

// Volatility 3's capabilities columns, then the masks in /proc/PID/status's form.
constexpr auto kCapabilityRow = declare_row(
    column<&CapabilityRow::name>("Name"), column<&CapabilityRow::tid>("Tid"), column<&CapabilityRow::pid>("Pid"),
    column<&CapabilityRow::ppid>("PPid"), column<&CapabilityRow::euid>("EUID"),
    column<&CapabilityRow::inheritable>("cap_inheritable"), column<&CapabilityRow::permitted>("cap_permitted"),
    column<&CapabilityRow::effective>("cap_effective"), column<&CapabilityRow::bounding>("cap_bounding"),
    column<&CapabilityRow::ambient>("cap_ambient"), column<&CapabilityRow::inheritable_mask>("CapInh"),
    column<&CapabilityRow::permitted_mask>("CapPrm"), column<&CapabilityRow::effective_mask>("CapEff"),
    column<&CapabilityRow::bounding_mask>("CapBnd"), column<&CapabilityRow::ambient_mask>("CapAmb"));

constexpr PluginOption kOptions[] = {{"pid", OptionType::integers, "only these process IDs (comma-separated)"}};

// include/uapi/linux/capability.h, without the "cap_" prefix, as Volatility 3 shows them.
constexpr std::string_view kCapabilityNames[] = {"chown",
                                                 "dac_override",
                                                 "dac_read_search",
                                                 "fowner",
                                                 "fsetid",
                                                 "kill",
                                                 "setgid",
                                                 "setuid",
                                                 "setpcap",
                                                 "linux_immutable",
                                                 "net_bind_service",
                                                 "net_broadcast",
                                                 "net_admin",
                                                 "net_raw",
                                                 "ipc_lock",
                                                 "ipc_owner",
                                                 "sys_module",
                                                 "sys_rawio",
                                                 "sys_chroot",
                                                 "sys_ptrace",
                                                 "sys_pacct",
                                                 "sys_admin",
                                                 "sys_boot",
                                                 "sys_nice",
                                                 "sys_resource",
                                                 "sys_time",
                                                 "sys_tty_config",
                                                 "mknod",
                                                 "lease",
                                                 "audit_write",
                                                 "audit_control",
                                                 "setfcap",
                                                 "mac_override",
                                                 "mac_admin",
                                                 "syslog",
                                                 "wake_alarm",
                                                 "block_suspend",
                                                 "audit_read",
                                                 "perfmon",
                                                 "bpf",
                                                 "checkpoint_restore"};
// Every capability this table knows: CAP_LAST_CAP of 5.9 and later (checkpoint_restore, 40).
constexpr std::uint64_t kFullSet = (std::uint64_t{1} << std::size(kCapabilityNames)) - 1;

// "chown, net_raw"; "all" for the full set; "" for none; a bit no table names as its number.
std::string names_of(std::uint64_t mask) {
  if (mask == kFullSet) return "all";
  std::string text;
  for (unsigned bit = 0; bit < 64; ++bit) {
    if ((mask >> bit & 1) == 0) continue;
    if (!text.empty()) text += ", ";
    text += bit < std::size(kCapabilityNames) ? std::string(kCapabilityNames[bit]) : std::to_string(bit);
  }
  return text;
}

Maybe<std::string> names_of(const Maybe<std::uint64_t>& mask) {
  if (const auto* absence = std::get_if<Absence>(&mask)) return *absence;
  return names_of(std::get<std::uint64_t>(mask));
}

Maybe<std::string> status_text(const Maybe<std::uint64_t>& mask) {
  if (const auto* absence = std::get_if<Absence>(&mask)) return *absence;
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(std::get<std::uint64_t>(mask)));
  return std::string(text);
}

Expected<void> run_capabilities(PluginContext& context) {
  const auto pids = VMI_TRY(context.args.integers("pid"));
  RowWriter rows(context.out, kCapabilityRow);
  std::optional<Error> failed;  // the profile lacks cred's capability fields
  VMI_TRY_VOID(linux_objects::for_each_task(*context.kernel, true, context.diagnostics, [&](auto&& task) {
    if (!pids.empty() && std::ranges::find(pids, task.tgid) == pids.end()) return true;
    auto caps = linux_objects::capabilities_of(*context.kernel, task, context.diagnostics);
    if (!caps) {
      failed = caps.error();
      return false;
    }
    const CapabilityRow row{task.comm,
                            task.pid,
                            task.tgid,
                            task.ppid,
                            task.euid,
                            names_of(caps->inheritable),
                            names_of(caps->permitted),
                            names_of(caps->effective),
                            names_of(caps->bounding),
                            names_of(caps->ambient),
                            status_text(caps->inheritable),
                            status_text(caps->permitted),
                            status_text(caps->effective),
                            status_text(caps->bounding),
                            status_text(caps->ambient)};
    return rows.write(row);
  }));
  if (failed) return *failed;
  return {};
}

}  // namespace

constexpr std::string_view kCapabilitiesAliases[] = {"linux.capabilities.Capabilities"};
const Plugin kCapabilitiesPlugin{
    .name = "linux.capabilities",
    .short_name = "capabilities",
    .os = "linux",
    .aliases = kCapabilitiesAliases,
    .description = "Each task's capability sets, by name and as /proc/PID/status shows them",
    .needs = Requirement::kernel,
    .columns = kCapabilityRow.columns,
    .tree = false,
    .options = kOptions,
    .run = run_capabilities};

}  // namespace vmi
