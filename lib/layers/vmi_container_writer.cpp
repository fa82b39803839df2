// Writes the .vmic container (layout in vmi_container.hpp) from any readable image, or from a
// raw image compressed as one gzip/zstd stream, one chunk at a time so RSS stays bounded.
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "layers/formats.hpp"
#include "layers/vmi_container.hpp"
#include "vmi/convert.hpp"

namespace vmi {

namespace {

using namespace container;
namespace fs = std::filesystem;

constexpr std::uint64_t kReleaseEvery = 16u << 20;  // source bytes consumed between page releases

struct CctxDeleter {
  void operator()(ZSTD_CCtx* context) const { ZSTD_freeCCtx(context); }
};
struct DstreamDeleter {
  void operator()(ZSTD_DStream* stream) const { ZSTD_freeDStream(stream); }
};

template <class T>
void append(std::string& out, const T& value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}
void append_string(std::string& out, std::string_view text) {
  append(out, static_cast<std::uint32_t>(text.size()));
  out.append(text);
}

// The output file: written sequentially, header patched last, renamed into place when done.
class Output {
 public:
  explicit Output(fs::path final_path) : final_(std::move(final_path)), partial_(final_.string() + ".partial") {}
  ~Output() {
    if (fd_ >= 0) ::close(fd_);
    if (!done_) fs::remove(partial_, ignored_);
  }
  Expected<void> open() {
    if (fs::exists(final_, ignored_))
      return make_error(Errc::invalid_argument, "output '" + final_.string() + "' already exists; not overwriting it");
    fd_ = ::open(partial_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) return io_error("cannot create");
    return {};
  }
  Expected<void> write(std::span<const std::byte> bytes) {
    for (std::size_t done = 0; done < bytes.size();) {
      const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return io_error("cannot write at offset " + hex(offset_ + done) + " of");
      done += static_cast<std::size_t>(n);
    }
    offset_ += bytes.size();
    return {};
  }
  Expected<void> write(const std::string& bytes) { return write(std::as_bytes(std::span(bytes))); }
  Expected<void> finish(const Header& header) {
    if (::pwrite(fd_, &header, sizeof header, 0) != static_cast<ssize_t>(sizeof header))
      return io_error("cannot write the header of");
    if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
      fd_ = -1;
      return io_error("cannot flush");
    }
    fd_ = -1;
    fs::rename(partial_, final_, ignored_);
    if (ignored_)
      return make_error(
          Errc::io, "cannot rename '" + partial_.string() + "' to '" + final_.string() + "': " + ignored_.message());
    done_ = true;
    return {};
  }
  std::uint64_t offset() const { return offset_; }

 private:
  Error io_error(const std::string& what) const {
    return make_error(Errc::io, what + " '" + partial_.string() + "': " + std::strerror(errno));
  }
  fs::path final_, partial_;
  int fd_ = -1;
  std::uint64_t offset_ = 0;
  bool done_ = false;
  std::error_code ignored_;
};

// Compresses chunks and records the index as they arrive.
class ChunkWriter {
 public:
  ChunkWriter(Output& out, const ConvertOptions& options) : out_(out), options_(options), context_(ZSTD_createCCtx()) {
    frame_.resize(ZSTD_compressBound(options.chunk_size));
  }
  Expected<void> add(Addr address, std::span<const std::byte> data) {
    if (!context_) return make_error(Errc::io, "cannot allocate a zstd compression context");
    if (index_.size() >= kMaxChunks)
      return make_error(Errc::limit_exceeded, "more than " + std::to_string(kMaxChunks) + " chunks");
    const std::size_t size =
        ZSTD_compressCCtx(context_.get(), frame_.data(), frame_.size(), data.data(), data.size(), options_.level);
    if (ZSTD_isError(size))
      return make_error(Errc::io,
                        "zstd: " + std::string(ZSTD_getErrorName(size)) + " compressing physical " + hex(address));
    index_.push_back({address, out_.offset(), static_cast<std::uint32_t>(size), crc32(data)});
    return out_.write(std::span(frame_).first(size));
  }
  const std::vector<IndexEntry>& index() const { return index_; }

