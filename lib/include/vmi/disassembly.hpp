// x86-64 disassembly of bytes read from an image (Capstone), for disassembly cells and checks.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vmi/expected.hpp"

namespace vmi {

struct Instruction {
  std::uint64_t address = 0;
  std::uint16_t size = 0;
  std::string mnemonic;  // "jmp"
  std::string operands;  // "0xffffffffc0a01000"
  // Structured operands, for code that follows references: the absolute address a RIP-relative
  // memory operand refers to, whether the first operand is a 64-bit general register, and the
  // value of an immediate operand.
  std::optional<std::uint64_t> rip_target;
  bool first_register64 = false;
  std::optional<std::int64_t> immediate;
};

// Decodes up to max_instructions instructions of `code` as if loaded at `address`, stopping at
// the first byte sequence that is not an instruction (the rest is not decoded). Fails only when
// Capstone cannot be loaded.
Expected<std::vector<Instruction>> disassemble_x86_64(std::span<const std::uint8_t> code, std::uint64_t address,
                                                      std::size_t max_instructions = 256);

}  // namespace vmi
