// Shared test helpers: paths of the source tree, the samples cache and the built CLI.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "vmi/image.hpp"

namespace vmi::test {

inline std::filesystem::path source_dir() { return VMI_TEST_SOURCE_DIR; }
inline std::filesystem::path shipped_profile() { return source_dir() / "profiles/linux/debian-6.1.0-56-amd64.json.xz"; }
inline std::filesystem::path cli_path() { return VMI_TEST_CLI_PATH; }

// A fresh, empty directory under the build tree for one test's files.
inline std::filesystem::path scratch_dir(const std::string& name) {
  auto dir = std::filesystem::path(VMI_TEST_BINARY_DIR) / "scratch" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct CommandResult {
  int exit_code = -1;
  std::string out, err;
};

// The error message of a failed Expected, or nothing: safe as a doctest message argument,
// which doctest may evaluate even when the check passes.
template <class T>
std::string error_text(const T& result) {
  return result.has_value() ? std::string() : result.error().message;
}

// An image's header facts by name.
inline std::map<std::string, std::string> facts_of(const PhysicalImage& image) {
  std::map<std::string, std::string> facts;
  for (const auto& [name, value] : image.facts()) facts[name] = value;
  return facts;
}

// Byte fixtures of one format, each written to its own scratch directory under one file name,
// and the errors opening them gives: every error starts with the layer's name and the path.
struct FormatFixtures {
  std::string format;     // scratch directories are "<format>-<name>"
  std::string file_name;  // "dump.kdump"
  std::string layer;      // how the layer names itself in errors: "kdump", "QEMU savevm"

  std::filesystem::path path(const std::string& name) const {
    return std::filesystem::path(VMI_TEST_BINARY_DIR) / "scratch" / (format + "-" + name) / file_name;
  }
  // Writes the fixture into a fresh directory and returns its path.
  std::filesystem::path write(const std::string& name, const std::string& bytes) const;
  // Writes the fixture and opens it, which must fail; the error message.
  std::string open_error(const std::string& name, const std::string& bytes) const;
  // What every error about fixture `name` starts with: "kdump '/.../dump.kdump': ".
  std::string prefix(const std::string& name) const { return layer + " '" + path(name).string() + "': "; }
};

// Runs a program with arguments (no shell quoting needed for our test paths), stdin empty.
CommandResult run_command(const std::vector<std::string>& argv);
// Runs the built CLI with arguments.
CommandResult run_cli(const std::vector<std::string>& args);

// Growth of this process's peak resident set while `work` runs, in MiB: the kernel's high-water
// mark is reset first (/proc/self/clear_refs, "5"), so earlier tests do not count. Meaningless
// under ASan (its quarantine keeps freed memory), so callers check it in the plain build only.
double peak_rss_growth_mib(const std::function<void()>& work);

}  // namespace vmi::test
