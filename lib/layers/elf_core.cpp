// ELF core files as QEMU's dump-guest-memory and virsh dump write them: PT_LOAD segments placed
// by guest-physical address (p_paddr), and a PT_NOTE segment carrying each vCPU's registers.
#include <elf.h>

#include <cstring>

#include "layers/formats.hpp"
#include "layers/segment_layer.hpp"

namespace vmi {

namespace {

static_assert(sizeof(Elf64_Ehdr) == 64 && sizeof(Elf64_Phdr) == 56 && sizeof(Elf64_Shdr) == 64);

constexpr std::uint32_t kMaxProgramHeaders = 1u << 20;  // QEMU writes one per RAM block
constexpr std::size_t kMaxNotes = 4096;                // 2 notes per vCPU
constexpr std::size_t kMaxCpus = 1024;

// Layout of user_regs_struct inside NT_PRSTATUS (x86-64): pr_reg starts at byte 112.
constexpr std::size_t kPrstatusRegsOffset = 112;
constexpr const char* kPrstatusRegs[] = {"r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9",
                                         "r8",  "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs",
                                         "rflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs"};

// QEMU's own "QEMU" note (target/i386/arch_dump.c, QEMUCPUState): general registers, ten
// 24-byte segment descriptors, then cr0..cr4 and, when `size` allows, kernel_gs_base.
constexpr std::size_t kQemuGeneralOffset = 8;
constexpr const char* kQemuGeneralRegs[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9",
                                            "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags"};
constexpr const char* kQemuSegments[] = {"cs", "ds", "es", "fs", "gs", "ss", "ldt", "tr", "gdt", "idt"};
constexpr std::size_t kQemuSegmentsOffset = kQemuGeneralOffset + std::size_t{18} * 8;
constexpr std::size_t kQemuCrOffset = kQemuSegmentsOffset + std::size_t{10} * 24;
constexpr std::size_t kQemuKernelGsBaseOffset = kQemuCrOffset + std::size_t{5} * 8;

template <class T>
T load(std::span<const std::byte> bytes, std::size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof value);
  return value;
}

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
  Expected<void> parse_notes(std::span<const std::byte> notes, std::uint64_t file_offset);

  std::shared_ptr<const FileMapping> file_;
  std::vector<CpuState> cpus_;
};

Expected<void> ElfCoreLayer::parse() {
  const auto bytes = file_->bytes();
  if (bytes.size() < sizeof(Elf64_Ehdr)) return fail(Errc::truncated, "file (" + hex(bytes.size()) + " bytes) is shorter than an ELF header");
  const auto header = load<Elf64_Ehdr>(bytes, 0);
  if (header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_ident[EI_DATA] != ELFDATA2LSB) {
    return fail(Errc::unsupported, "only little-endian ELF64 cores are supported");
  }
  if (header.e_type != ET_CORE) return fail(Errc::bad_format, "ELF type " + std::to_string(header.e_type) + " is not a core file");
  if (header.e_phentsize != sizeof(Elf64_Phdr)) {
    return fail(Errc::bad_format, "program header size " + std::to_string(header.e_phentsize) + " at offset 0x36 is not 56");
  }
  std::uint64_t count = header.e_phnum;
  if (count == PN_XNUM) {  // the real count lives in section header 0's sh_info
    if (header.e_shoff > bytes.size() || bytes.size() - header.e_shoff < sizeof(Elf64_Shdr)) {
      return fail(Errc::truncated, "section header 0 at " + hex(header.e_shoff) + " (for PN_XNUM) is past end of file");
    }
    count = load<Elf64_Shdr>(bytes, header.e_shoff).sh_info;
  }
  if (count > kMaxProgramHeaders) return fail(Errc::limit_exceeded, std::to_string(count) + " program headers (cap " + std::to_string(kMaxProgramHeaders) + ")");
  if (header.e_phoff > bytes.size() || (bytes.size() - header.e_phoff) / sizeof(Elf64_Phdr) < count) {
    return fail(Errc::truncated, std::to_string(count) + " program headers at " + hex(header.e_phoff) + " run past end of file (" + hex(bytes.size()) + ")");
  }

  std::vector<Segment> segments;
  for (std::uint64_t i = 0; i < count; ++i) {
    const auto ph = load<Elf64_Phdr>(bytes, header.e_phoff + i * sizeof(Elf64_Phdr));
    if (ph.p_offset > bytes.size() || ph.p_filesz > bytes.size() - ph.p_offset) {
      return fail(Errc::truncated, "segment #" + std::to_string(i) + " (file " + hex(ph.p_offset) + " + " + hex(ph.p_filesz) + ") runs past end of file (" + hex(bytes.size()) + ")");
    }
    if (ph.p_type == PT_NOTE) {
      VMI_TRY_VOID(parse_notes(bytes.subspan(ph.p_offset, ph.p_filesz), ph.p_offset));
    } else if (ph.p_type == PT_LOAD && ph.p_filesz > 0) {
      if (ph.p_paddr + ph.p_filesz < ph.p_paddr) return fail(Errc::bad_format, "segment #" + std::to_string(i) + " wraps the physical address space");
      // Bytes past p_filesz (up to p_memsz) were not dumped: they stay a hole.
      segments.push_back({{ph.p_paddr, ph.p_paddr + ph.p_filesz}, ph.p_offset});
    }
  }
  if (segments.empty()) return fail(Errc::bad_format, "no PT_LOAD segment holds memory");
  return set_segments(std::move(segments));
}

