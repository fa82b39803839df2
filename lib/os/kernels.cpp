// The OS table: one line per supported operating system, tried in order (those showing their
// signs first).
#include "os/linux/linux_kernel.hpp"
#include "os/windows/windows_kernel.hpp"
#include "vmi/kernel.hpp"

namespace vmi {

namespace {
constexpr OperatingSystem kOperatingSystems[] = {
    {"linux", os_linux::detect_kernel},
    {"windows", os_windows::detect_kernel, os_windows::shows_signs},
};
}  // namespace

std::span<const OperatingSystem> operating_systems() { return kOperatingSystems; }

}  // namespace vmi
