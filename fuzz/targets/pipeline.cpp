// The whole pipeline on the input as physical memory: kernel detection with the tiny profile
// (written once to a temporary file), then pslist, pslist --threads, pstree, modules and handles.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "fuzz_support.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"

namespace {
std::filesystem::path profile_path;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char dir[] = "/tmp/vmi-fuzz-profile-XXXXXX";
  if (::mkdtemp(dir) == nullptr) __builtin_trap();
  profile_path = std::filesystem::path(dir) / "tiny-linux.json";
  std::ofstream(profile_path) << vmi_fuzz::kTinyLinuxIsf;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  vmi::SessionOptions options;
  options.profile_paths = {profile_path};
  options.cache.enabled = false;
  auto layer = std::make_shared<vmi::MemoryLayer>("fuzz", vmi_fuzz::bytes_of(data, size));
  vmi::Session session = vmi::Session::over_layer(layer, options);
  auto kernel = session.kernel();
  if (!kernel) return 0;
  (void)(*kernel)->facts();
  (void)vmi::run_plugin(session, "pslist");
  vmi::PluginArgs threads;
  threads.values["threads"] = "";
  (void)vmi::run_plugin(session, "pslist", threads);
  (void)vmi::run_plugin(session, "pstree");
  (void)vmi::run_plugin(session, "modules");
  (void)vmi::run_plugin(session, "handles");
  return 0;
}
