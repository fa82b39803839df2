// On-disk layout of the .vmic container (version 1), shared by its reader and writer.
//
//   [Header, 96 bytes][zstd frame per chunk ...][Range x range_count][IndexEntry x chunk_count][metadata]
//
// All integers little-endian. Chunk i holds the chunk_size bytes of guest-physical memory at
// IndexEntry.address (a multiple of chunk_size); bytes of a chunk outside every range are zero
// and never returned. Windows that touch no range have no chunk: holes stay holes. Every table
// carries a CRC-32 in the header; every chunk a CRC-32 of its decompressed bytes in the index.
// Metadata: string source_format; u32 cpu_count, per vCPU {u32 index, u32 register_count,
// per register {string name, u64 value}}; u32 fact_count, per fact {string name, string value};
// a string is u32 length + bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace vmi::container {

inline constexpr char kMagic[8] = {'V', 'M', 'I', 'C', 'N', 'T', 'R', '\x1a'};
inline constexpr std::uint32_t kVersion = 1;
inline constexpr std::uint32_t kMinChunkSize = 4096;
inline constexpr std::uint32_t kMaxChunkSize = 64u << 20;
inline constexpr std::uint64_t kMaxChunks = 1ull << 24;  // 16 TiB at 1 MiB chunks
inline constexpr std::uint64_t kMaxRanges = 1ull << 20;
inline constexpr std::uint64_t kMaxMetadata = 16ull << 20;
inline constexpr std::uint32_t kMaxCpus = 1024;
inline constexpr std::uint32_t kMaxRegisters = 1024;  // per vCPU
inline constexpr std::uint32_t kMaxFacts = 4096;
inline constexpr std::uint32_t kMaxString = 1u << 20;

struct Header {
  char magic[8];
  std::uint32_t version;
  std::uint32_t header_size;  // sizeof(Header)
  std::uint32_t chunk_size;
  std::uint32_t flags;  // 0; unknown bits are rejected
  std::uint64_t chunk_count;
  std::uint64_t range_count;
  std::uint64_t ranges_offset;
  std::uint64_t index_offset;
  std::uint64_t metadata_offset;
  std::uint64_t metadata_size;
  std::uint32_t ranges_crc;
  std::uint32_t index_crc;
  std::uint32_t metadata_crc;
  std::uint32_t reserved;    // 0
  std::uint32_t reserved2;   // 0
  std::uint32_t header_crc;  // CRC-32 of the 92 bytes before it
};
static_assert(sizeof(Header) == 96);

struct RangeEntry {  // guest-physical [begin, end)
  std::uint64_t begin;
  std::uint64_t end;
};
static_assert(sizeof(RangeEntry) == 16);

struct IndexEntry {
  std::uint64_t address;          // guest-physical start of the chunk
  std::uint64_t file_offset;      // of its zstd frame
  std::uint32_t compressed_size;  // of its zstd frame
  std::uint32_t crc;              // CRC-32 of the chunk_size decompressed bytes
};
static_assert(sizeof(IndexEntry) == 24);

std::uint32_t crc32(std::span<const std::byte> bytes);

}  // namespace vmi::container
