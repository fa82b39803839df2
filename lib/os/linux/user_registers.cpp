// The user registers at the top of a task's kernel stack: what the entry code saved when the task
// last entered the kernel from user mode (a system call, an interrupt, an exception).
#include <algorithm>
#include <cstring>

#include "os/field_reader.hpp"
#include "os/linux/kernel_stack.hpp"
#include "vmi/linux.hpp"
#include "vmi/object.hpp"

namespace vmi::linux_objects {

namespace {

// __USER_CS and __USER32_CS (arch/x86/include/asm/segment.h): a user entry's saved CS is one of
// them; anything else means the frame is not one.
constexpr std::uint16_t kUserCodeSelectors[] = {0x33, 0x23};

struct PtRegsLayout {
  std::uint32_t task_stack = 0;
  std::uint32_t size = 168;  // sizeof(struct pt_regs)
  // Offsets as PUSH_AND_CLEAR_REGS and the hardware frame lay them out (arch/x86/entry/calling.h).
  std::uint32_t r10 = 56, r9 = 64, r8 = 72, ax = 80, dx = 96, si = 104, di = 112, orig_ax = 120, ip = 128, cs = 136,
                flags = 144, sp = 152;

  static Expected<PtRegsLayout> bind(const Profile& p) {
    PtRegsLayout l;
    l.task_stack = VMI_TRY(bind_offset(p, "task_struct", "stack"));
    const Aggregate* regs = p.find_aggregate("pt_regs");
    if (regs == nullptr) return l;  // a profile without it (recovered from the snapshot): the entry code's
    l.size = regs->size;
    std::pair<std::uint32_t*, std::string_view> fields[] = {
        {&l.r10, "r10"}, {&l.r9, "r9"}, {&l.r8, "r8"}, {&l.ax, "ax"},       {&l.dx, "dx"},           {&l.si, "si"},
        {&l.di, "di"},   {&l.ip, "ip"}, {&l.cs, "cs"}, {&l.flags, "flags"}, {&l.orig_ax, "orig_ax"}, {&l.sp, "sp"},
    };
    for (auto& [offset, name] : fields) *offset = VMI_TRY(bind_offset(p, "pt_regs", name));
    if (l.size > kThreadSize / 2 || l.sp + 8 > l.size)
      return make_error(Errc::profile_mismatch, "the profile's struct pt_regs (" + std::to_string(l.size) +
                                                    " bytes) does not fit a kernel stack's top");
    return l;
  }
};

}  // namespace

Expected<Maybe<UserRegisters>> user_registers(const Kernel& kernel, const Task& task, Diagnostics& diagnostics) {
  const auto& bound = kernel.layout<PtRegsLayout>();
  if (!bound) return bound.error();
  const PtRegsLayout& l = *bound;
  if (task.kernel_thread.value_or(false)) return Maybe<UserRegisters>(Absence::not_applicable);
  const FieldReader fields(kernel.kernel_layer(), diagnostics,
                           [&] { return "task " + hex(task.address) + " (pid " + std::to_string(task.pid) + ")"; });
  const auto stack = fields.pointer("stack", task.address + l.task_stack);
  if (!stack) return Maybe<UserRegisters>(Absence::unreadable);
  if (*stack % kThreadSize != 0) {
    fields.warn("stack", task.address + l.task_stack, "holds " + hex(*stack) + ", not a kernel stack's base");
    return Maybe<UserRegisters>(Absence::unreadable);
  }
  UserRegisters saved;
  saved.address = *stack + kThreadSize - l.size;
  std::vector<std::byte> bytes(l.size);
  if (!read_exact(kernel.kernel_layer(), saved.address, bytes)) {
    fields.warn("stack's pt_regs", saved.address, "is not in the snapshot");
    return Maybe<UserRegisters>(Absence::unreadable);
  }
  const auto word = [&](std::uint32_t offset) {
    std::uint64_t value = 0;
    std::memcpy(&value, bytes.data() + offset, sizeof value);
    return value;
  };
  saved.orig_ax = word(l.orig_ax);
  saved.ax = word(l.ax);
  saved.di = word(l.di);
  saved.si = word(l.si);
  saved.dx = word(l.dx);
  saved.r10 = word(l.r10);
  saved.r8 = word(l.r8);
  saved.r9 = word(l.r9);
  saved.ip = word(l.ip);
  saved.sp = word(l.sp);
  saved.flags = word(l.flags);
  saved.cs = static_cast<std::uint16_t>(word(l.cs));
  if (std::ranges::find(kUserCodeSelectors, saved.cs) == std::end(kUserCodeSelectors)) {
    fields.warn("stack's pt_regs.cs", saved.address + l.cs,
                "holds " + hex(saved.cs) + ", no user code selector: the frame is not a user entry's");
    return Maybe<UserRegisters>(Absence::unreadable);
  }
  return Maybe<UserRegisters>(saved);
}

}  // namespace vmi::linux_objects
