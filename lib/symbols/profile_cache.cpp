// The binary profile cache: arrays of PODs behind a small header, one zstd frame with checksum.
#include <unistd.h>
#include <zstd.h>

#include <cstring>
#include <fstream>
#include <type_traits>

#include "vmi/image.hpp"
#include "vmi/profile_store.hpp"

namespace vmi {

namespace {

constexpr char kMagic[8] = {'V', 'M', 'I', 'P', 'R', 'O', 'F', '\0'};
// Bumped whenever the Profile arrays change shape; old entries are then rebuilt.
constexpr std::uint32_t kCacheFormat = 2;
constexpr std::uint64_t kMaxPayload = std::uint64_t{1} << 30;
constexpr int kCompressionLevel = 6;

struct CacheHeader {
  char magic[8];
  std::uint32_t format;
  std::uint32_t banner_size;
  std::uint64_t payload_size;  // uncompressed
};
static_assert(sizeof(CacheHeader) == 24);

static_assert(std::is_trivially_copyable_v<TypeDesc> && std::is_trivially_copyable_v<Member> &&
              std::is_trivially_copyable_v<Aggregate> && std::is_trivially_copyable_v<Symbol>);

// The profile's arrays, in payload order. Their byte sizes sit uncompressed after the header
// so the reader decompresses straight into correctly sized arrays: no second 10 MB copy.
struct Tail {  // fixed-size profile fields after the arrays
  StrRef banner, producer, format_version, os;
  std::uint32_t pointer_size;
};

constexpr std::size_t kSectionCount = 9;  // eight arrays and the tail

template <class T>
std::span<std::byte> bytes_of(std::vector<T>& items) {
  return std::as_writable_bytes(std::span(items));
}
inline std::span<std::byte> bytes_of(std::string& text) {
  return std::as_writable_bytes(std::span(text.data(), text.size()));
}

// Calls fn(resize, element_size) per section, where resize(n_bytes) sizes the section and
// returns its storage; with a negative size it returns the storage as it is.
template <class Fn>
void for_each_section(Profile& p, Tail& tail, Fn&& fn) {
  fn(
      [&](std::int64_t n) {
        if (n >= 0) p.strings.resize(static_cast<std::size_t>(n));
        return bytes_of(p.strings);
      },
      std::size_t{1});
  auto array = [&](auto& items) {
    using T = typename std::remove_reference_t<decltype(items)>::value_type;
    fn(
        [&](std::int64_t n) {
          if (n >= 0) items.resize(static_cast<std::size_t>(n) / sizeof(T));
          return bytes_of(items);
        },
        sizeof(T));
  };
  array(p.types);
  array(p.members_);
  array(p.aggregates);
  array(p.base_types);
  array(p.enums);
  array(p.enumerators_);
  array(p.symbols);
  auto tail_bytes = std::as_writable_bytes(std::span(&tail, 1));
  fn([&](std::int64_t) { return tail_bytes; }, sizeof tail);
}

// Every index in a loaded profile is checked once, so lookups never leave their arrays.
bool indices_valid(const Profile& p) {
  auto ref_ok = [&](StrRef r) { return r.offset <= p.strings.size() && r.size <= p.strings.size() - r.offset; };
  auto type_ok = [&](TypeId t) { return t == kNoType || t < p.types.size(); };
  for (const TypeDesc& t : p.types) {
    if (!ref_ok(t.name) || !type_ok(t.subtype)) return false;
  }
  for (const Member& m : p.members_) {
    if (!ref_ok(m.name) || m.type >= p.types.size()) return false;
  }
  for (const Aggregate& a : p.aggregates) {
    if (!ref_ok(a.name) || a.first_member > p.members_.size() || a.member_count > p.members_.size() - a.first_member)
      return false;
  }
  for (const BaseType& b : p.base_types) {
    if (!ref_ok(b.name)) return false;
  }
  for (const EnumType& e : p.enums) {
    if (!ref_ok(e.name) || !ref_ok(e.base) || e.first_enumerator > p.enumerators_.size() ||
        e.enumerator_count > p.enumerators_.size() - e.first_enumerator) {
      return false;
    }
  }
  for (const Enumerator& e : p.enumerators_) {
    if (!ref_ok(e.name)) return false;
  }
  for (const Symbol& s : p.symbols) {
    if (!ref_ok(s.name) || !ref_ok(s.constant_data) || !type_ok(s.type)) return false;
  }
  return ref_ok(p.banner_) && ref_ok(p.producer_) && ref_ok(p.format_version_) && ref_ok(p.os_);
}

Expected<CacheHeader> read_header(std::span<const std::byte> bytes, const std::string& origin) {
  CacheHeader header{};
  if (bytes.size() < sizeof header) return make_error(Errc::truncated, origin + ": shorter than its header");
  std::memcpy(&header, bytes.data(), sizeof header);
  if (std::memcmp(header.magic, kMagic, sizeof kMagic) != 0)
    return make_error(Errc::bad_format, origin + ": not a profile cache entry");
  if (header.format != kCacheFormat) {
    return make_error(Errc::unsupported, origin + ": cache format " + std::to_string(header.format) + ", expected " +
                                             std::to_string(kCacheFormat));
  }
  if (header.banner_size > bytes.size() - sizeof header || header.payload_size > kMaxPayload) {
    return make_error(Errc::bad_format, origin + ": header sizes are out of range");
  }
  return header;
}

}  // namespace

Expected<void> write_cached_profile(const std::filesystem::path& path, const Profile& profile) {
  // for_each_section serves reading and writing; storage(-1) only looks at the arrays.
  auto& p = const_cast<Profile&>(profile);
  Tail tail{profile.banner_, profile.producer_, profile.format_version_, profile.os_, profile.pointer_size_};
  std::uint64_t sizes[kSectionCount] = {};
  std::string payload;
  std::size_t index = 0;
  for_each_section(p, tail, [&](auto&& storage, std::size_t) {
    const std::span<std::byte> bytes = storage(-1);
    sizes[index++] = bytes.size();
    payload.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  });

  std::string compressed(ZSTD_compressBound(payload.size()), '\0');
  ZSTD_CCtx* context = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, kCompressionLevel);
  ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1);
  const std::size_t size =
      ZSTD_compress2(context, compressed.data(), compressed.size(), payload.data(), payload.size());
  ZSTD_freeCCtx(context);
  if (ZSTD_isError(size))
    return make_error(Errc::io, "cannot compress profile cache entry: " + std::string(ZSTD_getErrorName(size)));
  compressed.resize(size);

  CacheHeader header{};
  std::memcpy(header.magic, kMagic, sizeof kMagic);
  header.format = kCacheFormat;
  const std::string_view banner = profile.banner();
  header.banner_size = static_cast<std::uint32_t>(banner.size());
  header.payload_size = payload.size();

  // Write beside the target and rename, so a reader never sees half an entry.
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  const auto temporary = path.string() + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(&header), sizeof header);
    out.write(banner.data(), static_cast<std::streamsize>(banner.size()));
    out.write(reinterpret_cast<const char*>(sizes), sizeof sizes);
    out.write(compressed.data(), static_cast<std::streamsize>(compressed.size()));
    if (!out) return make_error(Errc::io, "cannot write profile cache entry '" + temporary + "'");
  }
  std::filesystem::rename(temporary, path, ec);
  if (ec) return make_error(Errc::io, "cannot place profile cache entry '" + path.string() + "': " + ec.message());
  return {};
}

