// x86-64 4- and 5-level translation over the input as physical memory, root at 0. The last
// 64 bytes name eight virtual addresses to translate and read; ranges() walks every table.
#include "vmi/paging.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 64) return 0;
  auto physical = std::make_shared<vmi::MemoryLayer>("fuzz", vmi_fuzz::bytes_of(data, size));
  std::vector<std::byte> buffer(8192 + 16);
  for (const vmi::PagingMode* mode : {&vmi::kX86_64FourLevel, &vmi::kX86_64FiveLevel, &vmi::kWindowsX64}) {
    vmi::PagedLayer layer(physical, 0, *mode);
    for (std::size_t i = 0; i < 8; ++i) {
      const vmi::Addr va = vmi_fuzz::le64(data + size - 64 + 8 * i);
      (void)layer.translate(va);
      (void)layer.read(va, std::span(buffer).first(16));
      (void)layer.read(va | 0xff0, buffer);  // crosses into the next two pages
    }
    vmi_fuzz::exercise_layer(layer, 16);
  }
  return 0;
}
