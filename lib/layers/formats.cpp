// The format table: one line per snapshot format, tried in order; raw is the fallback.
#include "layers/formats.hpp"

namespace vmi {

namespace {

constexpr ImageFormat kFormats[] = {
    {"elf-core", "ELF core (QEMU dump-guest-memory, virsh dump)", probe_elf_core, open_elf_core},
    {"windows-crashdump", "Windows 64-bit crash dump (PAGEDU64: complete and bitmap MEMORY.DMP)", probe_windows_crashdump, open_windows_crashdump},
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
