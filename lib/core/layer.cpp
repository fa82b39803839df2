// Helpers shared by every layer: exact reads, bounded strings and the in-memory layer.
#include "vmi/layer.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace vmi {

std::string hex(std::uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%" PRIx64, value);
  return text;
}

Expected<void> read_exact(const Layer& layer, Addr addr, std::span<std::byte> dst) {
  std::size_t done = 0;
  while (done < dst.size()) {
    auto got = layer.read(addr + done, dst.subspan(done));
    if (!got) return std::move(got).error();
    if (*got == 0) {
      return make_error(Errc::unmapped, std::string(layer.name()) + ": no data at " + hex(addr + done));
    }
    done += *got;
  }
  return {};
}

Expected<std::string> read_c_string(const Layer& layer, Addr addr, std::size_t max_size) {
  std::string text;
  std::byte chunk[64];
  while (text.size() < max_size) {
    std::size_t want = std::min(sizeof chunk, max_size - text.size());
    auto got = layer.read(addr + text.size(), std::span(chunk, want));
    if (!got) {
      if (text.empty()) return std::move(got).error();
      return text;  // keep what was readable before the hole
    }
    if (*got == 0) break;
    const auto* begin = reinterpret_cast<const char*>(chunk);
    const char* nul = std::find(begin, begin + *got, '\0');
    text.append(begin, nul);
    if (nul != begin + *got) break;
  }
  return text;
}

MemoryLayer::MemoryLayer(std::string name, std::span<const std::byte> bytes, Addr base)
    : name_(std::move(name)), bytes_(bytes), range_{base, base + bytes.size()} {}

Expected<std::size_t> MemoryLayer::read(Addr addr, std::span<std::byte> dst) const {
  if (!range_.contains(addr)) return make_error(Errc::unmapped, name_ + ": no data at " + hex(addr));
  const auto available = static_cast<std::size_t>(range_.end - addr);
  std::size_t count = std::min(available, dst.size());
  std::memcpy(dst.data(), bytes_.data() + (addr - range_.begin), count);
  return count;
}

}  // namespace vmi
