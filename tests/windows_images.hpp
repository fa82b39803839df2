// The SYNTHETIC Windows images the tests read: no Windows guest can be booted here, so
// synthetic_windows.hpp builds memory from each shipped ISF profile, and the workload it is given
// (processes, drivers, DLLs, handles) is the truth every plugin's rows are derived from here.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "synthetic_windows_dumps.hpp"
#include "vmi/plugin.hpp"
#include "vmi/profile_store.hpp"

namespace vmi::test {

using vmi_synthetic::DumpKind;
using vmi_synthetic::HandleSpec;
using vmi_synthetic::LoadedImageSpec;
using vmi_synthetic::SyntheticWindows;
using vmi_synthetic::TriageSpec;
using vmi_synthetic::WindowsProcessSpec;

struct Build {
  const char* file;
  const char* lab;  // NtBuildLab as the build writes it
  std::uint32_t number;
  bool handle_count;  // _HANDLE_TABLE keeps HandleCount (up to Windows 8)
};
inline constexpr Build kBuilds[] = {
    {"339E74133576439CBCDF7E0229DA3773-1.json.xz", "7601.24540.amd64fre.win7sp1_ldr_escrow.191127-1706", 7601, true},
    {"BBED7C2955FBE4522AAA23F4B8677AD9-1.json.xz", "19041.1.amd64fre.vb_release.191206-1406", 19041, false},
    {"0CE4A95C0CD782A7596B034D8648E585-1.json.xz", "22000.1.amd64fre.co_release.210604-1628", 22000, false},
};

// 2026-01-01 00:00:00 UTC as a FILETIME (100 ns since 1601) and as Unix seconds.
inline constexpr std::int64_t kFiletime2026 = 134116992000000000;
inline constexpr std::int64_t kUnix2026 = 1767225600;
constexpr std::int64_t filetime(std::int64_t seconds) { return kFiletime2026 + seconds * 10'000'000; }
constexpr std::int64_t unix_ns(std::int64_t seconds) { return (kUnix2026 + seconds) * 1'000'000'000; }

// A handle the image's processes hold, and what windows.handles must show for it.
struct ExpectedHandle {
  std::int64_t pid = 0;
  HandleSpec spec;
  std::string type;
  Cell name;
};

struct Image {
  std::unique_ptr<SyntheticWindows> windows;
  std::map<std::int64_t, Addr> addresses;  // pid -> _EPROCESS
  std::vector<ExpectedHandle> handles;     // in process-list order, then handle order
};

// The shipped Windows profiles (profiles/windows), a catalog of them shared by the tests, and one
// build's profile.
std::filesystem::path windows_profiles();
std::shared_ptr<ProfileCatalog> windows_catalog();
std::shared_ptr<const Profile> windows_profile(const Build& build);

// The processes every image holds: a boot's first processes, a desktop, a WoW64 program, an
// exited process still referenced, and one unlinked from the list (hidden).
std::vector<WindowsProcessSpec> workload();
// Drivers loaded after the kernel (which the generator puts first).
const std::vector<LoadedImageSpec>& drivers();
// The workload on `build`'s layouts; without a low stub, with the PML4's self-reference where told;
// as another patch level of the build (globals `symbol_shift` bytes off the profile's, another GUID).
Image make_image(const Build& build, std::size_t self_reference = 0x1ed, bool low_stub = true, Addr symbol_shift = 0);
// A raw image file of the workload on Windows 10 2004 (built once per run).
std::filesystem::path windows10_raw_image();

// Rows as text, so a failed comparison shows which cell differs.
std::string joined(const std::vector<Cell>& cells);
std::vector<std::string> cells_of(const Table& table);
std::vector<std::string> tree_rows(const Table& table);  // each row's depth leads it
void check_rows(const std::vector<std::string>& actual, const std::vector<std::string>& expected);
Cell text_or(const std::string& text, Absence absent);

// Each plugin's rows as the workload makes them.
std::vector<Cell> expected_pslist_row(const Build& build, const WindowsProcessSpec& spec, Addr address);
std::vector<std::string> expected_pslist(const Build& build, const Image& image);
std::vector<std::string> expected_pstree(const Build& build, const Image& image);
std::vector<std::string> expected_psscan(const Build& build, const Image& image);
std::vector<std::string> expected_handles(const Image& image);
std::vector<std::string> expected_modules(const Image& image);
std::vector<std::string> expected_dlllist();
std::vector<std::string> expected_cmdline();

}  // namespace vmi::test
