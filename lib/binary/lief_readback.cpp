// Loads libvmi-forensics-lief.so from the directory this library was loaded from, once.
#include "binary/lief_readback.hpp"

#include <dlfcn.h>

#include <filesystem>
#include <mutex>
#include <string>

namespace vmi {

namespace {

using ParsesElf = int (*)(const std::uint8_t*, std::size_t);
using PeCodeview = int (*)(const std::uint8_t*, std::size_t, std::uint8_t*, std::uint32_t*, char*, std::size_t);

struct LiefModule {
  ParsesElf parses_elf = nullptr;
  PeCodeview pe_codeview = nullptr;
  std::string error;
};

const LiefModule& lief_module() {
  static const LiefModule module = [] {
    LiefModule m;
    Dl_info self{};
    if (::dladdr(reinterpret_cast<void*>(&lief_parses_elf), &self) == 0 || self.dli_fname == nullptr) {
      m.error = "cannot tell where the vmi-forensics library was loaded from";
      return m;
    }
    const auto path = std::filesystem::path(self.dli_fname).parent_path() / "libvmi-forensics-lief.so";
    void* library = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
      const char* why = ::dlerror();
      m.error = "cannot load " + path.string() + ": " + (why != nullptr ? why : "unknown error");
      return m;
    }
    m.parses_elf = reinterpret_cast<ParsesElf>(::dlsym(library, "vmi_lief_parses_elf"));
    m.pe_codeview = reinterpret_cast<PeCodeview>(::dlsym(library, "vmi_lief_pe_codeview"));
    if (m.parses_elf == nullptr || m.pe_codeview == nullptr) {
      m.parses_elf = nullptr;
      m.pe_codeview = nullptr;
      m.error = path.string() + " lacks vmi_lief_parses_elf or vmi_lief_pe_codeview";
    }
    return m;
  }();
  return module;
}

}  // namespace

Expected<bool> lief_parses_elf(std::span<const std::uint8_t> bytes) {
  const LiefModule& module = lief_module();
  if (module.parses_elf == nullptr) return make_error(Errc::unsupported, module.error);
  return module.parses_elf(bytes.data(), bytes.size()) == 1;
}

Expected<std::optional<PdbRecord>> lief_pe_codeview(std::span<const std::uint8_t> bytes) {
  const LiefModule& module = lief_module();
  if (module.pe_codeview == nullptr) return make_error(Errc::unsupported, module.error);
  PdbRecord record;
  std::array<char, 260> path{};  // MAX_PATH: the linker writes no longer PDB path
  if (module.pe_codeview(bytes.data(), bytes.size(), record.guid.data(), &record.age, path.data(), path.size()) != 1)
    return std::optional<PdbRecord>{};
  record.path = path.data();
  return std::optional<PdbRecord>(std::move(record));
}

}  // namespace vmi
