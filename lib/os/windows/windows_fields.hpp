// Field kinds every Windows walker reads: UNICODE_STRINGs and FILETIMEs, each through a
// FieldReader so a failed read is a warning naming the owner, the field and its address.
#pragma once

#include <string>

#include "os/field_reader.hpp"
#include "vmi/profile.hpp"
#include "vmi/value.hpp"

namespace vmi::windows_objects {

struct UnicodeStringLayout {
  std::uint32_t length = 0, buffer = 0;
  static Expected<UnicodeStringLayout> bind(const Profile& profile);
};

// The text of the UNICODE_STRING at `at` (its buffer read through the same reader's layer), as
// UTF-8; unpaired surrogates become U+FFFD.
Maybe<std::string> read_unicode_string(const FieldReader& reader, const UnicodeStringLayout& layout,
                                       std::string_view field, Addr at);

// A FILETIME (100 ns since 1601) as ns since the Unix epoch. Zero (never set) is not applicable;
// a value ns since the epoch cannot hold (before 1677, after 2262) is garbage, reported so.
Maybe<std::int64_t> read_filetime(const FieldReader& reader, std::string_view field, Addr at);

// "process 0xffff... (pid 42)": whose field a warning is about.
std::string process_owner(Addr process, std::optional<std::int64_t> pid);

}  // namespace vmi::windows_objects
