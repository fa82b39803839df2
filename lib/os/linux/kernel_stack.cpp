// A return-address scan of a kernel stack: what a backtrace can be without unwind tables.
#include "os/linux/kernel_stack.hpp"

#include <array>
#include <cstring>

#include "os/linux/list_poison.hpp"
#include "vmi/disassembly.hpp"
#include "vmi/linux.hpp"

namespace vmi::linux_objects {

namespace {

// The lengths an x86-64 call instruction has: e8 rel32 (5), ff /2 through a register (2, 3 with a
// REX prefix), through memory with a displacement (3 to 7: ff 15 rip+disp32 is 6, with an SIB
// byte and disp32 7).
constexpr std::size_t kCallLengths[] = {5, 6, 2, 3, 7, 4};
constexpr std::size_t kLongestCall = 7;
// An interrupt's stack leads to the interrupted one; at most this many stacks are walked.
constexpr std::size_t kMaxStackSwitches = 4;

// Whether the instruction that ends right before `address` is a call.
Expected<bool> follows_call(const Layer& layer, Addr address) {
  std::array<std::uint8_t, kLongestCall> before{};
  if (!read_exact(layer, address - kLongestCall, std::as_writable_bytes(std::span(before)))) return false;
  for (const std::size_t length : kCallLengths) {
    const auto code = std::span<const std::uint8_t>(before).last(length);
    const auto decoded = VMI_TRY(disassemble_x86_64(code, address - length, 1));
    if (decoded.size() == 1 && decoded.front().size == length && decoded.front().mnemonic == "call") return true;
  }
  return false;
}

}  // namespace

Expected<std::vector<StackFrame>> scan_kernel_stack(const Kernel& kernel, const KnownCode& code, Addr sp,
                                                    Diagnostics& diagnostics) {
  const Layer& layer = kernel.kernel_layer();
  std::vector<StackFrame> frames;
  std::array<std::uint64_t, 512> page{};  // one 4 KiB page of stack words
  for (std::size_t stacks = 0; stacks < kMaxStackSwitches && frames.size() < kMaxStackFrames; ++stacks) {
    const Addr top = (sp | (kThreadSize - 1)) + 1;  // the end of the aligned block RSP lies in
    std::optional<std::uint64_t> last_word;         // the highest word read on this stack
    bool guard = false;                             // the stack ended in an unmapped page
    for (Addr base = sp & ~Addr{7}; base < top && frames.size() < kMaxStackFrames;) {
      const Addr page_end = std::min<Addr>((base | 0xfff) + 1, top);
      const auto words = static_cast<std::size_t>((page_end - base) / 8);
      if (!read_exact(layer, base, std::as_writable_bytes(std::span(page).first(words)))) {
        // Above RSP's own page, an unmapped page is where the stack ends: an IRQ stack is
        // vmapped with a guard page after it, at no THREAD_SIZE alignment.
        if (base == (sp & ~Addr{7}))
          diagnostics.warn("kernel stack at RSP " + hex(sp) + " is not in the snapshot; the backtrace ends there");
        guard = base != (sp & ~Addr{7});
        break;
      }
      for (std::size_t i = 0; i < words && frames.size() < kMaxStackFrames; ++i) {
        CodeOwner owner = code.owner_of(page[i]);
        if (owner.module.empty() || !VMI_TRY(follows_call(layer, page[i]))) continue;
        frames.push_back({base + i * 8, page[i], std::move(owner)});
      }
      last_word = page[words - 1];
      base = page_end;
    }
    // The IRQ stack's topmost word holds the stack pointer of what the interrupt interrupted
    // (call_on_stack in arch/x86/include/asm/irq_stack.h): the walk goes on there, as the
    // kernel's own unwinder does. A task stack fills its whole block and ends in its pt_regs.
    const KernelHalf kernel_half(kernel.kernel_layer().mode().virtual_bits);
    if (!guard || !last_word || !kernel_half.contains(*last_word) || (*last_word | (kThreadSize - 1)) + 1 == top) break;
    sp = *last_word;
  }
  return frames;
}

}  // namespace vmi::linux_objects
