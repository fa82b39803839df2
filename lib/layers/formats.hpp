// Probes and openers of the built-in formats, gathered into the table in formats.cpp.
#pragma once

#include "vmi/image.hpp"

namespace vmi {

bool probe_raw(const FileMapping& file);
Expected<std::unique_ptr<PhysicalImage>> open_raw(std::shared_ptr<const FileMapping> file);

bool probe_elf_core(const FileMapping& file);
Expected<std::unique_ptr<PhysicalImage>> open_elf_core(std::shared_ptr<const FileMapping> file);

}  // namespace vmi
