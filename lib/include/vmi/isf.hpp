// Volatility 3 Intermediate Symbol Format (ISF) JSON: reading it unchanged and writing it.
#pragma once

#include <filesystem>
#include <ostream>
#include <string_view>

#include "vmi/expected.hpp"
#include "vmi/profile.hpp"

namespace vmi {

// Parses ISF JSON text (already decompressed). `origin` names the source in errors.
Expected<Profile> parse_isf(std::string_view json, std::string_view origin);

// Loads a .json, .json.xz or .json.zst ISF file (compression detected from content).
Expected<Profile> load_isf_file(const std::filesystem::path& path);

// Writes the profile as ISF JSON (format 6.2.0) that Volatility 3 can load.
Expected<void> write_isf(const Profile& profile, std::ostream& out);

}  // namespace vmi

namespace vmi {

// Writes ISF JSON to a file, compressed by its suffix: .json.xz, .json.zst, or plain .json.
Expected<void> save_isf_file(const Profile& profile, const std::filesystem::path& path);

}  // namespace vmi