 private:
  Output& out_;
  ConvertOptions options_;
  std::unique_ptr<ZSTD_CCtx, CctxDeleter> context_;
  std::vector<std::byte> frame_;
  std::vector<IndexEntry> index_;
};

// Every chunk window the image's ranges touch, holes inside a window zero-filled.
Expected<void> convert_image(const PhysicalImage& image, ChunkWriter& chunks, std::uint32_t chunk_size) {
  std::vector<std::byte> buffer(chunk_size);
  const std::uint64_t mask = ~std::uint64_t{chunk_size - 1};
  const auto ranges = image.ranges();
  std::uint64_t since_release = 0;
  std::optional<Addr> last_window;
  for (std::size_t r = 0; r < ranges.size(); ++r) {
    for (Addr window = ranges[r].begin & mask; window < ranges[r].end; window += chunk_size) {
      if (last_window == window) continue;  // already written with the previous range
      std::fill(buffer.begin(), buffer.end(), std::byte{0});
      // Fill from every range that intersects this window (later ranges may share it).
      for (std::size_t k = r; k < ranges.size() && ranges[k].begin < window + chunk_size; ++k) {
        const Addr begin = std::max(ranges[k].begin, window);
        const Addr end = std::min(ranges[k].end, window + chunk_size);
        if (begin >= end) continue;
        VMI_TRY_VOID(read_exact(image, begin, std::span(buffer).subspan(begin - window, end - begin)));
      }
      VMI_TRY_VOID(chunks.add(window, buffer));
      last_window = window;
      since_release += chunk_size;
      if (since_release >= kReleaseEvery && image.file() != nullptr) {
        image.file()->release(0, image.file()->size());
        since_release = 0;
      }
      if (window > ~std::uint64_t{0} - chunk_size) break;
    }
  }
  return {};
}

// A raw image inside one gzip or zstd stream: decompressed in order into consecutive chunks.
Expected<Range> convert_stream(const FileMapping& file, std::string_view kind, ChunkWriter& chunks,
                               std::uint32_t chunk_size) {
  const std::string origin = std::string(kind) + " stream '" + file.path().string() + "'";
  const auto input = file.bytes();
  std::vector<std::byte> buffer(chunk_size);
  std::size_t filled = 0;
  Addr address = 0;
  std::uint64_t consumed = 0;
  std::uint64_t released = 0;
  auto flush = [&]() -> Expected<void> {
    // Only a raw image is read this way; a compressed format with its own headers would be
    // stored as if it were memory.
    if (address == 0 && filled >= 4 &&
        (std::memcmp(buffer.data(),
                     "\x7f"
                     "ELF",
                     4) == 0 ||
         std::memcmp(buffer.data(), "EMiL", 4) == 0)) {
      return make_error(Errc::unsupported,
                        origin + " holds " +
                            (std::memcmp(buffer.data(), "EMiL", 4) == 0 ? "a LiME dump" : "an ELF core") +
                            ", not a raw image: decompress it and open or convert the result");
    }
    std::fill(buffer.begin() + static_cast<std::ptrdiff_t>(filled), buffer.end(), std::byte{0});
    VMI_TRY_VOID(chunks.add(address, buffer));
    address += filled;
    filled = 0;
    if (consumed - released >= kReleaseEvery) {
      file.release(0, consumed);
      released = consumed;
    }
    return {};
  };
  if (kind == "zstd") {
    std::unique_ptr<ZSTD_DStream, DstreamDeleter> stream(ZSTD_createDStream());
    ZSTD_inBuffer in{input.data(), input.size(), 0};
    std::size_t last = 1;
    while (in.pos < in.size || last != 0) {
      ZSTD_outBuffer out{buffer.data() + filled, buffer.size() - filled, 0};
      const std::size_t before = in.pos;
      last = ZSTD_decompressStream(stream.get(), &out, &in);
      if (ZSTD_isError(last))
        return make_error(Errc::bad_format,
                          origin + ": zstd: " + ZSTD_getErrorName(last) + " near input offset " + hex(in.pos));
      filled += out.pos;
      consumed = in.pos;
      if (filled == buffer.size()) VMI_TRY_VOID(flush());
      if (in.pos == in.size && out.pos == 0 && before == in.pos) {
        if (last != 0)
          return make_error(Errc::truncated, origin + ": stream ends inside a frame at offset " + hex(in.size));
        break;
      }
    }
  } else {
    z_stream stream{};
    if (inflateInit2(&stream, 15 + 16) != Z_OK) return make_error(Errc::io, origin + ": cannot initialise zlib");
    std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&stream, inflateEnd);
    std::uint64_t offset = 0;
    int status = Z_OK;
    while (true) {
      const std::size_t step = std::min<std::uint64_t>(input.size() - offset, 1u << 30);
      stream.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(input.data() + offset));
      stream.avail_in = static_cast<uInt>(step);
      stream.next_out = reinterpret_cast<Bytef*>(buffer.data() + filled);
      stream.avail_out = static_cast<uInt>(buffer.size() - filled);
      status = inflate(&stream, Z_NO_FLUSH);
      offset += step - stream.avail_in;
      filled = buffer.size() - stream.avail_out;
      consumed = offset;
      if (status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR) {
        return make_error(Errc::bad_format,
                          origin + ": gzip: " + (stream.msg ? stream.msg : "error " + std::to_string(status)) +
                              " near input offset " + hex(offset));
      }
      if (filled == buffer.size()) VMI_TRY_VOID(flush());
      if (status == Z_STREAM_END) {
        if (offset == input.size()) break;
        inflateReset(&stream);  // concatenated members (pigz, cat a.gz b.gz)
      } else if (status == Z_BUF_ERROR && offset == input.size() && filled < buffer.size()) {
        return make_error(Errc::truncated, origin + ": stream ends before its end marker at offset " + hex(offset));
      }
    }
  }
  if (filled > 0) VMI_TRY_VOID(flush());
  if (address == 0) return make_error(Errc::bad_format, origin + ": decompresses to nothing");
  return Range{0, address};
}

}  // namespace

