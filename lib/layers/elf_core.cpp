// ELF core files as QEMU's dump-guest-memory and virsh dump write them: PT_LOAD segments placed
// by guest-physical address (p_paddr), and a PT_NOTE segment carrying each vCPU's registers.
#include <elf.h>

#include <cstring>

#include "layers/bytes.hpp"
#include "layers/elf_notes.hpp"
#include "layers/formats.hpp"
#include "layers/segment_layer.hpp"

namespace vmi {

namespace {

static_assert(sizeof(Elf64_Ehdr) == 64 && sizeof(Elf64_Phdr) == 56 && sizeof(Elf64_Shdr) == 64);

constexpr std::uint32_t kMaxProgramHeaders = 1u << 20;  // QEMU writes one per RAM block

class ElfCoreLayer final : public SegmentLayer {
 public:
  explicit ElfCoreLayer(std::shared_ptr<const FileMapping> file)
      : SegmentLayer("ELF core '" + file->path().string() + "'", file), file_(std::move(file)) {}
  std::string_view format() const override { return "elf-core"; }
  std::span<const CpuState> cpu_states() const override { return cpus_; }

  Expected<void> parse();

 private:
  Error fail(Errc code, const std::string& what) const {
    return make_error(code, "ELF core '" + file_->path().string() + "': " + what);
  }

  std::shared_ptr<const FileMapping> file_;
  std::vector<CpuState> cpus_;
};

Expected<void> ElfCoreLayer::parse() {
  const auto bytes = file_->bytes();
  if (bytes.size() < sizeof(Elf64_Ehdr))
    return fail(Errc::truncated, "file (" + hex(bytes.size()) + " bytes) is shorter than an ELF header");
  const auto header = load<Elf64_Ehdr>(bytes, 0);
  if (header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_ident[EI_DATA] != ELFDATA2LSB) {
    return fail(Errc::unsupported, "only little-endian ELF64 cores are supported");
  }
  if (header.e_type != ET_CORE)
    return fail(Errc::bad_format, "ELF type " + std::to_string(header.e_type) + " is not a core file");
  if (header.e_phentsize != sizeof(Elf64_Phdr)) {
    return fail(Errc::bad_format,
                "program header size " + std::to_string(header.e_phentsize) + " at offset 0x36 is not 56");
  }
  std::uint64_t count = header.e_phnum;
  if (count == PN_XNUM) {  // the real count lives in section header 0's sh_info
    if (header.e_shoff > bytes.size() || bytes.size() - header.e_shoff < sizeof(Elf64_Shdr)) {
      return fail(Errc::truncated, "section header 0 at " + hex(header.e_shoff) + " (for PN_XNUM) is past end of file");
    }
    count = load<Elf64_Shdr>(bytes, header.e_shoff).sh_info;
  }
  if (count > kMaxProgramHeaders)
    return fail(Errc::limit_exceeded,
                std::to_string(count) + " program headers (cap " + std::to_string(kMaxProgramHeaders) + ")");
  if (header.e_phoff > bytes.size() || (bytes.size() - header.e_phoff) / sizeof(Elf64_Phdr) < count) {
    return fail(Errc::truncated, std::to_string(count) + " program headers at " + hex(header.e_phoff) +
                                     " run past end of file (" + hex(bytes.size()) + ")");
  }

  std::vector<Segment> segments;
  for (std::uint64_t i = 0; i < count; ++i) {
    const auto ph = load<Elf64_Phdr>(bytes, header.e_phoff + i * sizeof(Elf64_Phdr));
    if (ph.p_offset > bytes.size() || ph.p_filesz > bytes.size() - ph.p_offset) {
      return fail(Errc::truncated, "segment #" + std::to_string(i) + " (file " + hex(ph.p_offset) + " + " +
                                       hex(ph.p_filesz) + ") runs past end of file (" + hex(bytes.size()) + ")");
    }
    if (ph.p_type == PT_NOTE) {
      cpus_ = VMI_TRY(parse_cpu_notes(bytes.subspan(ph.p_offset, ph.p_filesz), ph.p_offset, name()));
    } else if (ph.p_type == PT_LOAD && ph.p_filesz > 0) {
      if (ph.p_paddr + ph.p_filesz < ph.p_paddr)
        return fail(Errc::bad_format, "segment #" + std::to_string(i) + " wraps the physical address space");
      // Bytes past p_filesz (up to p_memsz) were not dumped: they stay a hole.
      segments.push_back({{ph.p_paddr, ph.p_paddr + ph.p_filesz}, ph.p_offset});
    }
  }
  if (segments.empty()) return fail(Errc::bad_format, "no PT_LOAD segment holds memory");
  return set_segments(std::move(segments));
}

}  // namespace

bool probe_elf_core(const FileMapping& file) {
  return file.size() >= SELFMAG && std::memcmp(file.bytes().data(), ELFMAG, SELFMAG) == 0;
}

Expected<std::unique_ptr<PhysicalImage>> open_elf_core(std::shared_ptr<const FileMapping> file) {
  auto layer = std::make_unique<ElfCoreLayer>(std::move(file));
  VMI_TRY_VOID(layer->parse());
  return std::unique_ptr<PhysicalImage>(std::move(layer));
}

}  // namespace vmi
