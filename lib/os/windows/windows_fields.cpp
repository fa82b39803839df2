// UTF-16LE to UTF-8, and FILETIME to Unix time, for the Windows walkers.
#include "os/windows/windows_fields.hpp"

#include <algorithm>
#include <cstdint>

#include "vmi/object.hpp"

namespace vmi::windows_objects {

namespace {

// FILETIME counts 100 ns from 1601-01-01; the Unix epoch is 11644473600 s later.
constexpr std::int64_t kFiletimeUnixEpoch = 116444736000000000;
constexpr std::int64_t kMaxSinceEpoch = INT64_MAX / 100;  // in 100 ns units: ns stay within int64
constexpr std::size_t kMaxUnicodeBytes = 0xfffe;          // UNICODE_STRING.Length is 16 bits

void append_utf8(std::string& text, std::uint32_t c) {
  if (c < 0x80) {
    text += static_cast<char>(c);
  } else if (c < 0x800) {
    text += static_cast<char>(0xc0 | (c >> 6));
    text += static_cast<char>(0x80 | (c & 0x3f));
  } else if (c < 0x10000) {
    text += static_cast<char>(0xe0 | (c >> 12));
    text += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    text += static_cast<char>(0x80 | (c & 0x3f));
  } else {
    text += static_cast<char>(0xf0 | (c >> 18));
    text += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
    text += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    text += static_cast<char>(0x80 | (c & 0x3f));
  }
}

}  // namespace

Expected<UnicodeStringLayout> UnicodeStringLayout::bind(const Profile& profile) {
  UnicodeStringLayout l;
  l.length = VMI_TRY(bind_offset(profile, "_UNICODE_STRING", "Length"));
  l.buffer = VMI_TRY(bind_offset(profile, "_UNICODE_STRING", "Buffer"));
  return l;
}

Maybe<std::string> read_unicode_string(const FieldReader& reader, const UnicodeStringLayout& layout,
                                       std::string_view field, Addr at) {
  const auto length = reader.read<std::uint16_t>(std::string(field) + ".Length", at + layout.length);
  const auto buffer = reader.read<std::uint64_t>(std::string(field) + ".Buffer", at + layout.buffer);
  if (!length || !buffer) return Absence::unreadable;
  if (*length == 0) return std::string();
  const auto bytes =
      reader.bytes(std::string(field) + " text", *buffer, std::min<std::size_t>(*length & ~1u, kMaxUnicodeBytes));
  if (!bytes) return Absence::unreadable;
  auto unit = [&](std::size_t i) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>((*bytes)[i]) |
                                      (static_cast<unsigned char>((*bytes)[i + 1]) << 8));
  };
  std::string text;
  for (std::size_t i = 0; i + 1 < bytes->size(); i += 2) {
    std::uint32_t c = unit(i);
    if (c >= 0xd800 && c < 0xdc00 && i + 3 < bytes->size() && unit(i + 2) >= 0xdc00 && unit(i + 2) < 0xe000) {
      c = 0x10000 + ((c - 0xd800) << 10) + (unit(i + 2) - 0xdc00);
      i += 2;
    } else if (c >= 0xd800 && c < 0xe000) {
      c = 0xfffd;
    }
    append_utf8(text, c);
  }
  return text;
}

Maybe<std::int64_t> read_filetime(const FieldReader& reader, std::string_view field, Addr at) {
  const auto filetime = reader.read<std::int64_t>(field, at);
  if (!filetime) return Absence::unreadable;
  if (*filetime == 0) return Absence::not_applicable;
  if (*filetime < kFiletimeUnixEpoch - kMaxSinceEpoch || *filetime > kFiletimeUnixEpoch + kMaxSinceEpoch) {
    reader.warn(field, at, "holds " + hex(static_cast<std::uint64_t>(*filetime)) + ", not a time");
    return Absence::unreadable;
  }
  return (*filetime - kFiletimeUnixEpoch) * 100;
}

std::string process_owner(Addr process, std::optional<std::int64_t> pid) {
  return "process " + hex(process) + (pid ? " (pid " + std::to_string(*pid) + ")" : "");
}

}  // namespace vmi::windows_objects
