// Capstone behind disassemble_x86_64, loaded on first use: linking it would make every command
// pay for relocating its tables at start-up (about 17 ms), though few cells are disassembly.
#include <capstone/capstone.h>
#include <dlfcn.h>

#include <mutex>

#include "vmi/disassembly.hpp"

namespace vmi {

namespace {

struct CapstoneApi {
  decltype(&cs_open) open = nullptr;
  decltype(&cs_disasm) disasm = nullptr;
  decltype(&cs_free) free = nullptr;
  decltype(&cs_close) close = nullptr;
  decltype(&cs_option) option = nullptr;
  std::string problem;  // why it could not be loaded
};

const CapstoneApi& capstone() {
  static CapstoneApi api;
  static std::once_flag once;
  std::call_once(once, [] {
    void* library = ::dlopen(VMI_CAPSTONE_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
      const char* error = ::dlerror();
      api.problem = std::string("cannot load Capstone (") + VMI_CAPSTONE_SONAME + "): " + (error ? error : "unknown");
      return;
    }
    api.open = reinterpret_cast<decltype(&cs_open)>(::dlsym(library, "cs_open"));
    api.disasm = reinterpret_cast<decltype(&cs_disasm)>(::dlsym(library, "cs_disasm"));
    api.free = reinterpret_cast<decltype(&cs_free)>(::dlsym(library, "cs_free"));
    api.close = reinterpret_cast<decltype(&cs_close)>(::dlsym(library, "cs_close"));
    api.option = reinterpret_cast<decltype(&cs_option)>(::dlsym(library, "cs_option"));
    if (!api.open || !api.disasm || !api.free || !api.close || !api.option)
      api.problem = std::string(VMI_CAPSTONE_SONAME) + " lacks cs_open, cs_disasm, cs_free, cs_close or cs_option";
  });
  return api;
}

bool is_register64(x86_reg reg) {
  switch (reg) {
    case X86_REG_RAX:
    case X86_REG_RBX:
    case X86_REG_RCX:
    case X86_REG_RDX:
    case X86_REG_RSI:
    case X86_REG_RDI:
    case X86_REG_RBP:
    case X86_REG_RSP:
    case X86_REG_R8:
    case X86_REG_R9:
    case X86_REG_R10:
    case X86_REG_R11:
    case X86_REG_R12:
    case X86_REG_R13:
    case X86_REG_R14:
    case X86_REG_R15:
      return true;
    default:
      return false;
  }
}

Instruction instruction_of(const cs_insn& insn) {
  Instruction instruction{insn.address, insn.size, insn.mnemonic, insn.op_str, {}, false, {}};
  if (insn.detail == nullptr) return instruction;
  const cs_x86& x86 = insn.detail->x86;
  for (std::uint8_t i = 0; i < x86.op_count; ++i) {
    const cs_x86_op& operand = x86.operands[i];
    if (i == 0 && operand.type == X86_OP_REG) instruction.first_register64 = is_register64(operand.reg);
    if (operand.type == X86_OP_IMM) instruction.immediate = operand.imm;
    if (operand.type == X86_OP_MEM && operand.mem.base == X86_REG_RIP && operand.mem.index == X86_REG_INVALID)
      instruction.rip_target = insn.address + insn.size + static_cast<std::uint64_t>(operand.mem.disp);
  }
  return instruction;
}

}  // namespace

Expected<std::vector<Instruction>> disassemble_x86_64(std::span<const std::uint8_t> code, std::uint64_t address,
                                                      std::size_t max_instructions) {
  const CapstoneApi& cs = capstone();
  if (!cs.problem.empty()) return make_error(Errc::unsupported, cs.problem);
  std::vector<Instruction> instructions;
  csh handle = 0;
  if (cs.open(CS_ARCH_X86, CS_MODE_64, &handle) != CS_ERR_OK)
    return make_error(Errc::unsupported, "Capstone cannot open an x86-64 disassembler");
  cs.option(handle, CS_OPT_DETAIL, CS_OPT_ON);
  cs_insn* decoded = nullptr;
  const std::size_t count = cs.disasm(handle, code.data(), code.size(), address, max_instructions, &decoded);
  instructions.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    instructions.push_back(instruction_of(decoded[i]));
  }
  if (decoded != nullptr) cs.free(decoded, count);
  cs.close(&handle);
  return instructions;
}

}  // namespace vmi
