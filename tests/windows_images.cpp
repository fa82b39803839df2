// The synthetic Windows workload and the rows each plugin must show for it (windows_images.hpp).
#include "windows_images.hpp"

#include <doctest/doctest.h>

#include "support.hpp"

namespace vmi::test {

namespace {

// Handle tables of each level: csrss's one page of entries, explorer's directory of pages (a
// handle on its second page), notepad's two levels (a handle past the first 128 Ki).
void add_handles(Image& image) {
  SyntheticWindows& w = *image.windows;
  const std::map<std::int64_t, unsigned> levels = {{392, 0}, {2200, 1}, {3100, 2}};
  image.handles = {
      {392,
       {0x4, w.add_file("\\Windows\\System32\\en-US\\csrss.exe.mui"), 0x120089},
       "File",
       std::string("\\Windows\\System32\\en-US\\csrss.exe.mui")},
      {392, {0x8, w.add_event("CritSecOutOfMemoryEvent"), 0x1f0003}, "Event", std::string("CritSecOutOfMemoryEvent")},
      {2200,
       {0x4, w.add_key({"REGISTRY", "MACHINE", "SOFTWARE", "Microsoft"}), 0x20019},
       "Key",
       std::string("\\REGISTRY\\MACHINE\\SOFTWARE\\Microsoft")},
      {2200, {0x8, w.add_thread(2200, 2204), 0x1fffff}, "Thread", std::string("Tid 2204 Pid 2200")},
      {2200, {0x404, image.addresses.at(3100), 0x1fffff}, "Process", std::string("notepad.exe Pid 3100")},
      {3100, {0x4, w.add_file("\\Users\\ir\\notes.txt"), 0x12019f}, "File", std::string("\\Users\\ir\\notes.txt")},
      {3100, {4 * (256 * 512 + 3), w.add_event(""), 0x1f0003}, "Event", Absence::not_applicable},
  };
  for (const auto& [pid, level] : levels) {
    std::vector<HandleSpec> specs;
    for (const auto& handle : image.handles)
      if (handle.pid == pid) specs.push_back(handle.spec);
    w.set_handles(image.addresses.at(pid), specs, level);
  }
}

// Cells spelled out, so a failed comparison shows which cell differs.
std::string cell_text(const Cell& cell) {
  struct {
    std::string operator()(Absence a) const { return a == Absence::unreadable ? "<unreadable>" : "<n/a>"; }
    std::string operator()(std::int64_t v) const { return std::to_string(v); }
    std::string operator()(std::uint64_t v) const { return hex(v); }
    std::string operator()(const std::string& v) const { return "'" + v + "'"; }
    std::string operator()(bool v) const { return v ? "true" : "false"; }
    std::string operator()(const Code&) const { return "<code>"; }
  } spell;
  return std::visit(spell, cell);
}

}  // namespace

std::filesystem::path windows_profiles() { return source_dir() / "profiles/windows"; }

std::filesystem::path windows10_raw_image() {
  static const std::filesystem::path path = [] {
    const auto file = scratch_dir("windows10-raw") / "win10.raw";
    write_file(file, make_image(kBuilds[1]).windows->raw_image());
    return file;
  }();
  return path;
}

std::shared_ptr<ProfileCatalog> windows_catalog() {
  static const auto catalog = [] {
    auto made = std::make_shared<ProfileCatalog>(std::vector<std::filesystem::path>{windows_profiles()},
                                                 CacheOptions{true, scratch_dir("windows-profile-cache")});
    made->set_snapshot_recovery(false);
    return made;
  }();
  return catalog;
}

std::shared_ptr<const Profile> windows_profile(const Build& build) {
  static std::map<std::string, std::shared_ptr<const Profile>> loaded;
  auto& profile = loaded[build.file];
  if (!profile) {
    auto made = windows_catalog()->load(windows_profiles() / build.file);
    REQUIRE_MESSAGE(made.has_value(), error_text(made));
    profile = *made;
  }
  return profile;
}

std::vector<WindowsProcessSpec> workload() {
  return {
      {.pid = 4, .ppid = 0, .name = "System", .threads = 97, .handle_count = 512, .create_filetime = filetime(0)},
      {.pid = 300,
       .ppid = 4,
       .name = "smss.exe",
       .threads = 2,
       .handle_count = 53,
       .create_filetime = filetime(1),
       .audit = "\\Device\\HarddiskVolume2\\Windows\\System32\\smss.exe",
       .command_line = "\\SystemRoot\\System32\\smss.exe",
       .image_path = "\\SystemRoot\\System32\\smss.exe"},
      {.pid = 392,
       .ppid = 380,  // its parent smss instance has exited and is gone
       .name = "csrss.exe",
       .threads = 11,
       .handle_count = 440,
       .session = 0,
       .create_filetime = filetime(3),
       .audit = "\\Device\\HarddiskVolume2\\Windows\\System32\\csrss.exe",
       .command_line = "%SystemRoot%\\system32\\csrss.exe ObjectDirectory=\\Windows SharedSection=1024,20480,768",
       .image_path = "C:\\Windows\\system32\\csrss.exe"},
      {.pid = 2200,
       .ppid = 2150,
       .name = "explorer.exe",
       .threads = 64,
       .handle_count = 2012,
       .session = 1,
       .create_filetime = filetime(40),
       .audit = "\\Device\\HarddiskVolume2\\Windows\\explorer.exe",
       .command_line = "C:\\Windows\\Explorer.EXE",
       .image_path = "C:\\Windows\\Explorer.EXE",
       .dlls = {{0x7ff6d0a20000, 0x4ac000, "Explorer.EXE", "C:\\Windows\\Explorer.EXE", filetime(40)},
                {0x7ffd3a1c0000, 0x1f5000, "ntdll.dll", "C:\\Windows\\SYSTEM32\\ntdll.dll", filetime(40)},
                {0x7ffd38f20000, 0xbd000, "KERNEL32.DLL", "C:\\Windows\\System32\\KERNEL32.DLL", filetime(41)}}},
      {.pid = 3100,
       .ppid = 2200,
       .name = "notepad.exe",
       .threads = 3,
       .handle_count = 90,
       .session = 1,
       .wow64 = true,
       .create_filetime = filetime(120),
       .audit = "\\Device\\HarddiskVolume2\\Windows\\SysWOW64\\notepad.exe",
       .command_line = "\"C:\\Windows\\SysWOW64\\notepad.exe\" C:\\Users\\ir\\notes.txt",
       .image_path = "C:\\Windows\\SysWOW64\\notepad.exe",
       .dlls = {{0xb10000, 0x33000, "notepad.exe", "C:\\Windows\\SysWOW64\\notepad.exe", filetime(120)},
                {0x7ffd3a1c0000, 0x1f5000, "ntdll.dll", "C:\\Windows\\SYSTEM32\\ntdll.dll", filetime(120)},
                {0x77d40000, 0x1a3000, "wow64.dll", "C:\\Windows\\System32\\wow64.dll", filetime(121)}}},
      {.pid = 3300,
       .ppid = 2200,
       .name = "cmd.exe",
       .threads = 0,
       .session = 1,
       .create_filetime = filetime(200),
       .exit_filetime = filetime(260),
       .audit = "\\Device\\HarddiskVolume2\\Windows\\System32\\cmd.exe",
       .command_line = "cmd.exe /c whoami",
       .image_path = "C:\\Windows\\System32\\cmd.exe"},
      {.pid = 6668,
       .ppid = 2200,
       .name = "implant.exe",
       .threads = 5,
       .handle_count = 31,
       .session = 1,
       .create_filetime = filetime(300),
       .linked = false,
       .audit = "\\Device\\HarddiskVolume2\\Users\\ir\\AppData\\implant.exe",
       .command_line = "implant.exe --quiet",
       .image_path = "C:\\Users\\ir\\AppData\\implant.exe"},
  };
}

const std::vector<LoadedImageSpec>& drivers() {
  static const std::vector<LoadedImageSpec> specs = {
      {0xfffff8023e400000, 0x96000, "ACPI.sys", "\\SystemRoot\\System32\\drivers\\ACPI.sys"},
      {0xfffff8023f000000, 0x2f1000, "Ntfs.sys", "\\SystemRoot\\System32\\Drivers\\Ntfs.sys"},
      {0xfffff80240a10000, 0x12000, "vmi_test.sys", "\\??\\C:\\Users\\ir\\vmi_test.sys"}};
  return specs;
}

Image make_image(const Build& build, std::size_t self_reference, bool low_stub, Addr symbol_shift) {
  Image image{
      std::make_unique<SyntheticWindows>(windows_profile(build), self_reference, low_stub, symbol_shift), {}, {}};
  image.windows->set_build(build.number, build.lab);
  for (const auto& driver : drivers()) image.windows->add_loaded_module(driver);
  for (const auto& spec : workload()) image.addresses[spec.pid] = image.windows->add_process(spec);
  add_handles(image);
  return image;
}

std::string joined(const std::vector<Cell>& cells) {
  std::string out;
  for (const Cell& cell : cells) out += (out.empty() ? "" : " | ") + cell_text(cell);
  return out;
}

std::vector<std::string> cells_of(const Table& table) {
  std::vector<std::string> rows;
  for (const Row& row : table.rows) rows.push_back(joined(row.cells));
  return rows;
}

// Row by row, so a failure prints the rows that differ.
void check_rows(const std::vector<std::string>& actual, const std::vector<std::string>& expected) {
  CHECK(actual.size() == expected.size());
  for (std::size_t i = 0; i < std::min(actual.size(), expected.size()); ++i) CHECK(actual[i] == expected[i]);
}

Cell text_or(const std::string& text, Absence absent) { return text.empty() ? Cell(absent) : Cell(text); }

// The row windows.pslist must show for a spec, derived from the spec alone.
std::vector<Cell> expected_pslist_row(const Build& build, const WindowsProcessSpec& spec, Addr address) {
  const bool exited = spec.exit_filetime != 0;
  Cell handles = Absence::not_applicable;  // no count kept, or no handle table once exited
  if (build.handle_count && !exited) handles = std::int64_t{spec.handle_count};
  return {std::int64_t{spec.pid},
          std::int64_t{spec.ppid},
          spec.name,
          std::uint64_t{address},
          std::int64_t{spec.threads},
          handles,
          spec.session ? Cell(std::int64_t{*spec.session}) : Cell(Absence::not_applicable),
          spec.wow64,
          unix_ns((spec.create_filetime - kFiletime2026) / 10'000'000),
          exited ? Cell(unix_ns((spec.exit_filetime - kFiletime2026) / 10'000'000)) : Cell(Absence::not_applicable)};
}

std::vector<std::string> expected_pslist(const Build& build, const Image& image) {
  std::vector<std::string> rows;
  for (const auto& spec : workload()) {
    if (spec.linked) rows.push_back(joined(expected_pslist_row(build, spec, image.addresses.at(spec.pid))));
  }
  return rows;
}

// pstree's rows: roots (parent absent) by pid, each followed by its children by pid; the depth
// leads each row.
std::vector<std::string> expected_pstree(const Build& build, const Image& image) {
  const std::vector<std::pair<std::int64_t, std::uint32_t>> order = {{4, 0},    {300, 1},  {392, 0},
                                                                     {2200, 0}, {3100, 1}, {3300, 1}};
  std::map<std::int64_t, WindowsProcessSpec> specs;
  for (const auto& spec : workload()) specs[spec.pid] = spec;
  std::vector<std::string> rows;
  for (const auto& [pid, depth] : order) {
    const WindowsProcessSpec& spec = specs.at(pid);
    auto expected = expected_pslist_row(build, spec, image.addresses.at(pid));
    expected.push_back(text_or(spec.audit, Absence::not_applicable));
    if (spec.exit_filetime != 0) {
      // Its address space is gone: the PEB cannot be read, and says so.
      expected.insert(expected.end(), {Absence::unreadable, Absence::unreadable});
    } else {
      expected.push_back(text_or(spec.command_line, Absence::not_applicable));
      expected.push_back(text_or(spec.image_path, Absence::not_applicable));
    }
    rows.push_back(std::to_string(depth) + ": " + joined(expected));
  }
  return rows;
}

std::vector<std::string> tree_rows(const Table& table) {
  std::vector<std::string> rows;
  for (const Row& row : table.rows) rows.push_back(std::to_string(row.depth) + ": " + joined(row.cells));
  return rows;
}

// psscan's rows: every process, the unlinked one too, by physical address, then In List.
std::vector<std::string> expected_psscan(const Build& build, const Image& image) {
  std::map<Addr, std::string> expected;
  for (const auto& spec : workload()) {
    const Addr physical = image.windows->physical(image.addresses.at(spec.pid));
    auto cells = expected_pslist_row(build, spec, physical);
    cells.emplace_back(spec.linked);
    expected[physical] = joined(cells);
  }
  std::vector<std::string> rows;
  for (const auto& [physical, row] : expected) rows.push_back(row);
  return rows;
}

std::vector<std::string> expected_handles(const Image& image) {
  std::map<std::int64_t, std::string> names;
  for (const auto& spec : workload()) names[spec.pid] = spec.name;
  std::vector<std::string> rows;
  for (const auto& handle : image.handles) {
    rows.push_back(joined({std::int64_t{handle.pid}, names.at(handle.pid), std::uint64_t{handle.spec.object},
                           std::uint64_t{handle.spec.value}, handle.type, std::uint64_t{handle.spec.granted_access},
                           handle.name}));
  }
  return rows;
}

std::vector<std::string> expected_modules(const Image& image) {
  std::vector<LoadedImageSpec> expected = {
      {SyntheticWindows::kKernelBase, 0x1000000, "ntoskrnl.exe", "\\SystemRoot\\system32\\ntoskrnl.exe"}};
  expected.insert(expected.end(), drivers().begin(), drivers().end());
  const auto& entries = image.windows->module_entries();
  REQUIRE(entries.size() == expected.size());
  std::vector<std::string> rows;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    rows.push_back(joined({std::uint64_t{entries[i]}, std::uint64_t{expected[i].base}, std::uint64_t{expected[i].size},
                           expected[i].name, expected[i].path}));
  }
  return rows;
}

std::vector<std::string> expected_dlllist() {
  std::vector<std::string> rows;
  for (const auto& spec : workload()) {
    if (!spec.linked) continue;
    for (const auto& dll : spec.dlls) {
      rows.push_back(joined({std::int64_t{spec.pid}, spec.name, std::uint64_t{dll.base}, std::uint64_t{dll.size},
                             dll.name, dll.path, unix_ns((dll.load_filetime - kFiletime2026) / 10'000'000)}));
    }
  }
  return rows;
}

std::vector<std::string> expected_cmdline() {
  std::vector<std::string> rows;
  for (const auto& spec : workload()) {
    if (!spec.linked) continue;
    Cell args =
        spec.exit_filetime != 0 ? Cell(Absence::unreadable) : text_or(spec.command_line, Absence::not_applicable);
    rows.push_back(joined({std::int64_t{spec.pid}, spec.name, args}));
  }
  return rows;
}

}  // namespace vmi::test
