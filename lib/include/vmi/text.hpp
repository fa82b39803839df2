// Bytes from the guest (a process's arguments and environment, kernel log lines) as text cells:
// UTF-8 passes through, every byte that is not part of a well-formed UTF-8 sequence becomes
// "\xNN" (what Python's decode("utf-8", "backslashreplace") writes), so nothing is dropped or
// guessed.
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>

namespace vmi {

// The length of the well-formed UTF-8 sequence at the start of `bytes` (Unicode table 3-7:
// no overlong forms, no surrogates, nothing past U+10FFFF), or 0 when there is none.
inline std::size_t utf8_sequence_length(std::string_view bytes) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(bytes[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  std::size_t length = 0;
  unsigned char low = 0x80;  // the range of the second byte
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (bytes.size() < length || byte(1) < low || byte(1) > high) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return length;
}

inline std::string escaped_text(std::string_view bytes) {
  std::string text;
  text.reserve(bytes.size());
  while (!bytes.empty()) {
    if (const std::size_t length = utf8_sequence_length(bytes); length != 0) {
      text.append(bytes.substr(0, length));
      bytes.remove_prefix(length);
      continue;
    }
    char escape[5];
    std::snprintf(escape, sizeof escape, "\\x%02x", static_cast<unsigned char>(bytes.front()));
    text += escape;
    bytes.remove_prefix(1);
  }
  return text;
}

// An argument area (/proc/PID/cmdline's NUL-separated strings) as ps shows it: the strings
// joined by spaces, bytes escaped.
inline std::string command_line_text(std::string bytes) {
  if (!bytes.empty() && bytes.back() == '\0') bytes.pop_back();
  std::ranges::replace(bytes, '\0', ' ');
  return escaped_text(bytes);
}

}  // namespace vmi
