// Windows x64 detection and every Windows plugin on SYNTHETIC images (windows_images.hpp): each
// image is read as a layer, as a raw file, and as full and bitmap crash dumps, and every row is
// compared with the rows the generator's workload makes.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>

#include "support.hpp"
#include "vmi/session.hpp"
#include "windows_images.hpp"

namespace vmi::test {

namespace {

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

Table run(Session& session, std::string_view plugin) {
  auto table = run_plugin(session, plugin);
  REQUIRE_MESSAGE(table.has_value(), error_text(table));
  return std::move(*table);
}

}  // namespace

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
    check_rows(tree_rows(table), expected_pstree(build, image));
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

TEST_CASE("raw, full and bitmap crash-dump files of a synthetic Windows image give every plugin's rows") {
  for (const Build& build : kBuilds) {
    CAPTURE(build.file);
    Image image = make_image(build);
    const auto dir = scratch_dir("windows-images");
    const std::string stem = std::string(build.file).substr(0, 8);
    const std::vector<std::pair<std::filesystem::path, std::string>> files = {
        {dir / (stem + ".raw"), image.windows->raw_image()},
        {dir / (stem + "-full.dmp"), crash_dump(*image.windows, DumpKind::full)},
        {dir / (stem + "-bitmap.dmp"), crash_dump(*image.windows, DumpKind::bitmap)}};
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
      check_rows(tree_rows(run(session, "pstree")), expected_pstree(build, image));
      check_rows(cells_of(run(session, "psscan")), expected_psscan(build, image));
      check_rows(cells_of(run(session, "handles")), expected_handles(image));
      check_rows(cells_of(run(session, "modules")), expected_modules(image));
      check_rows(cells_of(run(session, "dlllist")), expected_dlllist());
      check_rows(cells_of(run(session, "cmdline")), expected_cmdline());
    }
  }
}

TEST_CASE("a kernel of another patch level is read with its build's layouts and the KDBG block's globals") {
  for (const Build& build : kBuilds) {
    CAPTURE(build.file);
    // Its globals 0x40 bytes from where the profile has them, its GUID none the catalog holds.
    Image image = make_image(build, 0x1ed, true, 0x40);
    const SyntheticWindows& w = *image.windows;
    const auto dir = scratch_dir("windows-patch-level");
    const bool windows7 = build.number == 7601;
    const std::vector<std::pair<std::filesystem::path, std::string>> files = {
        {dir / "image.raw", w.raw_image()}, {dir / "full.dmp", crash_dump(w, DumpKind::full)}};
    for (const auto& [path, bytes] : files) {
      CAPTURE(path);
      write_file(path, bytes);
      const bool dump = path.extension() == ".dmp";
      Session session = open_file(path);
      auto facts = kernel_facts(session);
      CHECK(facts["build"] == std::to_string(build.number));
      CHECK(facts["profile"] ==
            "build " + std::to_string(build.number) + " (" +
                (dump       ? "crash-dump header MinorVersion"
                 : windows7 ? "KUSER_SHARED_DATA NtMajorVersion.NtMinorVersion 6.1: Windows 7, SP1's build assumed"
                            : "KUSER_SHARED_DATA NtBuildNumber at 0xfffff78000000260") +
                "), another patch level: " + (windows_profiles() / build.file).string());
      const std::string kdbg = hex(w.symbol("KdDebuggerDataBlock"));
      const std::string copier = " (by KdCopyDataBlock at " + hex(w.symbol("KdCopyDataBlock")) + ")";
      const std::string expected_globals =
          !windows7 ? "decoded KDBG block at " + kdbg + copier
                    : "KDBG block at " + kdbg + (dump ? std::string(" (crash-dump header)") : copier);
      CHECK(facts["globals"].find(expected_globals) != std::string::npos);
      CHECK(facts["globals"].find("ObTypeIndexTable found") != std::string::npos);
      check_rows(cells_of(run(session, "pslist")), expected_pslist(build, image));
      check_rows(tree_rows(run(session, "pstree")), expected_pstree(build, image));
      check_rows(cells_of(run(session, "handles")), expected_handles(image));
      check_rows(cells_of(run(session, "modules")), expected_modules(image));
      check_rows(cells_of(run(session, "dlllist")), expected_dlllist());
      check_rows(cells_of(run(session, "cmdline")), expected_cmdline());
      for (const std::string& warning : session.diagnostics().warnings())  // the exited process's PEB alone
        CHECK_MESSAGE(warning.find("(pid 3300)") != std::string::npos, warning);
    }
  }
}

