// A task's capability sets from its objective credentials (task->real_cred), as fs/proc/array.c
// task_cap() prints them.
#include "os/field_reader.hpp"
#include "vmi/linux.hpp"
#include "vmi/object.hpp"

namespace vmi::linux_objects {

namespace {

struct CredentialLayout {
  std::uint32_t real_cred = 0;
  // kernel_cap_t is u32 cap[2] before 6.3 and u64 val since: either way 8 little-endian bytes.
  std::uint32_t inheritable = 0, permitted = 0, effective = 0, bounding = 0;
  std::optional<std::uint32_t> ambient;

  static Expected<CredentialLayout> bind(const Profile& p) {
    CredentialLayout l;
    l.real_cred = VMI_TRY(bind_offset(p, "task_struct", "real_cred"));
    l.inheritable = VMI_TRY(bind_offset(p, "cred", "cap_inheritable"));
    l.permitted = VMI_TRY(bind_offset(p, "cred", "cap_permitted"));
    l.effective = VMI_TRY(bind_offset(p, "cred", "cap_effective"));
    l.bounding = VMI_TRY(bind_offset(p, "cred", "cap_bset"));
    if (auto ambient = bind_offset(p, "cred", "cap_ambient")) l.ambient = *ambient;
    return l;
  }
};

struct CredentialPointerLayout {
  std::uint32_t real_cred = 0;

  static Expected<CredentialPointerLayout> bind(const Profile& p) {
    return CredentialPointerLayout{VMI_TRY(bind_offset(p, "task_struct", "real_cred"))};
  }
};

}  // namespace

Expected<std::optional<Addr>> credentials_of(const Kernel& kernel, const Task& task, Diagnostics& diagnostics) {
  const auto& bound = kernel.layout<CredentialPointerLayout>();
  if (!bound) return bound.error();
  const FieldReader fields(kernel.kernel_layer(), diagnostics,
                           [&task] { return "task " + hex(task.address) + " (pid " + std::to_string(task.pid) + ")"; });
  return fields.pointer("real_cred", task.address + bound->real_cred);
}

Expected<Capabilities> capabilities_of(const Kernel& kernel, const Task& task, Diagnostics& diagnostics) {
  const auto& bound = kernel.layout<CredentialLayout>();
  if (!bound) return bound.error();
  const CredentialLayout& l = *bound;
  const FieldReader fields(kernel.kernel_layer(), diagnostics,
                           [&task] { return "task " + hex(task.address) + " (pid " + std::to_string(task.pid) + ")"; });
  Capabilities caps{Absence::unreadable, Absence::unreadable, Absence::unreadable, Absence::unreadable,
                    l.ambient ? Maybe<std::uint64_t>(Absence::unreadable) : Absence::not_applicable};
  const auto cred = fields.pointer("real_cred", task.address + l.real_cred);
  if (!cred) return caps;
  auto set = [&](Maybe<std::uint64_t>& target, std::string_view name, std::uint32_t offset) {
    if (auto value = fields.read<std::uint64_t>(name, *cred + offset)) target = *value;
  };
  set(caps.inheritable, "cred.cap_inheritable", l.inheritable);
  set(caps.permitted, "cred.cap_permitted", l.permitted);
  set(caps.effective, "cred.cap_effective", l.effective);
  set(caps.bounding, "cred.cap_bset", l.bounding);
  if (l.ambient) set(caps.ambient, "cred.cap_ambient", *l.ambient);
  return caps;
}

}  // namespace vmi::linux_objects
