// A process's memory: its mm_struct's layout and the user address space its page tables make.
#include "vmi/linux.hpp"
#include "vmi/object.hpp"

namespace vmi::linux_objects {

namespace {

struct MmLayout {
  std::uint32_t task_mm = 0, pgd = 0;
  std::uint32_t start_code = 0, end_code = 0, start_stack = 0, arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;

  static Expected<MmLayout> bind(const Profile& p) {
    MmLayout l;
    l.task_mm = VMI_TRY(bind_offset(p, "task_struct", "mm"));
    l.pgd = VMI_TRY(bind_offset(p, "mm_struct", "pgd"));
    l.start_code = VMI_TRY(bind_offset(p, "mm_struct", "start_code"));
    l.end_code = VMI_TRY(bind_offset(p, "mm_struct", "end_code"));
    l.start_stack = VMI_TRY(bind_offset(p, "mm_struct", "start_stack"));
    l.arg_start = VMI_TRY(bind_offset(p, "mm_struct", "arg_start"));
    l.arg_end = VMI_TRY(bind_offset(p, "mm_struct", "arg_end"));
    l.env_start = VMI_TRY(bind_offset(p, "mm_struct", "env_start"));
    l.env_end = VMI_TRY(bind_offset(p, "mm_struct", "env_end"));
    return l;
  }
};

}  // namespace

Expected<Maybe<MemoryLayout>> memory_layout(const Kernel& kernel, const Task& task, Diagnostics& diagnostics) {
  const auto& bound = kernel.layout<MmLayout>();
  if (!bound) return bound.error();
  const MmLayout& l = *bound;
  const Layer& layer = kernel.kernel_layer();
  const std::string owner = "task " + hex(task.address) + " (pid " + std::to_string(task.pid) + ")";
  auto field = [&](std::string_view name, Addr at) -> std::optional<std::uint64_t> {
    auto value = read_value<std::uint64_t>(layer, at);
    if (value) return *value;
    diagnostics.warn(owner + ": field '" + std::string(name) + "' at " + hex(at) + " is unreadable");
    return std::nullopt;
  };
  const auto mm = field("mm", task.address + l.task_mm);
  if (!mm) return Maybe<MemoryLayout>{Absence::unreadable};
  if (*mm == 0) return Maybe<MemoryLayout>{Absence::not_applicable};  // a kernel thread
  MemoryLayout layout;
  layout.mm = *mm;
  const auto pgd = field("mm.pgd", *mm + l.pgd);
  if (!pgd) return Maybe<MemoryLayout>{Absence::unreadable};
  // pgd is a kernel virtual address in the direct map; the walker wants the table's physical one.
  auto root = kernel.kernel_layer().translate(*pgd);
  if (!root || (root->physical & 0xfff) != 0) {
    diagnostics.warn(owner + ": mm.pgd " + hex(*pgd) + " at " + hex(*mm + l.pgd) +
                     (root ? " is not page-aligned" : " does not map to physical memory"));
    return Maybe<MemoryLayout>{Absence::unreadable};
  }
  layout.page_table_root = root->physical;
  std::pair<Addr*, std::pair<std::string_view, std::uint32_t>> fields[] = {
      {&layout.start_code, {"mm.start_code", l.start_code}},
      {&layout.end_code, {"mm.end_code", l.end_code}},
      {&layout.start_stack, {"mm.start_stack", l.start_stack}},
      {&layout.arg_start, {"mm.arg_start", l.arg_start}},
      {&layout.arg_end, {"mm.arg_end", l.arg_end}},
      {&layout.env_start, {"mm.env_start", l.env_start}},
      {&layout.env_end, {"mm.env_end", l.env_end}}};
  for (auto& [target, name_offset] : fields) {
    const auto value = field(name_offset.first, *mm + name_offset.second);
    if (!value) return Maybe<MemoryLayout>{Absence::unreadable};
    *target = *value;
  }
  return Maybe<MemoryLayout>{layout};
}

std::shared_ptr<const PagedLayer> address_space(const Kernel& kernel, const MemoryLayout& layout) {
  return kernel.address_space(layout.page_table_root);
}

}  // namespace vmi::linux_objects
