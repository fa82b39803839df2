// The binary profile cache: arrays of PODs behind a small header, one zstd frame (with its content
// checksum) per array, so the arrays decompress straight into place, two at a time.
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <functional>
#include <thread>
#include <type_traits>

#include "vmi/image.hpp"
#include "vmi/profile_store.hpp"

namespace vmi {

namespace {

constexpr char kMagic[8] = {'V', 'M', 'I', 'P', 'R', 'O', 'F', '\0'};
// Bumped whenever the Profile arrays change shape; old entries are then rebuilt.
constexpr std::uint32_t kCacheFormat = 4;  // 4: identity (build id, PDB) in the tail and header
constexpr std::uint64_t kMaxPayload = std::uint64_t{1} << 30;
constexpr int kCompressionLevel = 6;

struct CacheHeader {
  char magic[8];
  std::uint32_t format;
  std::uint32_t banner_size;
  std::uint64_t payload_size;  // uncompressed
  // linux_banner - _text + 1, or 0: lets OS detection probe an image for this kernel without
  // decompressing anything.
  std::uint64_t banner_offset_plus_one;
  std::uint32_t identity_size;  // the identity key follows the banner: "linux/<build id>", ...
  std::uint32_t reserved;
};
static_assert(sizeof(CacheHeader) == 40);

static_assert(std::is_trivially_copyable_v<TypeDesc> && std::is_trivially_copyable_v<Member> &&
              std::is_trivially_copyable_v<Aggregate> && std::is_trivially_copyable_v<Symbol>);

// The profile's arrays, in payload order. Their byte sizes and their frames' sizes sit after the
// header, so the reader sizes every array first and decompresses each frame straight into its
// array: no second 10 MB copy, and frames split across two threads.
struct Tail {  // fixed-size profile fields after the arrays
  StrRef banner, producer, format_version, os, build_id, pdb_name, pdb_guid;
  std::uint32_t pdb_age;
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
  return ref_ok(p.banner_) && ref_ok(p.producer_) && ref_ok(p.format_version_) && ref_ok(p.os_) &&
         ref_ok(p.build_id_) && ref_ok(p.pdb_name_) && ref_ok(p.pdb_guid_);
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
  if (header.banner_size > bytes.size() - sizeof header ||
      header.identity_size > bytes.size() - sizeof header - header.banner_size || header.payload_size > kMaxPayload) {
    return make_error(Errc::bad_format, origin + ": header sizes are out of range");
  }
  return header;
}

}  // namespace

Expected<void> write_cached_profile(const std::filesystem::path& path, const Profile& profile) {
  // for_each_section serves reading and writing; storage(-1) only looks at the arrays.
  auto& p = const_cast<Profile&>(profile);
  Tail tail{profile.banner_,   profile.producer_, profile.format_version_, profile.os_,          profile.build_id_,
            profile.pdb_name_, profile.pdb_guid_, profile.pdb_age_,        profile.pointer_size_};
  std::uint64_t sizes[kSectionCount] = {};
  std::uint64_t frame_sizes[kSectionCount] = {};
  std::string compressed;
  std::size_t index = 0;
  std::string problem;
  ZSTD_CCtx* context = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, kCompressionLevel);
  ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1);
  for_each_section(p, tail, [&](auto&& storage, std::size_t) {
    const std::span<std::byte> bytes = storage(-1);
    const std::size_t at = compressed.size();
    compressed.resize(at + ZSTD_compressBound(bytes.size()));
    const std::size_t size =
        ZSTD_compress2(context, compressed.data() + at, compressed.size() - at, bytes.data(), bytes.size());
    if (ZSTD_isError(size)) problem = ZSTD_getErrorName(size);
    compressed.resize(at + (ZSTD_isError(size) ? 0 : size));
    sizes[index] = bytes.size();
    frame_sizes[index++] = ZSTD_isError(size) ? 0 : size;
  });
  ZSTD_freeCCtx(context);
  if (!problem.empty()) return make_error(Errc::io, "cannot compress profile cache entry: " + problem);
  std::uint64_t payload_size = 0;
  for (std::uint64_t size : sizes) payload_size += size;

  CacheHeader header{};
  std::memcpy(header.magic, kMagic, sizeof kMagic);
  header.format = kCacheFormat;
  const std::string_view banner = profile.banner();
  header.banner_size = static_cast<std::uint32_t>(banner.size());
  const std::string identity = profile.identity().key();
  header.identity_size = static_cast<std::uint32_t>(identity.size());
  header.payload_size = payload_size;
  const auto text = profile.symbol_address("_text");
  const auto linux_banner = profile.symbol_address("linux_banner");
  if (text && linux_banner && *linux_banner >= *text) header.banner_offset_plus_one = *linux_banner - *text + 1;

  // Write beside the target and rename, so a reader never sees half an entry.
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  const auto temporary = path.string() + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(&header), sizeof header);
    out.write(banner.data(), static_cast<std::streamsize>(banner.size()));
    out.write(identity.data(), static_cast<std::streamsize>(identity.size()));
    out.write(reinterpret_cast<const char*>(sizes), sizeof sizes);
    out.write(reinterpret_cast<const char*>(frame_sizes), sizeof frame_sizes);
    out.write(compressed.data(), static_cast<std::streamsize>(compressed.size()));
    if (!out) return make_error(Errc::io, "cannot write profile cache entry '" + temporary + "'");
  }
  std::filesystem::rename(temporary, path, ec);
  if (ec) return make_error(Errc::io, "cannot place profile cache entry '" + path.string() + "': " + ec.message());
  return {};
}