Expected<std::string> read_cached_banner(const std::filesystem::path& path) {
  auto file = VMI_TRY(FileMapping::open(path));
  const std::string origin = "profile cache '" + path.string() + "'";
  const CacheHeader header = VMI_TRY(read_header(file->bytes(), origin));
  return std::string(reinterpret_cast<const char*>(file->bytes().data()) + sizeof header, header.banner_size);
}

Expected<Profile> read_cached_profile(const std::filesystem::path& path) {
  auto file = VMI_TRY(FileMapping::open(path));
  const std::string origin = "profile cache '" + path.string() + "'";
  const auto bytes = file->bytes();
  const CacheHeader header = VMI_TRY(read_header(bytes, origin));
  const std::size_t sizes_at = sizeof header + header.banner_size;
  std::uint64_t sizes[kSectionCount] = {};
  if (bytes.size() - sizes_at < sizeof sizes)
    return make_error(Errc::truncated, origin + ": section table is cut short");
  std::memcpy(sizes, bytes.data() + sizes_at, sizeof sizes);
  std::uint64_t total = 0;
  for (std::uint64_t size : sizes) total += std::min(size, kMaxPayload);
  if (total != header.payload_size || sizes[kSectionCount - 1] != sizeof(Tail)) {
    return make_error(Errc::bad_format, origin + ": section sizes disagree with the header");
  }
  const auto frame = bytes.subspan(sizes_at + sizeof sizes);

  Profile profile;
  Tail tail{};
  ZSTD_DCtx* context = ZSTD_createDCtx();
  ZSTD_inBuffer in{frame.data(), frame.size(), 0};
  std::size_t index = 0;
  std::size_t last_status = 1;  // 0 once zstd has finished the frame and checked its checksum
  std::string problem;
  for_each_section(profile, tail, [&](auto&& storage, std::size_t element) {
    const std::uint64_t size = sizes[index++];
    if (!problem.empty()) return;
    if (size % element != 0) {
      problem = "a section size is not a whole number of entries";
      return;
    }
    const std::span<std::byte> target = storage(static_cast<std::int64_t>(size));
    ZSTD_outBuffer out{target.data(), target.size(), 0};
    while (out.pos < out.size && problem.empty()) {
      const std::size_t status = ZSTD_decompressStream(context, &out, &in);
      last_status = status;
      if (ZSTD_isError(status)) {
        problem = ZSTD_getErrorName(status);
      } else if (out.pos < out.size && (status == 0 || in.pos == in.size)) {
        problem = "payload ends early";
      }
    }
  });
  if (problem.empty() && last_status != 0) {
    // Finish the frame so zstd checks its content checksum over everything read.
    std::byte spare[1];
    ZSTD_outBuffer out{spare, sizeof spare, 0};
    const std::size_t status = ZSTD_decompressStream(context, &out, &in);
    if (ZSTD_isError(status))
      problem = ZSTD_getErrorName(status);
    else if (status != 0 || out.pos != 0)
      problem = "payload does not end where its sections do";
  }
  ZSTD_freeDCtx(context);
  if (!problem.empty()) return make_error(Errc::bad_format, origin + ": damaged (" + problem + ")");
  profile.banner_ = tail.banner;
  profile.producer_ = tail.producer;
  profile.format_version_ = tail.format_version;
  profile.os_ = tail.os;
  profile.pointer_size_ = tail.pointer_size;
  if (!indices_valid(profile)) return make_error(Errc::bad_format, origin + ": payload has out-of-range indices");
  return profile;
}

}  // namespace vmi
