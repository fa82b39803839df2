// The format table: one line per snapshot format, tried in order; raw is the fallback.
#include "layers/formats.hpp"

namespace vmi {

namespace {

constexpr ImageFormat kFormats[] = {
    {"elf-core", "ELF core (QEMU dump-guest-memory, virsh dump)", probe_elf_core, open_elf_core},
    {"lime", "LiME (Linux Memory Extractor, format=lime)", probe_lime, open_lime},
    {"vmi-container", "vmi-forensics seekable compressed container (vmi-forensics convert)", probe_vmi_container,
     open_vmi_container},
    {"compressed-raw", "raw image as one .gz/.zst stream (refused: run vmi-forensics convert)", probe_compressed_raw,
     open_compressed_raw},
    {"kdump", "kdump-compressed (makedumpfile, QEMU dump-guest-memory -z/-l/-s; flattened or seekable)", probe_kdump,
     open_kdump},
    {"qemu-savevm", "QEMU migration stream (migrate exec:, savevm; libvirt virsh save)", probe_qemu_savevm,
     open_qemu_savevm},
    {"windows-crashdump", "Windows 64-bit crash dump (PAGEDU64: complete and bitmap MEMORY.DMP)",
     probe_windows_crashdump, open_windows_crashdump},
    {"vmware", "VMware .vmss/.vmsn state file, or a .vmem with one beside it", probe_vmware, open_vmware},
    {"raw", "raw physical memory (pmemsave, dd, .vmem)", probe_raw, open_raw},
};

}  // namespace

std::span<const ImageFormat> image_formats() { return kFormats; }

Expected<std::unique_ptr<PhysicalImage>> open_image(const std::filesystem::path& path) {
  auto file = VMI_TRY(FileMapping::open(path));
  for (const ImageFormat& format : kFormats) {
    if (format.probe(*file)) return format.open(file);
  }
  return make_error(Errc::bad_format, "'" + path.string() + "' (" + std::to_string(file->size()) +
                                          " bytes) is not a memory image: no known header, and not a whole "
                                          "number of 4 KiB pages as a raw image would be");
}

}  // namespace vmi