Expected<CachedProfileInfo> read_cached_info(const std::filesystem::path& path) {
  auto file = VMI_TRY(FileMapping::open(path));
  const std::string origin = "profile cache '" + path.string() + "'";
  const CacheHeader header = VMI_TRY(read_header(file->bytes(), origin));
  CachedProfileInfo info;
  const char* text = reinterpret_cast<const char*>(file->bytes().data()) + sizeof header;
  info.banner.assign(text, header.banner_size);
  info.identity_key.assign(text + header.banner_size, header.identity_size);
  if (header.banner_offset_plus_one != 0) info.banner_offset = header.banner_offset_plus_one - 1;
  return info;
}

Expected<Profile> read_cached_profile(const std::filesystem::path& path) {
  auto file = VMI_TRY(FileMapping::open(path));
  const std::string origin = "profile cache '" + path.string() + "'";
  const auto bytes = file->bytes();
  const CacheHeader header = VMI_TRY(read_header(bytes, origin));
  const std::size_t sizes_at = sizeof header + header.banner_size + header.identity_size;
  std::uint64_t sizes[kSectionCount] = {};
  std::uint64_t frame_sizes[kSectionCount] = {};
  if (bytes.size() - sizes_at < sizeof sizes + sizeof frame_sizes) {
    return make_error(Errc::truncated, origin + ": section table is cut short");
  }
  std::memcpy(sizes, bytes.data() + sizes_at, sizeof sizes);
  std::memcpy(frame_sizes, bytes.data() + sizes_at + sizeof sizes, sizeof frame_sizes);
  const auto frames = bytes.subspan(sizes_at + sizeof sizes + sizeof frame_sizes);
  std::uint64_t total = 0;
  std::uint64_t frames_total = 0;
  for (std::size_t i = 0; i < kSectionCount; ++i) {
    total += std::min(sizes[i], kMaxPayload);
    frames_total += std::min<std::uint64_t>(frame_sizes[i], frames.size() + 1);
  }
  if (total != header.payload_size || sizes[kSectionCount - 1] != sizeof(Tail) || frames_total != frames.size()) {
    return make_error(Errc::bad_format, origin + ": section sizes disagree with the header or the file");
  }

  // Size every array, then decompress each frame into its own.
  struct Section {
    std::span<std::byte> target;
    std::span<const std::byte> frame;
  };
  std::array<Section, kSectionCount> sections;
  Profile profile;
  Tail tail{};
  std::size_t index = 0;
  std::size_t frame_at = 0;
  std::string problem;
  for_each_section(profile, tail, [&](auto&& storage, std::size_t element) {
    const std::size_t i = index++;
    if (sizes[i] % element != 0) problem = "a section size is not a whole number of entries";
    if (!problem.empty()) return;
    sections[i] = Section{storage(static_cast<std::int64_t>(sizes[i])), frames.subspan(frame_at, frame_sizes[i])};
    frame_at += frame_sizes[i];
  });
  if (!problem.empty()) return make_error(Errc::bad_format, origin + ": damaged (" + problem + ")");
  auto decompress = [&sections](std::span<const std::size_t> which, std::string& failure) {
    ZSTD_DCtx* context = ZSTD_createDCtx();
    for (std::size_t i : which) {
      const Section& s = sections[i];
      // Single-shot decompression checks the frame's content checksum.
      const std::size_t got =
          ZSTD_decompressDCtx(context, s.target.data(), s.target.size(), s.frame.data(), s.frame.size());
      if (ZSTD_isError(got)) {
        failure = ZSTD_getErrorName(got);
      } else if (got != s.target.size()) {
        failure = "a section decompresses to " + std::to_string(got) + " bytes, not " + std::to_string(s.target.size());
      }
      if (!failure.empty()) break;
    }
    ZSTD_freeDCtx(context);
  };
  // Two threads, each given the largest section left while it has the lesser share.
  std::array<std::size_t, kSectionCount> order{};
  for (std::size_t i = 0; i < kSectionCount; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return sizes[a] > sizes[b]; });
  std::vector<std::size_t> here;
  std::vector<std::size_t> there;
  std::uint64_t here_bytes = 0;
  std::uint64_t there_bytes = 0;
  for (std::size_t i : order) {
    const bool to_helper = there_bytes <= here_bytes;
    (to_helper ? there : here).push_back(i);
    (to_helper ? there_bytes : here_bytes) += sizes[i];
  }
  std::string other_problem;
  {
    std::jthread helper(decompress, std::span<const std::size_t>(there), std::ref(other_problem));
    decompress(here, problem);
  }
  if (problem.empty()) problem = other_problem;
  if (!problem.empty()) return make_error(Errc::bad_format, origin + ": damaged (" + problem + ")");
  profile.banner_ = tail.banner;
  profile.producer_ = tail.producer;
  profile.format_version_ = tail.format_version;
  profile.os_ = tail.os;
  profile.build_id_ = tail.build_id;
  profile.pdb_name_ = tail.pdb_name;
  profile.pdb_guid_ = tail.pdb_guid;
  profile.pdb_age_ = tail.pdb_age;
  profile.pointer_size_ = tail.pointer_size;
  if (!indices_valid(profile)) return make_error(Errc::bad_format, origin + ": payload has out-of-range indices");
  return profile;
}

}  // namespace vmi
