// Converting any readable snapshot into vmi-forensics' own seekable compressed container
// (.vmic): zstd per fixed-size chunk of guest-physical memory, holes kept as holes, the
// source's format name, ranges, vCPU registers and facts preserved. Opened by open_image.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "vmi/expected.hpp"

namespace vmi {

struct ConvertOptions {
  std::uint32_t chunk_size = 256u << 10;  // power of two, 4 KiB .. 64 MiB; 256 KiB: random
                                          // 4 KiB reads 4x faster than 1 MiB, +0.1% size
  int level = 3;                          // zstd level (1..19)
};

struct ConvertStats {
  std::string source_format;      // as the container records it ("raw", "elf-core", "raw (gzip)")
  std::uint64_t guest_bytes = 0;  // bytes of guest-physical memory stored
  std::uint64_t chunks = 0;
  std::uint64_t output_bytes = 0;  // size of the container file
};

// Streams `input` chunk by chunk into a new container at `output` (RSS bounded by a few chunks;
// source pages are released as they are consumed). The input is anything open_image accepts,
// or a raw image compressed as one .gz or .zst stream. Fails if `output` exists; the file is
// written as OUTPUT.partial and renamed only when complete.
Expected<ConvertStats> convert_to_container(const std::filesystem::path& input, const std::filesystem::path& output,
                                            const ConvertOptions& options = {});

}  // namespace vmi
