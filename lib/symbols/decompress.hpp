// Whole-buffer decompression of profile files (.xz, .zst), detected from magic bytes.
#pragma once

#include <span>
#include <string>

#include "vmi/expected.hpp"

namespace vmi {

enum class Compression { none, xz, zstd };

Compression detect_compression(std::span<const std::byte> head);

// Decompresses into `out`, leaving `padding` spare bytes of capacity after the data (simdjson
// reads up to 64 bytes past the end). `origin` names the source in errors; `max_size` caps the
// output so a decompression bomb fails cleanly.
Expected<void> decompress(std::span<const std::byte> input, Compression kind, std::string& out, std::size_t padding,
                          std::size_t max_size, std::string_view origin);

}  // namespace vmi

namespace vmi {

// Compresses a whole buffer (xz preset 6 with CRC64, or zstd level 19 with checksum).
Expected<void> compress(std::string_view input, Compression kind, std::string& out);

}  // namespace vmi
