// The SYNTHETIC Windows images test_windows_kernel.cpp builds, for other tests that need one.
#pragma once

#include <filesystem>

namespace vmi::test {

// The shipped Windows profiles (profiles/windows).
std::filesystem::path windows_profiles();
// A raw image file of the synthetic Windows 10 2004 workload (built once per run).
std::filesystem::path windows10_raw_image();

}  // namespace vmi::test