TEST_CASE("a triage dump yields its processes and drivers, every field outside its saved memory unreadable") {
  constexpr std::int64_t kCrashingPid = 3100;  // notepad's thread crashed
  for (const Build& build : kBuilds) {
    CAPTURE(build.file);
    Image image = make_image(build);
    SyntheticWindows& w = *image.windows;
    const Addr thread = w.add_thread(kCrashingPid, 0xf04);
    const std::uint32_t process_field = w.has_field("_KTHREAD", "Process")
                                            ? w.offset("_KTHREAD", "Process")
                                            : w.offset("_KTHREAD", "ApcState") + w.offset("_KAPC_STATE", "Process");
    w.put<std::uint64_t>(SyntheticWindows::kKernelPml4, thread + process_field, image.addresses.at(kCrashingPid));
    // Saved: the list head and every other linked process's _EPROCESS; the crashing process
    // comes from the dump's own copy. Not saved: handle tables, sessions, PEBs, driver paths.
    TriageSpec spec{thread, {{w.symbol("PsActiveProcessHead"), 16}}};
    for (const auto& process : workload()) {
      if (process.linked && process.pid != kCrashingPid)
        spec.blocks.emplace_back(image.addresses.at(process.pid), w.size_of("_EPROCESS"));
    }
    const auto path = scratch_dir("windows-images") / (std::string(build.file).substr(0, 8) + "-triage.dmp");
    write_file(path, triage_dump(w, spec));
    Session session = open_file(path);
    auto facts = kernel_facts(session);
    CHECK(facts["build"] == std::to_string(build.number));
    CHECK(facts["profile"] ==
          "build " + std::to_string(build.number) + ": " + (windows_profiles() / build.file).string());
    CHECK(facts["kernel base"] == hex(SyntheticWindows::kKernelBase) + " (KernBase of the KDBG copy at " +
                                      hex(w.symbol("KdDebuggerDataBlock")) + ")");
    CHECK(facts["PDB"] == "unknown (no kernel image read)");

    std::vector<std::string> pslist;
    for (const auto& process : workload()) {
      if (!process.linked) continue;
      auto row = expected_pslist_row(build, process, image.addresses.at(process.pid));
      if (std::holds_alternative<std::int64_t>(row[5])) row[5] = Absence::unreadable;  // the handle table's count
      if (process.session) row[6] = Absence::unreadable;                               // the session's id
      pslist.push_back(joined(row));
    }
    check_rows(cells_of(run(session, "pslist")), pslist);
    const auto& warnings = session.diagnostics().warnings();
    CHECK(std::ranges::any_of(warnings, [](const std::string& warning) {
      return warning.find("session: field 'SessionId'") != std::string::npos;
    }));

    std::vector<std::string> modules;
    for (std::string row : expected_modules(image)) {  // the paths' buffers were not saved
      row = row.substr(0, row.rfind(" | ")) + " | " + joined({Absence::unreadable});
      modules.push_back(row);
    }
    check_rows(cells_of(run(session, "modules")), modules);
    // Nothing to carve: said, not an empty table.
    const auto carved = run_plugin(session, "psscan");
    REQUIRE_FALSE(carved.has_value());
    CHECK(carved.error().message.find("holds no physical memory to carve processes from (a triage dump") !=
          std::string::npos);
  }
}

