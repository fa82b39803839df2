// The LIEF side of lief_readback.cpp, built as its own module (libvmi-forensics-lief.so) and
// loaded only when a plugin reads a file back: LIEF costs every process that links it ~10 ms of
// load-time relocation and ~6 MiB, which pslist must not pay. LIEF's exceptions stay here.
#include <LIEF/ELF.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <vector>

// 1 when LIEF parses `size` bytes at `data` as an ELF file, 0 when it rejects them.
extern "C" __attribute__((visibility("default"))) int vmi_lief_parses_elf(const std::uint8_t* data, std::size_t size) {
  try {
    const std::vector<std::uint8_t> bytes(data, data + size);
    return LIEF::ELF::Parser::parse(bytes, "memory") != nullptr ? 1 : 0;
  } catch (const std::exception&) {
    return 0;
  } catch (...) {
    return 0;
  }
}