Expected<void> ElfCoreLayer::parse_notes(std::span<const std::byte> notes, std::uint64_t file_offset) {
  std::size_t cursor = 0;
  std::size_t prstatus_seen = 0;
  std::size_t qemu_seen = 0;
  for (std::size_t n = 0; cursor + sizeof(Elf64_Nhdr) <= notes.size(); ++n) {
    if (n >= kMaxNotes) return fail(Errc::limit_exceeded, "more than " + std::to_string(kMaxNotes) + " notes");
    const auto note = load<Elf64_Nhdr>(notes, cursor);
    const std::uint64_t name_size = (std::uint64_t{note.n_namesz} + 3) & ~std::uint64_t{3};
    const std::uint64_t desc_size = (std::uint64_t{note.n_descsz} + 3) & ~std::uint64_t{3};
    const std::uint64_t name_at = cursor + sizeof(Elf64_Nhdr);
    if (name_size + desc_size > notes.size() - name_at) {
      return fail(Errc::truncated, "note at " + hex(file_offset + cursor) + " runs past its segment");
    }
    std::string_view name(reinterpret_cast<const char*>(notes.data() + name_at), note.n_namesz);
    if (!name.empty() && name.back() == '\0') name.remove_suffix(1);
    const auto desc = notes.subspan(name_at + name_size, note.n_descsz);
    auto cpu_at = [&](std::size_t index) -> CpuState& {
      if (cpus_.size() <= index) cpus_.resize(index + 1);
      cpus_[index].index = static_cast<std::uint32_t>(index);
      return cpus_[index];
    };
    if (name == "CORE" && note.n_type == NT_PRSTATUS && desc.size() >= kPrstatusRegsOffset + std::size(kPrstatusRegs) * 8) {
      if (prstatus_seen < kMaxCpus) {
        CpuState& cpu = cpu_at(prstatus_seen);
        for (std::size_t r = 0; r < std::size(kPrstatusRegs); ++r) {
          cpu.registers[kPrstatusRegs[r]] = load<std::uint64_t>(desc, kPrstatusRegsOffset + r * 8);
        }
      }
      ++prstatus_seen;
    } else if (name == "QEMU" && desc.size() >= kQemuKernelGsBaseOffset) {
      if (qemu_seen < kMaxCpus) {
        CpuState& cpu = cpu_at(qemu_seen);
        for (std::size_t r = 0; r < std::size(kQemuGeneralRegs); ++r) {
          cpu.registers[kQemuGeneralRegs[r]] = load<std::uint64_t>(desc, kQemuGeneralOffset + r * 8);
        }
        for (std::size_t s = 0; s < std::size(kQemuSegments); ++s) {
          cpu.registers[std::string(kQemuSegments[s]) + "_base"] = load<std::uint64_t>(desc, kQemuSegmentsOffset + s * 24 + 16);
        }
        for (std::size_t r = 0; r < 5; ++r) {
          cpu.registers["cr" + std::to_string(r)] = load<std::uint64_t>(desc, kQemuCrOffset + r * 8);
        }
        const auto declared_size = load<std::uint32_t>(desc, 4);
        if (declared_size >= kQemuKernelGsBaseOffset + 8 && desc.size() >= kQemuKernelGsBaseOffset + 8) {
          cpu.registers["kernel_gs_base"] = load<std::uint64_t>(desc, kQemuKernelGsBaseOffset);
        }
      }
      ++qemu_seen;
    }
    cursor = name_at + name_size + desc_size;
  }
  return {};
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
