// A Windows kernel of a patch level no profile matches by GUID: detection by build
// (KUSER_SHARED_DATA, builds.tsv), the search for nt!KdCopyDataBlock and its disassembly
// (Capstone), the KDBG block's decoding, the derivation of ObTypeIndexTable and ObHeaderCookie
// from the object type "Type", and every Windows plugin on the globals so found. The image is
// windows_fuzz_image.hpp's, laid out as another patch level (globals 0x40 bytes from the
// profile's, another GUID), and the input patches it: records of [u8 region][u32 offset]
// [u8 length][length bytes], the region 0 for ntoskrnl's image (KdCopyDataBlock's code, the
// encoded block, KiWaitNever and KiWaitAlways, KdpDataBlockEncoded, ObTypeIndexTable live there)
// and anything else for the kernel pool (the "Type" object and its header), each written at that
// offset modulo the region's size.
#include "fuzz_support.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"
#include "windows_fuzz_image.hpp"

namespace {

constexpr vmi::Addr kImageSize = 16u << 20;  // SizeOfImage the synthetic ntoskrnl declares
std::shared_ptr<vmi::ProfileCatalog> profiles;
vmi_synthetic::SyntheticWindows* base = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  profiles = vmi_fuzz::windows_catalog();
  base = vmi_fuzz::windows_image(0x40).image;
  vmi::SessionOptions options;
  options.shared_profiles = profiles;
  vmi::Session session = vmi::Session::over_layer(base->image(), options);
  if (!session.kernel()) __builtin_trap();  // the fallback must work on the unpatched image
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  vmi_synthetic::SyntheticWindows windows = *base;
  const auto [pool, pool_end] = windows.pool();
  while (size >= 6) {
    const bool image = data[0] == 0;
    const vmi::Addr begin = image ? windows.kernel_base() : pool;
    const std::size_t region = image ? kImageSize : pool_end - pool;
    const std::size_t offset = (data[1] | data[2] << 8 | data[3] << 16 | std::size_t{data[4]} << 24) % region;
    const std::size_t length = std::min<std::size_t>({data[5], size - 6, region - offset});
    windows.write(vmi_synthetic::SyntheticWindows::kKernelPml4, begin + offset, data + 6, length);
    data += 6 + length;
    size -= 6 + length;
  }
  vmi::SessionOptions options;
  options.shared_profiles = profiles;
  vmi::Session session = vmi::Session::over_layer(windows.image(), options);
  if (!session.kernel()) return 0;
  vmi_fuzz::DiscardRows sink;
  for (const char* plugin : {"pslist", "modules", "handles"}) (void)vmi::run_plugin(session, plugin, {}, sink);
  return 0;
}
