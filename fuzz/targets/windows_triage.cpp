// A Windows kernel triage dump (DumpType 4) read end to end: the crash-dump layer's TRIAGE_DUMP64
// parser, detection by build (builds.tsv), the KDBG copy, the placement of the saved thread,
// process and driver entries by their links, and every Windows plugin over the saved kernel
// memory. The dump is a SYNTHETIC one of windows_fuzz_image.hpp's image, written by
// synthetic_windows_dumps.hpp (smss's thread crashed; the list head, System and the exited
// process are saved as data blocks), and the input patches its bytes: records of
// [u32 offset][u8 length][length bytes], each written at that offset (modulo the file's size).
#include "fuzz_support.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"
#include "windows_fuzz_image.hpp"

namespace {

std::shared_ptr<vmi::ProfileCatalog> profiles;
std::string* dump = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  profiles = vmi_fuzz::windows_catalog();
  const vmi_fuzz::WindowsImage windows = vmi_fuzz::windows_image();
  const std::unique_ptr<const vmi_synthetic::SyntheticWindows> owned(windows.image);  // only the dump is kept
  const auto& w = *owned;
  dump = new std::string(vmi_synthetic::triage_dump(w, vmi_fuzz::triage_spec(windows)));
  // The unpatched dump once: it must give a kernel, and the profile is parsed here, not in the
  // first input's time.
  vmi_fuzz::InputFile file;
  vmi::SessionOptions options;
  options.shared_profiles = profiles;
  auto session =
      vmi::Session::open(file.write(reinterpret_cast<const std::uint8_t*>(dump->data()), dump->size()), options);
  if (!session || !session->kernel()) __builtin_trap();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string bytes = *dump;
  while (size >= 5) {
    const std::size_t offset = (data[0] | data[1] << 8 | data[2] << 16 | std::size_t{data[3]} << 24) % bytes.size();
    const std::size_t length = std::min<std::size_t>({data[4], size - 5, bytes.size() - offset});
    std::memcpy(bytes.data() + offset, data + 5, length);
    data += 5 + length;
    size -= 5 + length;
  }
  static vmi_fuzz::InputFile input;
  vmi::SessionOptions options;
  options.shared_profiles = profiles;
  auto session =
      vmi::Session::open(input.write(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()), options);
  if (!session || !session->kernel()) return 0;
  vmi_fuzz::DiscardRows sink;
  for (const char* plugin : {"pslist", "pstree", "modules", "dlllist", "cmdline", "handles", "psscan"})
    (void)vmi::run_plugin(*session, plugin, {}, sink);
  return 0;
}
