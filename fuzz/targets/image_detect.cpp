// Format detection and every physical layer: the input as a file, opened by content.
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static vmi_fuzz::InputFile input;
  auto image = vmi::open_image(input.write(data, size));
  if (image) vmi_fuzz::exercise_image(**image);
  return 0;
}
