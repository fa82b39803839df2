// A process's memory: its mm_struct's layout and the user address space its page tables make.
#include "vmi/linux.hpp"
#include "vmi/object.hpp"

namespace vmi::linux_objects {

namespace {

struct MmLayout {
  std::uint32_t task_mm = 0, pgd = 0;
  std::uint32_t start_code = 0, end_code = 0, start_stack = 0, arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
  std::uint32_t start_brk = 0, brk = 0;

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
    l.start_brk = VMI_TRY(bind_offset(p, "mm_struct", "start_brk"));
    l.brk = VMI_TRY(bind_offset(p, "mm_struct", "brk"));
    return l;
  }
};

// Reads a field of the task or its mm as a 64-bit word, warning (naming the task, the field and its
// address) when it cannot.
class MmFieldReader {
 public:
  MmFieldReader(const Kernel& kernel, const Task& task, Diagnostics& diagnostics)
      : layer_(kernel.kernel_layer()), task_(task), diagnostics_(diagnostics) {}

  std::optional<std::uint64_t> operator()(std::string_view name, Addr at) const {
    auto value = read_value<std::uint64_t>(layer_, at);
    if (value) return *value;
    diagnostics_.warn(owner() + ": field '" + std::string(name) + "' at " + hex(at) + " is unreadable");
    return std::nullopt;
  }
  std::string owner() const { return "task " + hex(task_.address) + " (pid " + std::to_string(task_.pid) + ")"; }

 private:
  const Layer& layer_;
  const Task& task_;
  Diagnostics& diagnostics_;
};

// The task's mm and the physical address of its top page table, or why not.
Maybe<std::pair<Addr, Addr>> mm_and_root(const Kernel& kernel, const MmLayout& l, const MmFieldReader& field,
                                         const Task& task, Diagnostics& diagnostics) {
  const auto mm = field("mm", task.address + l.task_mm);
  if (!mm) return Absence::unreadable;
  if (*mm == 0) return Absence::not_applicable;  // a kernel thread
  const auto pgd = field("mm.pgd", *mm + l.pgd);
  if (!pgd) return Absence::unreadable;
  // pgd is a kernel virtual address in the direct map; the walker wants the table's physical one.
  auto root = kernel.kernel_layer().translate(*pgd);
  if (!root || (root->physical & 0xfff) != 0) {
    diagnostics.warn(field.owner() + ": mm.pgd " + hex(*pgd) + " at " + hex(*mm + l.pgd) +
                     (root ? " is not page-aligned" : " does not map to physical memory"));
    return Absence::unreadable;
  }
  return std::pair{*mm, root->physical};
}

}  // namespace

Expected<Maybe<Addr>> page_table_root_of(const Kernel& kernel, const Task& task, Diagnostics& diagnostics) {
  const auto& bound = kernel.layout<MmLayout>();
  if (!bound) return bound.error();
  const auto found = mm_and_root(kernel, *bound, MmFieldReader(kernel, task, diagnostics), task, diagnostics);
  if (const auto* absent = std::get_if<Absence>(&found)) return Maybe<Addr>(*absent);
  return Maybe<Addr>(std::get<std::pair<Addr, Addr>>(found).second);
}

Expected<Maybe<MemoryLayout>> memory_layout(const Kernel& kernel, const Task& task, Diagnostics& diagnostics) {
  const auto& bound = kernel.layout<MmLayout>();
  if (!bound) return bound.error();
  const MmLayout& l = *bound;
  const MmFieldReader field(kernel, task, diagnostics);
  const auto found = mm_and_root(kernel, l, field, task, diagnostics);
  if (const auto* absent = std::get_if<Absence>(&found)) return Maybe<MemoryLayout>{*absent};
  const auto [mm, root] = std::get<std::pair<Addr, Addr>>(found);
  MemoryLayout layout;
  layout.mm = mm;
  layout.page_table_root = root;
  std::pair<Addr*, std::pair<std::string_view, std::uint32_t>> fields[] = {
      {&layout.start_code, {"mm.start_code", l.start_code}},
      {&layout.end_code, {"mm.end_code", l.end_code}},
      {&layout.start_stack, {"mm.start_stack", l.start_stack}},
      {&layout.arg_start, {"mm.arg_start", l.arg_start}},
      {&layout.arg_end, {"mm.arg_end", l.arg_end}},
      {&layout.env_start, {"mm.env_start", l.env_start}},
      {&layout.env_end, {"mm.env_end", l.env_end}},
      {&layout.start_brk, {"mm.start_brk", l.start_brk}},
      {&layout.brk, {"mm.brk", l.brk}}};
  for (auto& [target, name_offset] : fields) {
    const auto value = field(name_offset.first, mm + name_offset.second);
    if (!value) return Maybe<MemoryLayout>{Absence::unreadable};
    *target = *value;
  }
  return Maybe<MemoryLayout>{layout};
}

std::shared_ptr<const PagedLayer> address_space(const Kernel& kernel, const MemoryLayout& layout) {
  return kernel.address_space(layout.page_table_root);
}

namespace {

// [start, end) of the task's memory, or why not (`what`: "arguments", "environment").
Expected<Maybe<std::string>> user_range(const Kernel& kernel, const Task& task, Diagnostics& diagnostics,
                                        std::string_view what, Addr MemoryLayout::*start, Addr MemoryLayout::*end) {
  const auto layout = VMI_TRY(memory_layout(kernel, task, diagnostics));
  const auto* mm = std::get_if<MemoryLayout>(&layout);
  if (mm == nullptr) return Maybe<std::string>(std::get<Absence>(layout));
  const std::string owner =
      "task " + hex(task.address) + " (pid " + std::to_string(task.pid) + "): " + std::string(what);
  if (mm->*end < mm->*start) {
    diagnostics.warn(owner + " end " + hex(mm->*end) + " before start " + hex(mm->*start));
    return Maybe<std::string>(Absence::unreadable);
  }
  std::size_t size = mm->*end - mm->*start;
  if (size > kMaxUserStrings) {
    diagnostics.warn(owner + " at " + hex(mm->*start) + " span " + std::to_string(size) + " bytes; only the first " +
                     std::to_string(kMaxUserStrings) + " are read");
    size = kMaxUserStrings;
  }
  std::string bytes(size, '\0');
  const auto space = address_space(kernel, *mm);
  if (auto read = read_exact(*space, mm->*start, std::as_writable_bytes(std::span(bytes))); !read) {
    diagnostics.warn(owner + " at " + hex(mm->*start) + "-" + hex(mm->*start + size) +
                     " are not all in the snapshot: " + read.error().message);
    return Maybe<std::string>(Absence::unreadable);
  }
  return Maybe<std::string>(std::move(bytes));
}

}  // namespace

Expected<Maybe<std::string>> process_arguments(const Kernel& kernel, const Task& task, Diagnostics& diagnostics) {
  return user_range(kernel, task, diagnostics, "arguments", &MemoryLayout::arg_start, &MemoryLayout::arg_end);
}

Expected<Maybe<std::string>> process_environment(const Kernel& kernel, const Task& task, Diagnostics& diagnostics) {
  return user_range(kernel, task, diagnostics, "environment", &MemoryLayout::env_start, &MemoryLayout::env_end);
}

}  // namespace vmi::linux_objects
