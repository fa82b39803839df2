// Copying fixed-size on-disk structures out of mapped bytes, for every format parser.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

namespace vmi {

// The T stored at bytes[offset]. Callers check offset + sizeof(T) <= bytes.size() first (each
// parser names the structure and the file offset in its own error); memcpy keeps unaligned
// reads of evidence well-defined.
template <class T>
requires std::is_trivially_copyable_v<T> T load(std::span<const std::byte> bytes, std::uint64_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof value);
  return value;
}

}  // namespace vmi