TEST_CASE("a damaged triage dump is refused naming the field, or read in part with warnings") {
  const Build& build = kBuilds[1];
  Image image = make_image(build);
  SyntheticWindows& w = *image.windows;
  const Addr thread = w.add_thread(3100, 0xf04);
  w.put<std::uint64_t>(SyntheticWindows::kKernelPml4, thread + w.offset("_KTHREAD", "Process"),
                       image.addresses.at(3100));
  const std::string dump = triage_dump(w, {thread, {{w.symbol("PsActiveProcessHead"), 16}}});
  auto u32_at = [&](std::size_t offset) {
    std::uint32_t value = 0;
    std::memcpy(&value, dump.data() + offset, 4);
    return value;
  };
  auto patched = [&](std::size_t offset, std::uint32_t value) {
    std::string bytes = dump;
    std::memcpy(bytes.data() + offset, &value, 4);
    return bytes;
  };
  auto opened = [&](const std::string& bytes) {
    const auto path = scratch_dir("windows-triage") / "damaged.dmp";
    write_file(path, bytes);
    SessionOptions options;
    options.shared_profiles = windows_catalog();
    return Session::open(path, options);
  };
  constexpr std::size_t kTriage = 0x2000;
  SUBCASE("a data block past the end of the file") {
    const auto session = opened(patched(u32_at(kTriage + 0x78) + 12, 0x7fffffff));
    REQUIRE_FALSE(session.has_value());
    CHECK(session.error().message.find("data block #0 (address " + hex(w.symbol("PsActiveProcessHead")) + ")") !=
          std::string::npos);
  }
  SUBCASE("an absurd driver count") {
    const auto session = opened(patched(kTriage + 0x34, 0x00ffffff));
    REQUIRE_FALSE(session.has_value());
    CHECK(session.error().message.find("DriverCount 16777215 at offset 0x2034 (cap 4096)") != std::string::npos);
  }
  SUBCASE("no TRGD marker: the dump was not completely written") {
    const auto session = opened(patched(u32_at(kTriage + 0x08), 0));
    REQUIRE_FALSE(session.has_value());
    CHECK(session.error().message.find("no \"TRGD\" marker") != std::string::npos);
  }
  SUBCASE("drivers whose neighbours disagree on an address are left out, the rest listed") {
    // ACPI.sys (#1) says the next entry is elsewhere; Ntfs.sys (#3) says its predecessor is where it is.
    const std::size_t acpi_flink = u32_at(kTriage + 0x30) + 0x90 * 1 + 8;
    auto session = opened(patched(acpi_flink, 0x1230));
    REQUIRE_MESSAGE(session.has_value(), error_text(session));
    const Table modules = run(*session, "modules");
    CHECK(modules.rows.size() == image.windows->module_entries().size() - 1);
    const auto& warnings = session->diagnostics().warnings();
    CHECK(std::ranges::any_of(warnings, [](const std::string& warning) {
      return warning.find("driver #2's neighbours disagree on its address") != std::string::npos;
    }));
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
    PluginArgs one_job;
    one_job.values["jobs"] = "1";
    auto table = run_plugin(session, "psscan", one_job);
    REQUIRE_MESSAGE(table.has_value(), error_text(table));
    CHECK(table->columns[3].name == "Offset(P)");
    CHECK(table->columns[10].name == "In List");
    check_rows(cells_of(*table), expected_psscan(build, image));
    CHECK(session.diagnostics().warnings().empty());
  }
}

TEST_CASE("windows.handles decodes handle tables of every level, each object's type and name") {
  for (const Build& build : kBuilds) {
    CAPTURE(build.file);
    Image image = make_image(build);
    Session session = open_layer(*image.windows);
    check_rows(cells_of(run(session, "handles")), expected_handles(image));
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
    check_rows(cells_of(run(session, "modules")), expected_modules(image));
    CHECK(session.diagnostics().warnings().empty());
  }
}

TEST_CASE("windows.dlllist reads each process's loader list through its own page tables") {
  for (const Build& build : kBuilds) {
    CAPTURE(build.file);
    Image image = make_image(build);
    Session session = open_layer(*image.windows);
    check_rows(cells_of(run(session, "dlllist")), expected_dlllist());
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
    check_rows(cells_of(run(session, "cmdline")), expected_cmdline());
    REQUIRE(session.diagnostics().warnings().size() == 1);
  }
}

}  // namespace vmi::test
