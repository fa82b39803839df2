// Sessions over synthetic kernels (fuzz/targets/synthetic_kernel.hpp) laid out from the shipped
// Debian 6.1 profile, which is parsed once per test run.
#pragma once

#include <memory>
#include <vector>

#include "synthetic_kernel.hpp"
#include "vmi/profile.hpp"
#include "vmi/session.hpp"

namespace vmi::test {

// The shipped Debian 6.1 ISF, loaded once; REQUIREs success.
std::shared_ptr<const Profile> shipped_isf();
// A session over the builder's image that finds the kernel with the shipped profile (one catalog
// shared by every such session); REQUIREs that the kernel is found.
Session open_synthetic(const vmi_synthetic::SyntheticKernel& kernel);
// The same, the image carrying these vCPU registers as a snapshot format saves them.
Session open_synthetic(const vmi_synthetic::SyntheticKernel& kernel, std::vector<CpuState> cpus);

}  // namespace vmi::test
