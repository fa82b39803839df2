// A raw image compressed as one .gz or .zst stream: recognised by content, but not seekable,
// so it is refused with a pointer to `vmi-forensics convert`, which streams it into a container.
#include <cstring>

#include "layers/formats.hpp"

namespace vmi {

std::string_view compressed_stream_kind(const FileMapping& file) {
  const auto bytes = file.bytes();
  constexpr unsigned char kGzip[] = {0x1f, 0x8b, 0x08};        // deflate
  constexpr unsigned char kZstd[] = {0x28, 0xb5, 0x2f, 0xfd};  // frame magic 0xFD2FB528
  if (bytes.size() >= sizeof kGzip && std::memcmp(bytes.data(), kGzip, sizeof kGzip) == 0) return "gzip";
  if (bytes.size() >= sizeof kZstd && std::memcmp(bytes.data(), kZstd, sizeof kZstd) == 0) return "zstd";
  return {};
}

bool probe_compressed_raw(const FileMapping& file) { return !compressed_stream_kind(file).empty(); }

// NOLINTNEXTLINE(performance-unnecessary-value-param): the format table's opener signature
Expected<std::unique_ptr<PhysicalImage>> open_compressed_raw(std::shared_ptr<const FileMapping> file) {
  const std::string path = file->path().string();
  return make_error(Errc::unsupported,
                    "'" + path + "' (" + std::to_string(file->size()) + " bytes) is a " +
                        std::string(compressed_stream_kind(*file)) +
                        "-compressed stream, which cannot be read at random offsets: run `vmi-forensics convert " +
                        path + " OUT.vmic` to make a seekable container, then analyse OUT.vmic");
}

}  // namespace vmi
