// Probes and openers of the built-in formats, gathered into the table in formats.cpp.
#pragma once

#include "vmi/image.hpp"

namespace vmi {

bool probe_raw(const FileMapping& file);
Expected<std::unique_ptr<PhysicalImage>> open_raw(std::shared_ptr<const FileMapping> file);

bool probe_elf_core(const FileMapping& file);
Expected<std::unique_ptr<PhysicalImage>> open_elf_core(std::shared_ptr<const FileMapping> file);

bool probe_windows_crashdump(const FileMapping& file);
Expected<std::unique_ptr<PhysicalImage>> open_windows_crashdump(std::shared_ptr<const FileMapping> file);

// Content (state-file magic) or a .vmem with a .vmss/.vmsn beside it.
bool probe_vmware(const FileMapping& file);
Expected<std::unique_ptr<PhysicalImage>> open_vmware(std::shared_ptr<const FileMapping> file);

}  // namespace vmi
