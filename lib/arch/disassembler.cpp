// Capstone behind disassemble_x86_64: one handle per call, freed on every path.
#include <capstone/capstone.h>

#include <memory>

#include "vmi/disassembly.hpp"

namespace vmi {

std::vector<Instruction> disassemble_x86_64(std::span<const std::uint8_t> code, std::uint64_t address,
                                            std::size_t max_instructions) {
  std::vector<Instruction> instructions;
  csh handle = 0;
  if (cs_open(CS_ARCH_X86, CS_MODE_64, &handle) != CS_ERR_OK) return instructions;
  cs_insn* decoded = nullptr;
  const std::size_t count = cs_disasm(handle, code.data(), code.size(), address, max_instructions, &decoded);
  instructions.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    instructions.push_back({decoded[i].address, decoded[i].size, decoded[i].mnemonic, decoded[i].op_str});
  }
  if (decoded != nullptr) cs_free(decoded, count);
  cs_close(&handle);
  return instructions;
}

}  // namespace vmi
