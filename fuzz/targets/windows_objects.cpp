// Windows detection and every Windows plugin over a SYNTHETIC Windows 10 image laid out from the
// shipped 19041 profile by synthetic_windows.hpp (windows_fuzz_image.hpp's workload), with the input as patches to its
// kernel pool (every _EPROCESS, handle table, object, session, audit name and loader entry lives there): records of
// [u64 offset][u8 length][length bytes], each written at that offset (modulo the pool's size). Page tables, the low
// stub and ntoskrnl's headers stay valid, so every input gets past detection into the walkers' reads of process fields,
// list links, UNICODE_STRINGs and the pointers into user space.
#include "fuzz_support.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"
#include "windows_fuzz_image.hpp"

namespace {

std::shared_ptr<vmi::ProfileCatalog> profiles;  // the profile is loaded once, for every session
vmi_synthetic::SyntheticWindows* base = nullptr;

vmi::Session open(const vmi_synthetic::SyntheticWindows& windows) {
  vmi::SessionOptions options;
  options.shared_profiles = profiles;
  return vmi::Session::over_layer(windows.image(), options);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  profiles = vmi_fuzz::windows_catalog();
  base = vmi_fuzz::windows_image().image;
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
