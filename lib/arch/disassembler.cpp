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
    if (!api.open || !api.disasm || !api.free || !api.close)
      api.problem = std::string(VMI_CAPSTONE_SONAME) + " lacks cs_open, cs_disasm, cs_free or cs_close";
  });
  return api;
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
  cs_insn* decoded = nullptr;
  const std::size_t count = cs.disasm(handle, code.data(), code.size(), address, max_instructions, &decoded);
  instructions.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    instructions.push_back({decoded[i].address, decoded[i].size, decoded[i].mnemonic, decoded[i].op_str});
  }
  if (decoded != nullptr) cs.free(decoded, count);
  cs.close(&handle);
  return instructions;
}

}  // namespace vmi
