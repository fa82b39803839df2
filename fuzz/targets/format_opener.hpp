// One format's opener forced on the input, skipping detection: reaches parsers behind a probe.
#pragma once

#include "fuzz_support.hpp"
#include "layers/formats.hpp"

#define VMI_FUZZ_OPENER(opener)                                                       \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) { \
    static vmi_fuzz::InputFile input;                                                 \
    auto file = vmi::FileMapping::open(input.write(data, size));                      \
    if (!file) return 0;                                                              \
    auto image = vmi::opener(*file);                                                  \
    if (image) vmi_fuzz::exercise_image(**image);                                     \
    return 0;                                                                         \
  }
