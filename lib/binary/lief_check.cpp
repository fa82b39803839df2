// The LIEF side of lief_readback.cpp, built as its own module (libvmi-forensics-lief.so) and
// loaded only when a plugin reads a file back: LIEF costs every process that links it ~10 ms of
// load-time relocation and ~6 MiB, which pslist must not pay. LIEF's exceptions stay here.
#include <LIEF/ELF.hpp>
#include <LIEF/PE.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
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

// The PDB 7.0 CodeView record (RSDS) LIEF reads from the debug directory of the PE file in
// `data`: 1 when found, with its GUID bytes (as stored), age and PDB path (NUL-terminated,
// truncated to `path_size`); 0 when LIEF rejects the file or it names no PDB 7.0 record.
extern "C" __attribute__((visibility("default"))) int vmi_lief_pe_codeview(const std::uint8_t* data, std::size_t size,
                                                                           std::uint8_t* guid, std::uint32_t* age,
                                                                           char* path, std::size_t path_size) {
  try {
    const std::vector<std::uint8_t> bytes(data, data + size);
    const auto binary = LIEF::PE::Parser::parse(bytes, "memory");
    if (binary == nullptr || !binary->has_debug() || !binary->debug().has_code_view()) return 0;
    const auto* pdb = dynamic_cast<const LIEF::PE::CodeViewPDB*>(&binary->debug().code_view());
    if (pdb == nullptr || pdb->cv_signature() != LIEF::PE::CODE_VIEW_SIGNATURES::CVS_PDB_70) return 0;
    const auto signature = pdb->signature();
    std::copy(signature.begin(), signature.end(), guid);
    *age = pdb->age();
    const std::string& filename = pdb->filename();
    const std::size_t n = std::min(filename.size(), path_size - 1);
    std::memcpy(path, filename.data(), n);
    path[n] = '\0';
    return 1;
  } catch (const std::exception&) {
    return 0;
  } catch (...) {
    return 0;
  }
}
