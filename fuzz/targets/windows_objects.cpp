// Windows detection and every Windows plugin over a SYNTHETIC Windows 10 image laid out from the
// shipped 19041 profile by synthetic_windows.hpp (the builder tests/test_windows_kernel.cpp
// uses), with the input as patches to its kernel pool (every _EPROCESS, handle table, object,
// session, audit name and loader entry lives there): records of [u64 offset][u8 length][length bytes],
// each written at that offset (modulo the pool's size). Page tables, the low stub and ntoskrnl's
// headers stay valid, so every input gets past detection into the walkers' reads of process
// fields, list links, UNICODE_STRINGs and the pointers into user space.
#include <filesystem>

#include "fuzz_support.hpp"
#include "synthetic_windows.hpp"
#include "vmi/isf.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"

namespace {

const std::filesystem::path kProfile =
    std::filesystem::path(VMI_SOURCE_PROFILES_DIR) / "windows/BBED7C2955FBE4522AAA23F4B8677AD9-1.json.xz";
std::shared_ptr<vmi::ProfileCatalog> profiles;  // the profile is loaded once, for every session
vmi_synthetic::SyntheticWindows* base = nullptr;

vmi::Session open(const vmi_synthetic::SyntheticWindows& windows) {
  vmi::SessionOptions options;
  options.shared_profiles = profiles;
  return vmi::Session::over_layer(windows.image(), options);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char dir[] = "/tmp/vmi-fuzz-windows-objects-XXXXXX";
  if (::mkdtemp(dir) == nullptr) __builtin_trap();
  profiles =
      std::make_shared<vmi::ProfileCatalog>(std::vector<std::filesystem::path>{kProfile}, vmi::CacheOptions{true, dir});
  profiles->set_snapshot_recovery(false);
  auto profile = vmi::load_isf_file(kProfile);
  if (!profile) __builtin_trap();
  base = new vmi_synthetic::SyntheticWindows(std::make_shared<const vmi::Profile>(std::move(*profile)));
  base->set_build(19041, "19041.1.amd64fre.vb_release.191206-1406");
  base->add_loaded_module({0xfffff8023e400000, 0x96000, "ACPI.sys", "\\SystemRoot\\System32\\drivers\\ACPI.sys"});
  base->add_process({.pid = 4, .ppid = 0, .name = "System", .threads = 90});
  const vmi::Addr smss =
      base->add_process({.pid = 300,
                         .ppid = 4,
                         .name = "smss.exe",
                         .session = 0,
                         .audit = "\\Device\\HarddiskVolume2\\Windows\\System32\\smss.exe",
                         .command_line = "\\SystemRoot\\System32\\smss.exe",
                         .image_path = "\\SystemRoot\\System32\\smss.exe",
                         .dlls = {{0x7ffd3a1c0000, 0x1f5000, "ntdll.dll", "C:\\Windows\\SYSTEM32\\ntdll.dll", 1}}});
  base->add_process({.pid = 900, .ppid = 300, .name = "gone.exe", .exit_filetime = 2, .command_line = "gone"});
  base->add_process({.pid = 668, .ppid = 300, .name = "hidden.exe", .linked = false});
  // smss's handles: a file, a key, a thread and a named event, in a table of two levels.
  base->set_handles(smss,
                    {{0x4, base->add_file("\\Windows\\System32\\smss.exe"), 0x120089},
                     {0x8, base->add_key({"REGISTRY", "MACHINE", "SYSTEM"}), 0x20019},
                     {0x40c, base->add_thread(300, 304), 0x1fffff},
                     {0x4 * (256 * 512 + 1), base->add_event("SmssEvent"), 0x1f0003}},
                    2);
  vmi::Session session = open(*base);
  if (!session.kernel()) __builtin_trap();  // the LIEF module must sit beside the binary
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  vmi_synthetic::SyntheticWindows windows = *base;
  const auto [begin, end] = windows.pool();
  const std::size_t pool_size = end - begin;
  while (size >= 9) {
    const std::size_t offset = vmi_fuzz::le64(data) % pool_size;
    const std::size_t length = std::min<std::size_t>({data[8], size - 9, pool_size - offset});
    windows.write(vmi_synthetic::SyntheticWindows::kKernelPml4, begin + offset, data + 9, length);
    data += 9 + length;
    size -= 9 + length;
  }
  vmi::Session session = open(windows);
  if (!session.kernel()) return 0;
  vmi_fuzz::DiscardRows sink;
  for (const char* plugin : {"pslist", "pstree", "modules", "dlllist", "cmdline", "handles"})
    (void)vmi::run_plugin(session, plugin, {}, sink);
  vmi::PluginArgs one_job;  // the carve on the fuzzer's own thread
  one_job.values["jobs"] = "1";
  (void)vmi::run_plugin(session, "psscan", one_job, sink);
  return 0;
}