Expected<ConvertStats> convert_to_container(const fs::path& input, const fs::path& output,
                                            const ConvertOptions& options) {
  if (options.chunk_size < kMinChunkSize || options.chunk_size > kMaxChunkSize ||
      (options.chunk_size & (options.chunk_size - 1)) != 0) {
    return make_error(Errc::invalid_argument, "chunk size " + hex(options.chunk_size) + " is not a power of two in " +
                                                  hex(kMinChunkSize) + ".." + hex(kMaxChunkSize));
  }
  if (options.level < 1 || options.level > ZSTD_maxCLevel())
    return make_error(Errc::invalid_argument, "zstd level " + std::to_string(options.level) + " is not in 1.." +
                                                  std::to_string(ZSTD_maxCLevel()));
  auto file = VMI_TRY(FileMapping::open(input));
  Output out(output);
  VMI_TRY_VOID(out.open());
  Header header{};
  VMI_TRY_VOID(out.write(std::as_bytes(std::span(&header, 1))));  // placeholder, patched by finish()
  ChunkWriter chunks(out, options);

  std::vector<Range> ranges;
  std::string metadata;
  ConvertStats stats;
  if (const auto kind = compressed_stream_kind(*file); !kind.empty()) {
    ranges.push_back(VMI_TRY(convert_stream(*file, kind, chunks, options.chunk_size)));
    stats.source_format = "raw (" + std::string(kind) + ")";
    append_string(metadata, stats.source_format);
    append(metadata, std::uint32_t{0});  // no vCPU state in a raw image
    append(metadata, std::uint32_t{0});
  } else {
    file.reset();
    auto image = VMI_TRY(open_image(input));
    VMI_TRY_VOID(convert_image(*image, chunks, options.chunk_size));
    ranges.assign(image->ranges().begin(), image->ranges().end());
    // Re-converting a container keeps the original source's name, not "vmi-container".
    auto facts = image->facts();
    stats.source_format = std::string(image->format());
    if (stats.source_format == "vmi-container") {
      for (const auto& [name, value] : facts) {
        if (name == "source format") stats.source_format = value;
      }
      std::erase_if(facts,
                    [](const auto& fact) { return fact.first == "source format" || fact.first == "container chunks"; });
    }
    append_string(metadata, stats.source_format);
    const auto cpus = image->cpu_states();
    append(metadata, static_cast<std::uint32_t>(cpus.size()));
    for (const CpuState& cpu : cpus) {
      append(metadata, cpu.index);
      append(metadata, static_cast<std::uint32_t>(cpu.registers.size()));
      for (const auto& [name, value] : cpu.registers) {
        append_string(metadata, name);
        append(metadata, value);
      }
    }
    append(metadata, static_cast<std::uint32_t>(facts.size()));
    for (const auto& [name, value] : facts) {
      append_string(metadata, name);
      append_string(metadata, value);
    }
  }

  std::string ranges_table;
  std::string index_table;
  for (const Range& r : ranges) append(ranges_table, RangeEntry{r.begin, r.end});
  for (const IndexEntry& e : chunks.index()) append(index_table, e);
  std::memcpy(header.magic, kMagic, sizeof kMagic);
  header.version = kVersion;
  header.header_size = sizeof(Header);
  header.chunk_size = options.chunk_size;
  header.chunk_count = chunks.index().size();
  header.range_count = ranges.size();
  header.ranges_offset = out.offset();
  header.ranges_crc = crc32(std::as_bytes(std::span(ranges_table)));
  VMI_TRY_VOID(out.write(ranges_table));
  header.index_offset = out.offset();
  header.index_crc = crc32(std::as_bytes(std::span(index_table)));
  VMI_TRY_VOID(out.write(index_table));
  header.metadata_offset = out.offset();
  header.metadata_size = metadata.size();
  header.metadata_crc = crc32(std::as_bytes(std::span(metadata)));
  VMI_TRY_VOID(out.write(metadata));
  header.header_crc = crc32(std::as_bytes(std::span(&header, 1)).first(offsetof(Header, header_crc)));
  stats.chunks = chunks.index().size();
  for (const Range& r : ranges) stats.guest_bytes += r.size();
  stats.output_bytes = out.offset();
  VMI_TRY_VOID(out.finish(header));
  return stats;
}

}  // namespace vmi
