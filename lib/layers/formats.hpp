// Probes and openers of the built-in formats, gathered into the table in formats.cpp.
#pragma once

#include "vmi/image.hpp"

namespace vmi {

bool probe_raw(const FileMapping& file);
Expected<std::unique_ptr<PhysicalImage>> open_raw(std::shared_ptr<const FileMapping> file);

bool probe_elf_core(const FileMapping& file);
Expected<std::unique_ptr<PhysicalImage>> open_elf_core(std::shared_ptr<const FileMapping> file);

bool probe_lime(const FileMapping& file);
Expected<std::unique_ptr<PhysicalImage>> open_lime(std::shared_ptr<const FileMapping> file);

bool probe_vmi_container(const FileMapping& file);
Expected<std::unique_ptr<PhysicalImage>> open_vmi_container(std::shared_ptr<const FileMapping> file);

// "gzip" or "zstd" when the file starts with that stream's magic, else empty.
std::string_view compressed_stream_kind(const FileMapping& file);
bool probe_compressed_raw(const FileMapping& file);
Expected<std::unique_ptr<PhysicalImage>> open_compressed_raw(std::shared_ptr<const FileMapping> file);

bool probe_kdump(const FileMapping& file);
Expected<std::unique_ptr<PhysicalImage>> open_kdump(std::shared_ptr<const FileMapping> file);

bool probe_qemu_savevm(const FileMapping& file);
Expected<std::unique_ptr<PhysicalImage>> open_qemu_savevm(std::shared_ptr<const FileMapping> file);

bool probe_windows_crashdump(const FileMapping& file);
Expected<std::unique_ptr<PhysicalImage>> open_windows_crashdump(std::shared_ptr<const FileMapping> file);

// Content (state-file magic) or a .vmem with a .vmss/.vmsn beside it.
bool probe_vmware(const FileMapping& file);
Expected<std::unique_ptr<PhysicalImage>> open_vmware(std::shared_ptr<const FileMapping> file);

}  // namespace vmi
