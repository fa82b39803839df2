// liblzma and zstd streaming decoders behind one call.
#include "symbols/decompress.hpp"

#include <lzma.h>
#include <zstd.h>

#include <cstring>

namespace vmi {

Compression detect_compression(std::span<const std::byte> head) {
  static constexpr unsigned char kXz[] = {0xFD, '7', 'z', 'X', 'Z', 0x00};
  static constexpr unsigned char kZstd[] = {0x28, 0xB5, 0x2F, 0xFD};
  if (head.size() >= sizeof kXz && std::memcmp(head.data(), kXz, sizeof kXz) == 0) return Compression::xz;
  if (head.size() >= sizeof kZstd && std::memcmp(head.data(), kZstd, sizeof kZstd) == 0) return Compression::zstd;
  return Compression::none;
}

namespace {

constexpr std::size_t kChunk = 1 << 20;

Expected<void> grow(std::string& out, std::size_t used, std::size_t padding, std::size_t max_size,
                    std::string_view origin) {
  if (used >= max_size) {
    return make_error(Errc::limit_exceeded,
                      std::string(origin) + ": decompresses past the cap of " + std::to_string(max_size) + " bytes");
  }
  out.resize(std::min(max_size, used + kChunk) + padding);
  return {};
}

Expected<void> decompress_xz(std::span<const std::byte> input, std::string& out, std::size_t padding,
                             std::size_t max_size, std::string_view origin) {
  lzma_stream stream = LZMA_STREAM_INIT;
  if (lzma_stream_decoder(&stream, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK) {
    return make_error(Errc::unsupported, std::string(origin) + ": cannot start the xz decoder");
  }
  stream.next_in = reinterpret_cast<const uint8_t*>(input.data());
  stream.avail_in = input.size();
  std::size_t used = 0;
  lzma_ret status = LZMA_OK;
  while (status == LZMA_OK) {
    if (auto grown = grow(out, used, padding, max_size, origin); !grown) {
      lzma_end(&stream);
      return grown;
    }
    stream.next_out = reinterpret_cast<uint8_t*>(out.data() + used);
    stream.avail_out = out.size() - padding - used;
    status = lzma_code(&stream, LZMA_FINISH);
    used = out.size() - padding - stream.avail_out;
  }
  const auto consumed = input.size() - stream.avail_in;
  lzma_end(&stream);
  if (status != LZMA_STREAM_END) {
    return make_error(Errc::bad_format, std::string(origin) + ": xz data is damaged near compressed offset " +
                                            std::to_string(consumed) + " (liblzma status " + std::to_string(status) +
                                            ")");
  }
  out.resize(used + padding);
  out.resize(used);  // capacity keeps the padding
  return {};
}

Expected<void> decompress_zstd(std::span<const std::byte> input, std::string& out, std::size_t padding,
                               std::size_t max_size, std::string_view origin) {
  ZSTD_DStream* stream = ZSTD_createDStream();
  if (stream == nullptr) return make_error(Errc::unsupported, std::string(origin) + ": cannot start the zstd decoder");
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  std::size_t used = 0;
  std::size_t status = 1;
  while (status != 0) {
    if (auto grown = grow(out, used, padding, max_size, origin); !grown) {
      ZSTD_freeDStream(stream);
      return grown;
    }
    ZSTD_outBuffer output{out.data(), out.size() - padding, used};
    status = ZSTD_decompressStream(stream, &output, &in);
    used = output.pos;
    if (ZSTD_isError(status)) {
      ZSTD_freeDStream(stream);
      return make_error(Errc::bad_format, std::string(origin) + ": zstd data is damaged near compressed offset " +
                                              std::to_string(in.pos) + " (" + ZSTD_getErrorName(status) + ")");
    }
    if (status != 0 && in.pos == in.size && output.pos < output.size) {
      ZSTD_freeDStream(stream);
      return make_error(Errc::truncated,
                        std::string(origin) + ": zstd data ends early at compressed offset " + std::to_string(in.pos));
    }
  }
  ZSTD_freeDStream(stream);
  out.resize(used + padding);
  out.resize(used);
  return {};
}

}  // namespace

Expected<void> decompress(std::span<const std::byte> input, Compression kind, std::string& out, std::size_t padding,
                          std::size_t max_size, std::string_view origin) {
  switch (kind) {
    case Compression::xz:
      return decompress_xz(input, out, padding, max_size, origin);
    case Compression::zstd:
      return decompress_zstd(input, out, padding, max_size, origin);
    case Compression::none:
      break;
  }
  if (input.size() > max_size) {
    return make_error(Errc::limit_exceeded,
                      std::string(origin) + ": larger than the cap of " + std::to_string(max_size) + " bytes");
  }
  out.reserve(input.size() + padding);
  out.assign(reinterpret_cast<const char*>(input.data()), input.size());
  return {};
}

}  // namespace vmi

namespace vmi {

Expected<void> compress(std::string_view input, Compression kind, std::string& out) {
  switch (kind) {
    case Compression::none:
      out.assign(input);
      return {};
    case Compression::xz: {
      out.resize(lzma_stream_buffer_bound(input.size()));
      std::size_t written = 0;
      const lzma_ret status =
          lzma_easy_buffer_encode(6, LZMA_CHECK_CRC64, nullptr, reinterpret_cast<const uint8_t*>(input.data()),
                                  input.size(), reinterpret_cast<uint8_t*>(out.data()), &written, out.size());
      if (status != LZMA_OK)
        return make_error(Errc::io, "xz compression failed (liblzma status " + std::to_string(status) + ")");
      out.resize(written);
      return {};
    }
    case Compression::zstd: {
      out.resize(ZSTD_compressBound(input.size()));
      ZSTD_CCtx* context = ZSTD_createCCtx();
      ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, 19);
      ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1);
      const std::size_t written = ZSTD_compress2(context, out.data(), out.size(), input.data(), input.size());
      ZSTD_freeCCtx(context);
      if (ZSTD_isError(written))
        return make_error(Errc::io, std::string("zstd compression failed: ") + ZSTD_getErrorName(written));
      out.resize(written);
      return {};
    }
  }
  return {};
}

}  // namespace vmi
