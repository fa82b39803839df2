// vCPU registers from ELF notes, as QEMU writes them into ELF cores and kdump note areas.
#pragma once

#include <span>
#include <string_view>
#include <vector>

#include "vmi/image.hpp"

namespace vmi {

// Reads NT_PRSTATUS ("CORE") and QEMUCPUState ("QEMU") notes, one of each per vCPU in order,
// into register sets. `where` names the file in errors and `offset` is the file offset of
// notes[0]. An all-zero note header ends the area (kdump pads it with zeros).
Expected<std::vector<CpuState>> parse_cpu_notes(std::span<const std::byte> notes, std::uint64_t offset,
                                                std::string_view where);

}  // namespace vmi
