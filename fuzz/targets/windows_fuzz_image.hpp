// The SYNTHETIC Windows 10 2004 image the Windows fuzz targets start from (laid out from the
// shipped 19041 profile by synthetic_windows.hpp): a driver, System, smss with its command line,
// DLLs and a two-level handle table (file, key, thread, named event), an exited process and an
// unlinked one; and a catalog holding just that profile, loaded once.
#pragma once

#include <cstdlib>
#include <filesystem>

#include "synthetic_windows_dumps.hpp"
#include "vmi/isf.hpp"
#include "vmi/profile_store.hpp"

namespace vmi_fuzz {

inline const std::filesystem::path kWindowsProfile =
    std::filesystem::path(VMI_SOURCE_PROFILES_DIR) / "windows/BBED7C2955FBE4522AAA23F4B8677AD9-1.json.xz";

// A catalog of the profile alone (builds.tsv beside it still says its build), caching in a
// fresh directory.
inline std::shared_ptr<vmi::ProfileCatalog> windows_catalog() {
  char dir[] = "/tmp/vmi-fuzz-windows-XXXXXX";
  if (::mkdtemp(dir) == nullptr) __builtin_trap();
  auto catalog = std::make_shared<vmi::ProfileCatalog>(std::vector<std::filesystem::path>{kWindowsProfile},
                                                       vmi::CacheOptions{true, dir});
  catalog->set_snapshot_recovery(false);
  return catalog;
}

struct WindowsImage {
  vmi_synthetic::SyntheticWindows* image = nullptr;
  std::vector<vmi::Addr> linked;  // the listed processes' _EPROCESS: System, smss, the exited one
  vmi::Addr smss_thread = 0;      // its Tcb.Process is smss
};

// `symbol_shift`: as another patch level of the build (SyntheticWindows's constructor).
inline WindowsImage windows_image(vmi::Addr symbol_shift = 0) {
  auto profile = vmi::load_isf_file(kWindowsProfile);
  if (!profile) __builtin_trap();
  auto* image = new vmi_synthetic::SyntheticWindows(std::make_shared<const vmi::Profile>(std::move(*profile)), 0x1ed,
                                                    true, symbol_shift);
  image->set_build(19041, "19041.1.amd64fre.vb_release.191206-1406");
  image->add_loaded_module({0xfffff8023e400000, 0x96000, "ACPI.sys", "\\SystemRoot\\System32\\drivers\\ACPI.sys"});
  const vmi::Addr system = image->add_process({.pid = 4, .ppid = 0, .name = "System", .threads = 90});
  const vmi::Addr smss =
      image->add_process({.pid = 300,
                          .ppid = 4,
                          .name = "smss.exe",
                          .session = 0,
                          .audit = "\\Device\\HarddiskVolume2\\Windows\\System32\\smss.exe",
                          .command_line = "\\SystemRoot\\System32\\smss.exe",
                          .image_path = "\\SystemRoot\\System32\\smss.exe",
                          .dlls = {{0x7ffd3a1c0000, 0x1f5000, "ntdll.dll", "C:\\Windows\\SYSTEM32\\ntdll.dll", 1}}});
  const vmi::Addr gone =
      image->add_process({.pid = 900, .ppid = 300, .name = "gone.exe", .exit_filetime = 2, .command_line = "gone"});
  image->add_process({.pid = 668, .ppid = 300, .name = "hidden.exe", .linked = false});
  const vmi::Addr thread = image->add_thread(300, 304);
  image->put<std::uint64_t>(vmi_synthetic::SyntheticWindows::kKernelPml4, thread + image->offset("_KTHREAD", "Process"),
                            smss);
  // smss's handles: a file, a key, a thread and a named event, in a table of two levels.
  image->set_handles(smss,
                     {{0x4, image->add_file("\\Windows\\System32\\smss.exe"), 0x120089},
                      {0x8, image->add_key({"REGISTRY", "MACHINE", "SYSTEM"}), 0x20019},
                      {0x40c, thread, 0x1fffff},
                      {0x4 * (256 * 512 + 1), image->add_event("SmssEvent"), 0x1f0003}},
                     2);
  return {image, {system, smss, gone}, thread};
}

// A triage dump's contents for the image: smss's thread crashed; the list head, System and the
// exited process are saved as data blocks, smss as the dump's own copy.
inline vmi_synthetic::TriageSpec triage_spec(const WindowsImage& windows) {
  const auto& w = *windows.image;
  vmi_synthetic::TriageSpec spec{windows.smss_thread, {{w.symbol("PsActiveProcessHead"), 16}}};
  for (const vmi::Addr process : {windows.linked[0], windows.linked[2]})
    spec.blocks.emplace_back(process, w.size_of("_EPROCESS"));
  return spec;
}

}  // namespace vmi_fuzz
