// Shared test helpers: paths of the source tree, the samples cache and the built CLI.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vmi/image.hpp"
#include "vmi/layer.hpp"
#include "vmi/profile.hpp"

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

// Guest memory with byte runs damaged: as holes (reads stop short before them) or as zeros.
class MaskedLayer final : public Layer {
 public:
  enum class Mask { hole, zeros };
  MaskedLayer(std::shared_ptr<const Layer> base, std::vector<Range> runs, Mask mask)
      : base_(std::move(base)), runs_(std::move(runs)), mask_(mask) {}
  std::string_view name() const override { return "masked sample"; }
  Expected<std::size_t> read(Addr addr, std::span<std::byte> dst) const override {
    std::size_t size = dst.size();
    if (mask_ == Mask::hole) {
      for (const Range& run : runs_) {
        if (run.end <= addr || run.begin >= addr + size) continue;
        if (run.begin <= addr) return make_error(Errc::unmapped, "masked hole at " + hex(addr));
        size = static_cast<std::size_t>(run.begin - addr);
      }
    }
    const std::size_t got = VMI_TRY(base_->read(addr, dst.first(size)));
    if (mask_ == Mask::zeros) {
      for (const Range& run : runs_) {
        const Addr begin = std::max(run.begin, addr), end = std::min(run.end, addr + got);
        if (begin < end) std::fill(dst.begin() + (begin - addr), dst.begin() + (end - addr), std::byte{0});
      }
    }
    return got;
  }
  std::span<const Range> ranges() const override { return base_->ranges(); }

 private:
  std::shared_ptr<const Layer> base_;
  std::vector<Range> runs_;
  Mask mask_;
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

// ---------------------------------------------------------------------------------------------
// Independent readings of profile sources, for element-by-element comparisons that can fail.

// An ISF's content as plain ordered maps. A type reference is text: "base int", "struct list_head",
// "union unnamed_...", "enum pid_type", "function", "pointer(<type>)", "array <count>(<type>)",
// "bitfield <position>:<length>(<type>)"; a symbol without a type has "".
struct IsfField {
  std::uint64_t offset = 0;
  bool anonymous = false;
  std::string type;
  bool operator==(const IsfField&) const = default;
};
struct IsfUserType {
  std::string kind;  // struct, union, class
  std::uint64_t size = 0;
  std::map<std::string, IsfField> fields;
  bool operator==(const IsfUserType&) const = default;
};
struct IsfEnum {
  std::uint64_t size = 0;
  std::string base;
  std::map<std::string, std::int64_t> constants;
  bool operator==(const IsfEnum&) const = default;
};
struct IsfBaseType {
  std::uint64_t size = 0;
  bool is_signed = false;
  std::string kind;  // int, char, bool, float, void
  bool operator==(const IsfBaseType&) const = default;
};
struct IsfSymbol {
  std::uint64_t address = 0;
  std::string type;
  std::string constant_data;  // decoded bytes
  bool operator==(const IsfSymbol&) const = default;
};
struct IsfModel {
  std::string os;        // the metadata key: linux, windows, mac
  std::string producer;  // "<name> <version>"
  std::string format;
  std::map<std::string, IsfBaseType> base_types;
  std::map<std::string, IsfUserType> user_types;
  std::map<std::string, IsfEnum> enums;
  std::map<std::string, IsfSymbol> symbols;
};

// An ISF file read without the library: decompressed by the xz or zstd program (by suffix) and
// parsed with simdjson's DOM API. REQUIREs success.
IsfModel read_isf_model(const std::filesystem::path& path);
// The shipped dwarf2json ISF (shipped_profile()) read that way, once per run.
const IsfModel& shipped_isf_model();
// The same maps taken from a profile the library built or loaded.
IsfModel isf_model_of(const Profile& profile);
// What differs between two models, one description per difference, at most `limit` of them
// (and a last line counting the rest); empty when they are equal.
std::vector<std::string> isf_model_differences(const IsfModel& a, const IsfModel& b, std::size_t limit = 20);
// The fields a lookup by name reaches in user type `type`: its named fields and, recursively, those
// of its anonymous members, at their offsets from the start of `type`. REQUIREs the types exist.
std::map<std::string, IsfField> isf_named_fields(const IsfModel& isf, const std::string& type);
// Size in bytes of a type reference in `isf`: the base type's, the "pointer" base type's for
// pointers, count x element for arrays, the storage type's for bitfields, the user type's or
// enum's; nothing for functions and names the ISF does not define.
std::optional<std::uint64_t> isf_size_of(const IsfModel& isf, std::string_view type);
// A profile's banner as the ISF carries it: linux_banner's constant data up to "\n\0".
std::string isf_banner(const IsfModel& isf);

// The symbols binutils' nm lists for an ELF file (no file or section symbols): each name with
// every address it has, in nm's order. REQUIREs that nm ran.
std::map<std::string, std::vector<std::uint64_t>> nm_symbols(const std::filesystem::path& elf);

// An ELF section header as binutils' readelf -S -W prints it.
struct ElfSection {
  std::uint64_t address = 0, offset = 0, size = 0;
};
// Every named section of an ELF file by name. REQUIREs that readelf ran.
std::map<std::string, ElfSection> readelf_sections(const std::filesystem::path& elf);

// Up to `limit` names in `a` but not in `b`, for messages ("x, y, z (+3 more)"); empty when none.
template <class SetA, class SetB>
std::string names_missing(const SetA& a, const SetB& b, std::size_t limit = 10) {
  std::string text;
  std::size_t count = 0;
  for (const auto& entry : a) {
    const std::string name(entry);
    if (b.contains(name)) continue;
    if (++count <= limit) text += (text.empty() ? "" : ", ") + name;
  }
  if (count > limit) text += " (+" + std::to_string(count - limit) + " more)";
  return text;
}

}  // namespace vmi::test
