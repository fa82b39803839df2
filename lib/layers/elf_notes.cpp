// The one parser of per-vCPU register notes, shared by the ELF core and kdump layers.
#include "layers/elf_notes.hpp"

#include "layers/bytes.hpp"

#include <elf.h>

#include <cstring>
#include <string>

namespace vmi {

namespace {

constexpr std::size_t kMaxNotes = 4096;  // 2 notes per vCPU
constexpr std::size_t kMaxCpus = 1024;

// Layout of user_regs_struct inside NT_PRSTATUS (x86-64): pr_reg starts at byte 112.
constexpr std::size_t kPrstatusRegsOffset = 112;
constexpr const char* kPrstatusRegs[] = {"r15",    "r14", "r13", "r12",     "rbp",     "rbx", "r11",      "r10", "r9",
                                         "r8",     "rax", "rcx", "rdx",     "rsi",     "rdi", "orig_rax", "rip", "cs",
                                         "rflags", "rsp", "ss",  "fs_base", "gs_base", "ds",  "es",       "fs",  "gs"};

// QEMU's own "QEMU" note (target/i386/arch_dump.c, QEMUCPUState): general registers, ten
// 24-byte segment descriptors, then cr0..cr4 and, when `size` allows, kernel_gs_base.
constexpr std::size_t kQemuGeneralOffset = 8;
constexpr const char* kQemuGeneralRegs[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8",
                                            "r9",  "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags"};
constexpr const char* kQemuSegments[] = {"cs", "ds", "es", "fs", "gs", "ss", "ldt", "tr", "gdt", "idt"};
constexpr std::size_t kQemuSegmentsOffset = kQemuGeneralOffset + std::size_t{18} * 8;
constexpr std::size_t kQemuCrOffset = kQemuSegmentsOffset + std::size_t{10} * 24;
constexpr std::size_t kQemuKernelGsBaseOffset = kQemuCrOffset + std::size_t{5} * 8;

void read_prstatus(std::span<const std::byte> desc, CpuState& cpu) {
  for (std::size_t r = 0; r < std::size(kPrstatusRegs); ++r) {
    cpu.registers[kPrstatusRegs[r]] = load<std::uint64_t>(desc, kPrstatusRegsOffset + r * 8);
  }
}

void read_qemu_cpu_state(std::span<const std::byte> desc, CpuState& cpu) {
  for (std::size_t r = 0; r < std::size(kQemuGeneralRegs); ++r) {
    cpu.registers[kQemuGeneralRegs[r]] = load<std::uint64_t>(desc, kQemuGeneralOffset + r * 8);
  }
  for (std::size_t s = 0; s < std::size(kQemuSegments); ++s) {
    cpu.registers[std::string(kQemuSegments[s]) + "_base"] =
        load<std::uint64_t>(desc, kQemuSegmentsOffset + s * 24 + 16);
  }
  for (std::size_t r = 0; r < 5; ++r) {
    cpu.registers["cr" + std::to_string(r)] = load<std::uint64_t>(desc, kQemuCrOffset + r * 8);
  }
  const auto declared_size = load<std::uint32_t>(desc, 4);  // fields past cr[] are optional
  if (declared_size >= kQemuKernelGsBaseOffset + 8 && desc.size() >= kQemuKernelGsBaseOffset + 8) {
    cpu.registers["kernel_gs_base"] = load<std::uint64_t>(desc, kQemuKernelGsBaseOffset);
  }
}

}  // namespace

Expected<std::vector<CpuState>> parse_cpu_notes(std::span<const std::byte> notes, std::uint64_t offset,
                                                std::string_view where) {
  std::vector<CpuState> cpus;
  auto cpu_at = [&](std::size_t index) -> CpuState& {
    if (cpus.size() <= index) cpus.resize(index + 1);
    cpus[index].index = static_cast<std::uint32_t>(index);
    return cpus[index];
  };
  std::size_t cursor = 0;
  std::size_t prstatus_seen = 0;
  std::size_t qemu_seen = 0;
  for (std::size_t n = 0; cursor + sizeof(Elf64_Nhdr) <= notes.size(); ++n) {
    if (n >= kMaxNotes) {
      return make_error(Errc::limit_exceeded,
                        std::string(where) + ": more than " + std::to_string(kMaxNotes) + " notes");
    }
    const auto note = load<Elf64_Nhdr>(notes, cursor);
    if (note.n_namesz == 0 && note.n_descsz == 0 && note.n_type == 0) break;
    const std::uint64_t name_size = (std::uint64_t{note.n_namesz} + 3) & ~std::uint64_t{3};
    const std::uint64_t desc_size = (std::uint64_t{note.n_descsz} + 3) & ~std::uint64_t{3};
    const std::uint64_t name_at = cursor + sizeof(Elf64_Nhdr);
    if (name_size + desc_size > notes.size() - name_at) {
      return make_error(Errc::truncated, std::string(where) + ": note at " + hex(offset + cursor) +
                                             " runs past its note area (" + hex(notes.size()) + " bytes)");
    }
    std::string_view name(reinterpret_cast<const char*>(notes.data() + name_at), note.n_namesz);
    if (!name.empty() && name.back() == '\0') name.remove_suffix(1);
    const auto desc = notes.subspan(name_at + name_size, note.n_descsz);
    if (name == "CORE" && note.n_type == NT_PRSTATUS &&
        desc.size() >= kPrstatusRegsOffset + std::size(kPrstatusRegs) * 8) {
      if (prstatus_seen < kMaxCpus) read_prstatus(desc, cpu_at(prstatus_seen));
      ++prstatus_seen;
    } else if (name == "QEMU" && desc.size() >= kQemuKernelGsBaseOffset) {
      if (qemu_seen < kMaxCpus) read_qemu_cpu_state(desc, cpu_at(qemu_seen));
      ++qemu_seen;
    }
    cursor = name_at + name_size + desc_size;
  }
  return cpus;
}

}  // namespace vmi
