// Windows x64 detection, windows.pslist and windows.pstree on SYNTHETIC images: no Windows guest
// can be booted here, so synthetic_windows.hpp builds memory from each shipped ISF profile, and
// the processes it is given are the truth the plugins' rows are compared with. Each image is read
// as a layer, as a raw file, and as full and bitmap crash dumps.
#include <doctest/doctest.h>

#include <map>
#include <set>

#include "support.hpp"
#include "synthetic_windows.hpp"
#include "vmi/isf.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"
#include "windows_images.hpp"

namespace vmi::test {

namespace {

using vmi_synthetic::DumpKind;
using vmi_synthetic::HandleSpec;
using vmi_synthetic::LoadedImageSpec;
using vmi_synthetic::SyntheticWindows;
using vmi_synthetic::WindowsProcessSpec;

struct Build {
  const char* file;
  const char* lab;  // NtBuildLab as the build writes it
  std::uint32_t number;
  bool handle_count;  // _HANDLE_TABLE keeps HandleCount (up to Windows 8)
};
constexpr Build kBuilds[] = {
    {"339E74133576439CBCDF7E0229DA3773-1.json.xz", "7601.24540.amd64fre.win7sp1_ldr_escrow.191127-1706", 7601, true},
    {"BBED7C2955FBE4522AAA23F4B8677AD9-1.json.xz", "19041.1.amd64fre.vb_release.191206-1406", 19041, false},
    {"0CE4A95C0CD782A7596B034D8648E585-1.json.xz", "22000.1.amd64fre.co_release.210604-1628", 22000, false},
};

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

// 2026-01-01 00:00:00 UTC as a FILETIME (100 ns since 1601) and as Unix seconds.
constexpr std::int64_t kFiletime2026 = 134116992000000000;
constexpr std::int64_t kUnix2026 = 1767225600;
constexpr std::int64_t filetime(std::int64_t seconds) { return kFiletime2026 + seconds * 10'000'000; }
constexpr std::int64_t unix_ns(std::int64_t seconds) { return (kUnix2026 + seconds) * 1'000'000'000; }

// The processes every synthetic image holds: a boot's first processes, a desktop, a WoW64
// program, an exited process still referenced, and one unlinked from the ring (hidden).
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

// Drivers loaded after the kernel (which the generator puts first).
const std::vector<LoadedImageSpec>& drivers() {
  static const std::vector<LoadedImageSpec> specs = {
      {0xfffff8023e400000, 0x96000, "ACPI.sys", "\\SystemRoot\\System32\\drivers\\ACPI.sys"},
      {0xfffff8023f000000, 0x2f1000, "Ntfs.sys", "\\SystemRoot\\System32\\Drivers\\Ntfs.sys"},
      {0xfffff80240a10000, 0x12000, "vmi_test.sys", "\\??\\C:\\Users\\ir\\vmi_test.sys"}};
  return specs;
}

Image make_image(const Build& build, std::size_t self_reference = 0x1ed, bool low_stub = true) {
  Image image{std::make_unique<SyntheticWindows>(windows_profile(build), self_reference, low_stub), {}, {}};
  image.windows->set_build(build.number, build.lab);
  for (const auto& driver : drivers()) image.windows->add_loaded_module(driver);
  for (const auto& spec : workload()) image.addresses[spec.pid] = image.windows->add_process(spec);
  add_handles(image);
  return image;
}

Session open_layer(const SyntheticWindows& windows) {
  SessionOptions options;
  options.shared_profiles = windows_catalog();
  return Session::over_layer(windows.image(), options);
}

Session open_file(const std::filesystem::path& path) {
  SessionOptions options;
  options.shared_profiles = windows_catalog();
  auto session = Session::open(path, options);
  REQUIRE_MESSAGE(session.has_value(), error_text(session));
  return std::move(*session);
}

std::map<std::string, std::string> kernel_facts(Session& session) {
  auto kernel = session.kernel();
  REQUIRE_MESSAGE(kernel.has_value(), error_text(kernel));
  std::map<std::string, std::string> facts;
  for (const auto& [name, value] : (*kernel)->facts()) facts[name] = value;
  return facts;
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

Table run(Session& session, std::string_view plugin) {
  auto table = run_plugin(session, plugin);
  REQUIRE_MESSAGE(table.has_value(), error_text(table));
  return std::move(*table);
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

TEST_CASE("a synthetic Windows image of each shipped build is found with no option, from its low stub") {
  for (const Build& build : kBuilds) {
    CAPTURE(build.file);
    Image image = make_image(build);
    Session session = open_layer(*image.windows);
    auto facts = kernel_facts(session);
    CHECK(facts["os"] == "windows");
    CHECK(facts["build"] == std::to_string(build.number));
    CHECK(facts["NtBuildLab"] == build.lab);
    const ProfileIdentity identity = windows_profile(build)->identity();
    CHECK(facts["PDB"] == "ntkrnlmp.pdb " + identity.pdb_guid + " age " + std::to_string(identity.pdb_age));
    CHECK(facts["page-table root"].starts_with(hex(SyntheticWindows::kKernelPml4) + " (low stub"));
    CHECK(facts["kernel base"].starts_with(hex(SyntheticWindows::kKernelBase) + " (the PE image holding"));
    CHECK(facts["profile"].ends_with(build.file));
  }
}

TEST_CASE("windows.pslist shows each linked process as the synthetic image holds it, and not the hidden one") {
  for (const Build& build : kBuilds) {
    CAPTURE(build.file);
    Image image = make_image(build);
    Session session = open_layer(*image.windows);
    const Table table = run(session, "pslist");  // the short name follows the kernel found
    REQUIRE(table.columns.size() == 10);
    CHECK(table.columns[0].name == "PID");
    CHECK(table.columns[3].name == "Offset(V)");
    CHECK(table.columns[9].name == "ExitTime");
    check_rows(cells_of(table), expected_pslist(build, image));
    CHECK(session.diagnostics().warnings().empty());
  }
}

TEST_CASE("windows.pstree nests processes under live parents and reads audit names, command lines and paths") {
  for (const Build& build : kBuilds) {
    CAPTURE(build.file);
    Image image = make_image(build);
    Session session = open_layer(*image.windows);
    const Table table = run(session, "pstree");
    REQUIRE(table.columns.size() == 13);
    CHECK(table.columns[10].name == "Audit");
    CHECK(table.columns[11].name == "Cmd");
    CHECK(table.columns[12].name == "Path");
    // Expected order: roots (parent absent) by pid, each followed by its children by pid.
    const std::vector<std::pair<std::int64_t, std::uint32_t>> order = {{4, 0},    {300, 1},  {392, 0},
                                                                       {2200, 0}, {3100, 1}, {3300, 1}};
    REQUIRE(table.rows.size() == order.size());
    std::map<std::int64_t, WindowsProcessSpec> specs;
    for (const auto& spec : workload()) specs[spec.pid] = spec;
    for (std::size_t i = 0; i < order.size(); ++i) {
      const auto& [pid, depth] = order[i];
      const WindowsProcessSpec& spec = specs.at(pid);
      CAPTURE(pid);
      const Row& row = table.rows[i];
      CHECK(row.depth == depth);
      auto expected = expected_pslist_row(build, spec, image.addresses.at(pid));
      expected.push_back(text_or(spec.audit, Absence::not_applicable));
      if (spec.exit_filetime != 0) {
        // Its address space is gone: the PEB cannot be read, and says so.
        expected.insert(expected.end(), {Absence::unreadable, Absence::unreadable});
      } else {
        expected.push_back(text_or(spec.command_line, Absence::not_applicable));
        expected.push_back(text_or(spec.image_path, Absence::not_applicable));
      }
      CHECK(joined(row.cells) == joined(expected));
    }
    const auto& warnings = session.diagnostics().warnings();
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("(pid 3300) PEB: field 'ProcessParameters'") != std::string::npos);
  }
}

TEST_CASE("a Windows image without a low stub is found from its self-referencing PML4 and a kernel region scan") {
  const Build& build = kBuilds[1];
  Image image = make_image(build, 0x1a3, false);
  Session session = open_layer(*image.windows);
  auto facts = kernel_facts(session);
  CHECK(facts["page-table root"].find("self-referencing top-level table (entry 0x1a3") != std::string::npos);
  CHECK(facts["kernel base"] == hex(SyntheticWindows::kKernelBase) + " (scan of the kernel region's mapped pages)");
  check_rows(cells_of(run(session, "windows.pslist")), expected_pslist(build, image));
}

TEST_CASE("raw, full and bitmap crash-dump files of a synthetic Windows image give the same processes") {
  for (const Build& build : kBuilds) {
    CAPTURE(build.file);
    Image image = make_image(build);
    const auto dir = scratch_dir("windows-images");
    const std::string stem = std::string(build.file).substr(0, 8);
    const std::vector<std::pair<std::filesystem::path, std::string>> files = {
        {dir / (stem + ".raw"), image.windows->raw_image()},
        {dir / (stem + "-full.dmp"), image.windows->crash_dump(DumpKind::full)},
        {dir / (stem + "-bitmap.dmp"), image.windows->crash_dump(DumpKind::bitmap)}};
    for (const auto& [path, bytes] : files) {
      CAPTURE(path);
      write_file(path, bytes);
      Session session = open_file(path);
      auto facts = kernel_facts(session);
      if (path.extension() == ".dmp") {
        CHECK(facts["page-table root"] ==
              hex(SyntheticWindows::kKernelPml4) + " (crash-dump header DirectoryTableBase)");
        CHECK(facts["kernel base"] ==
              hex(SyntheticWindows::kKernelBase) + " (first entry of PsLoadedModuleList (crash-dump header))");
      }
      check_rows(cells_of(run(session, "pslist")), expected_pslist(build, image));
    }
  }
}

TEST_CASE("the CLI runs pslist and info on a synthetic Windows raw image with no option") {
  const auto path = windows10_raw_image();
  auto info = run_cli({"--profile", windows_profiles().string(), "info", path.string()});
  CHECK_MESSAGE(info.exit_code == 0, info.err);
  CHECK(info.out.find("19041.1.amd64fre.vb_release.191206-1406") != std::string::npos);
  CHECK(info.out.find("BBED7C2955FBE4522AAA23F4B8677AD9") != std::string::npos);
  auto pslist = run_cli({"--profile", windows_profiles().string(), "-r", "csv", "pslist", path.string()});
  CHECK_MESSAGE(pslist.exit_code == 0, pslist.err);
  CHECK(pslist.out.find("notepad.exe") != std::string::npos);
  CHECK(pslist.out.find("implant.exe") == std::string::npos);
}

TEST_CASE("a Windows kernel whose PDB no profile matches fails naming the profile step and the PDB") {
  const Build& build = kBuilds[1];
  Image image = make_image(build);
  SessionOptions options;
  options.profile_paths = {windows_profiles() / kBuilds[0].file};
  options.cache.enabled = false;
  Session session = Session::over_layer(image.windows->image(), options);
  auto kernel = session.kernel();
  REQUIRE_FALSE(kernel.has_value());
  CHECK(kernel.error().message.find("profile: no profile for ntkrnlmp.pdb BBED7C2955FBE4522AAA23F4B8677AD9 age 1") !=
        std::string::npos);
}

TEST_CASE("damaged Windows process lists give partial results with warnings, never a hang") {
  const Build& build = kBuilds[1];
  SUBCASE("a cycle in ActiveProcessLinks") {
    Image image = make_image(build);
    auto& w = *image.windows;
    const std::uint32_t links = w.offset("_EPROCESS", "ActiveProcessLinks");
    // explorer's Flink points back at smss's links: the walk stops there.
    w.put<std::uint64_t>(SyntheticWindows::kKernelPml4, image.addresses.at(2200) + links,
                         image.addresses.at(300) + links);
    Session session = open_layer(w);
    const Table table = run(session, "pslist");
    CHECK(table.rows.size() == 4);  // System, smss, csrss, explorer
    REQUIRE(session.diagnostics().warnings().size() == 1);
    CHECK(session.diagnostics().warnings()[0].find("a cycle") != std::string::npos);
  }
  SUBCASE("a process whose page is missing ends the list there; unreadable fields are marked") {
    Image image = make_image(build);
    auto& w = *image.windows;
    // csrss's session object is gone: its SessionId is unreadable, the rest of its row is read.
    const Addr session_pointer = image.addresses.at(392) + w.offset("_EPROCESS", "Session");
    w.unmap(w.read<std::uint64_t>(session_pointer));
    // explorer's page is gone: the list cannot go past it.
    w.unmap(image.addresses.at(2200));
    Session session = open_layer(w);
    const Table table = run(session, "pslist");
    REQUIRE(table.rows.size() == 3);
    CHECK(table.rows[2].cells[6] == Cell(Absence::unreadable));
    CHECK(table.rows[2].cells[2] == Cell(std::string("csrss.exe")));
    const auto& warnings = session.diagnostics().warnings();
    REQUIRE(warnings.size() == 3);
    CHECK(warnings[0].find("(pid 392) session: field 'SessionId'") != std::string::npos);
    CHECK(warnings[1].find("process " + hex(image.addresses.at(2200)) + ": field 'UniqueProcessId'") !=
          std::string::npos);
    CHECK(warnings[2].find("the process list may be incomplete") != std::string::npos);
  }
}

TEST_CASE("windows.psscan carves every process from physical memory, the unlinked one off the list") {
  for (const Build& build : kBuilds) {
    CAPTURE(build.file);
    Image image = make_image(build);
    Session session = open_layer(*image.windows);
    std::map<Addr, std::string> expected;  // by physical address, as the carve sorts them
    for (const auto& spec : workload()) {
      const Addr physical = image.windows->physical(image.addresses.at(spec.pid));
      auto cells = expected_pslist_row(build, spec, physical);
      cells.emplace_back(spec.linked);  // In List
      expected[physical] = joined(cells);
    }
    std::vector<std::string> rows;
    for (const auto& [physical, row] : expected) rows.push_back(row);
    PluginArgs one_job;
    one_job.values["jobs"] = "1";
    auto table = run_plugin(session, "psscan", one_job);
    REQUIRE_MESSAGE(table.has_value(), error_text(table));
    CHECK(table->columns[3].name == "Offset(P)");
    CHECK(table->columns[10].name == "In List");
    check_rows(cells_of(*table), rows);
    CHECK(session.diagnostics().warnings().empty());
  }
}

TEST_CASE("windows.handles decodes handle tables of every level, each object's type and name") {
  for (const Build& build : kBuilds) {
    CAPTURE(build.file);
    Image image = make_image(build);
    Session session = open_layer(*image.windows);
    std::map<std::int64_t, std::string> names;
    for (const auto& spec : workload()) names[spec.pid] = spec.name;
    std::vector<std::string> rows;
    for (const auto& handle : image.handles) {
      rows.push_back(joined({std::int64_t{handle.pid}, names.at(handle.pid), std::uint64_t{handle.spec.object},
                             std::uint64_t{handle.spec.value}, handle.type, std::uint64_t{handle.spec.granted_access},
                             handle.name}));
    }
    check_rows(cells_of(run(session, "handles")), rows);
    CHECK(session.diagnostics().warnings().empty());
  }
}

TEST_CASE("a wrong ObHeaderCookie leaves handle types unreadable with warnings, and a table page missing is named") {
  const Build& build = kBuilds[1];
  Image image = make_image(build);
  auto& w = *image.windows;
  w.put<std::uint8_t>(SyntheticWindows::kKernelPml4, w.symbol("ObHeaderCookie"), SyntheticWindows::kCookie ^ 0x80);
  // explorer's table: its directory page is gone.
  const Addr table = w.read<std::uint64_t>(image.addresses.at(2200) + w.offset("_EPROCESS", "ObjectTable"));
  w.unmap(w.read<std::uint64_t>(table + w.offset("_HANDLE_TABLE", "TableCode")) & ~Addr{3});
  Session session = open_layer(w);
  const Table table_rows = run(session, "handles");
  // csrss's and notepad's handles, each with its type and name unreadable.
  REQUIRE(table_rows.rows.size() == 4);
  for (const Row& row : table_rows.rows) {
    CHECK(row.cells[4] == Cell(Absence::unreadable));
    CHECK(row.cells[6] == Cell(Absence::unreadable));
  }
  const auto& warnings = session.diagnostics().warnings();
  CHECK(std::ranges::count_if(warnings, [](const std::string& w) {
          return w.find("which ObTypeIndexTable does not hold (a wrong cookie?)") != std::string::npos;
        }) >= 1);
  CHECK(std::ranges::any_of(warnings, [](const std::string& w) {
    return w.find("(pid 2200): handle-table directory at") != std::string::npos;
  }));
}

TEST_CASE("windows.modules lists the kernel and each driver on PsLoadedModuleList") {
  for (const Build& build : kBuilds) {
    CAPTURE(build.file);
    Image image = make_image(build);
    Session session = open_layer(*image.windows);
    std::vector<LoadedImageSpec> expected = {
        {SyntheticWindows::kKernelBase, 0x1000000, "ntoskrnl.exe", "\\SystemRoot\\system32\\ntoskrnl.exe"}};
    expected.insert(expected.end(), drivers().begin(), drivers().end());
    const auto& entries = image.windows->module_entries();
    REQUIRE(entries.size() == expected.size());
    std::vector<std::string> rows;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      rows.push_back(joined({std::uint64_t{entries[i]}, std::uint64_t{expected[i].base},
                             std::uint64_t{expected[i].size}, expected[i].name, expected[i].path}));
    }
    check_rows(cells_of(run(session, "modules")), rows);
    CHECK(session.diagnostics().warnings().empty());
  }
}

TEST_CASE("windows.dlllist reads each process's loader list through its own page tables") {
  for (const Build& build : kBuilds) {
    CAPTURE(build.file);
    Image image = make_image(build);
    Session session = open_layer(*image.windows);
    std::vector<std::string> rows;
    for (const auto& spec : workload()) {
      if (!spec.linked) continue;
      for (const auto& dll : spec.dlls) {
        rows.push_back(joined({std::int64_t{spec.pid}, spec.name, std::uint64_t{dll.base}, std::uint64_t{dll.size},
                               dll.name, dll.path, unix_ns((dll.load_filetime - kFiletime2026) / 10'000'000)}));
      }
    }
    check_rows(cells_of(run(session, "dlllist")), rows);
    // System has no PEB and lists nothing; the exited cmd.exe's address space is gone, and that is said.
    const auto& warnings = session.diagnostics().warnings();
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("(pid 3300): PEB.Ldr at") != std::string::npos);
    CHECK(warnings[0].find("is unreadable") != std::string::npos);
  }
}

TEST_CASE("windows.cmdline shows each process's command line, marked where there is none or it is gone") {
  for (const Build& build : kBuilds) {
    CAPTURE(build.file);
    Image image = make_image(build);
    Session session = open_layer(*image.windows);
    std::vector<std::string> rows;
    for (const auto& spec : workload()) {
      if (!spec.linked) continue;
      Cell args =
          spec.exit_filetime != 0 ? Cell(Absence::unreadable) : text_or(spec.command_line, Absence::not_applicable);
      rows.push_back(joined({std::int64_t{spec.pid}, spec.name, args}));
    }
    check_rows(cells_of(run(session, "cmdline")), rows);
    REQUIRE(session.diagnostics().warnings().size() == 1);
  }
}

}  // namespace vmi::test
