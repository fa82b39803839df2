// Address spaces: a layer answers reads at explicit addresses and lists where it has data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "vmi/expected.hpp"

namespace vmi {

using Addr = std::uint64_t;

struct Range {  // half-open [begin, end)
  Addr begin = 0;
  Addr end = 0;
  Addr size() const { return end - begin; }
  bool contains(Addr addr) const { return addr >= begin && addr < end; }
  friend bool operator==(const Range&, const Range&) = default;
};

// A physical or virtual address space. Implementations are immutable after construction, so
// reads are safe from several threads; caches inside are internally synchronised.
class Layer {
 public:
  virtual ~Layer() = default;
  Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  // Short description used in every error: "raw 'dump.raw'", "x86-64 5-level (dtb 0x...)".
  virtual std::string_view name() const = 0;

  // Reads up to dst.size() bytes at addr and returns how many were read: fewer than asked when
  // the data stops at a hole, an error (Errc::unmapped, naming the address) when addr itself
  // is in a hole. Never throws, never reads outside its backing.
  virtual Expected<std::size_t> read(Addr addr, std::span<std::byte> dst) const = 0;

  // Sorted, non-overlapping runs of addresses that have data.
  virtual std::span<const Range> ranges() const = 0;
};

// Reads exactly dst.size() bytes or fails naming the first address that could not be read.
Expected<void> read_exact(const Layer& layer, Addr addr, std::span<std::byte> dst);

template <class T>
requires std::is_trivially_copyable_v<T> Expected<T> read_value(const Layer& layer, Addr addr) {
  T value{};
  VMI_TRY_VOID(read_exact(layer, addr, std::as_writable_bytes(std::span(&value, 1))));
  return value;
}

// Reads a NUL-terminated string of at most max_size bytes (stops early at the NUL).
Expected<std::string> read_c_string(const Layer& layer, Addr addr, std::size_t max_size);

// A layer over bytes the caller owns: tests, fuzzers and decoded buffers.
class MemoryLayer final : public Layer {
 public:
  MemoryLayer(std::string name, std::span<const std::byte> bytes, Addr base = 0);
  std::string_view name() const override { return name_; }
  Expected<std::size_t> read(Addr addr, std::span<std::byte> dst) const override;
  std::span<const Range> ranges() const override { return {&range_, 1}; }

 private:
  std::string name_;
  std::span<const std::byte> bytes_;
  Range range_;
};

std::string hex(std::uint64_t value);  // "0x1f"

}  // namespace vmi
