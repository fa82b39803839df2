// Loads libvmi-forensics-lief.so from the directory this library was loaded from, once.
#include "binary/lief_readback.hpp"

#include <dlfcn.h>

#include <filesystem>
#include <mutex>
#include <string>

namespace vmi {

namespace {

using ParsesElf = int (*)(const std::uint8_t*, std::size_t);

struct LiefModule {
  ParsesElf parses_elf = nullptr;
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
    if (m.parses_elf == nullptr) m.error = path.string() + " has no vmi_lief_parses_elf";
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

}  // namespace vmi
