// modules and handles on a hand-made kernel: the pipeline fuzz target's tiny profile and its
// seed image (fuzz/make_corpus.py with_modules_and_files), so the seed is known to reach both
// walkers, and states the sample guests never show (an unsigned module's taint, a string
// parameter, a close-on-exec descriptor of an unlinked file) are checked against the values
// laid out there.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>

#include "fuzz_support.hpp"
#include "samples.hpp"
#include "support.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"

using namespace vmi;

namespace {

// A cell as text: addresses in hex, other numbers in decimal.
std::string text(const Table& table, const Row& row, std::size_t column) {
  const Cell& cell = row.cells.at(column);
  if (const auto* value = std::get_if<std::string>(&cell)) return *value;
  if (const auto* value = std::get_if<std::int64_t>(&cell)) return std::to_string(*value);
  if (const auto* value = std::get_if<std::uint64_t>(&cell))
    return table.columns[column].type == ColumnType::address ? hex(*value) : std::to_string(*value);
  return std::get<Absence>(cell) == Absence::unreadable ? "-" : "N/A";
}

const std::string& synthetic_image() {
  static const std::string bytes =
      test::read_file(std::filesystem::path(VMI_TEST_SOURCE_DIR) / "fuzz/corpus/pipeline/tiny-kernel-modules-files");
  REQUIRE(bytes.size() == 0xA000);
  return bytes;
}

// A session over `bytes` (kept alive by the caller) with the tiny profile.
Session open_synthetic(const std::string& bytes) {
  static const auto profile = test::scratch_dir("synthetic-kernel") / "tiny-linux.json";
  test::write_file(profile, vmi_fuzz::kTinyLinuxIsf);
  SessionOptions options;
  options.profile_paths = {profile};
  options.cache.enabled = false;
  auto layer = std::make_shared<MemoryLayer>("synthetic", std::as_bytes(std::span(bytes)));
  Session session = Session::over_layer(layer, options);
  REQUIRE_MESSAGE(session.kernel().has_value(), test::error_text(session.kernel()));
  return session;
}

bool has_warning(Session& session, std::string_view text) {
  const auto& warnings = session.diagnostics().warnings();
  return std::any_of(warnings.begin(), warnings.end(),
                     [&](const std::string& warning) { return warning.find(text) != std::string::npos; });
}

void put64(std::string& bytes, std::size_t at, std::uint64_t value) { std::memcpy(bytes.data() + at, &value, 8); }

}  // namespace

TEST_CASE("modules and handles read a hand-made kernel's module, parameters and open files") {
  Session session = open_synthetic(synthetic_image());

  auto modules = run_plugin(session, "modules");
  REQUIRE_MESSAGE(modules.has_value(), test::error_text(modules));
  REQUIRE(modules->rows.size() == 1);
  const Row& brd = modules->rows.front();
  // Offset, Module Name, Code Size, Taints, Load Arguments, Size, Base, State, Refcount, Used By
  CHECK(text(*modules, brd, 0) == "0xffffffff81008000");
  CHECK(text(*modules, brd, 1) == "brd");
  CHECK(text(*modules, brd, 2) == "0x1000");
  CHECK(text(*modules, brd, 3) == "E");
  CHECK(text(*modules, brd, 4) == "rd_nr=2, path=tcp:4444");
  CHECK(text(*modules, brd, 6) == "20480");
  CHECK(text(*modules, brd, 7) == "0xffffffffc0000000");
  CHECK(text(*modules, brd, 8) == "Live");
  CHECK(text(*modules, brd, 9) == "0");
  CHECK(text(*modules, brd, 10) == "");  // no users

  auto handles = run_plugin(session, "handles");
  REQUIRE_MESSAGE(handles.has_value(), test::error_text(handles));
  REQUIRE(handles->rows.size() == 2);
  // PID, TID, Process, FD, Path, Device, Inode, Type, Mode, ..., Size, Flags, Position
  const Row& passwd = handles->rows[0];
  CHECK(text(*handles, passwd, 0) == "1");
  CHECK(text(*handles, passwd, 2) == "init");
  CHECK(text(*handles, passwd, 3) == "0");
  CHECK(text(*handles, passwd, 4) == "/etc/passwd");
  CHECK(text(*handles, passwd, 5) == "0:2");
  CHECK(text(*handles, passwd, 6) == "87");
  CHECK(text(*handles, passwd, 7) == "REG");
  CHECK(text(*handles, passwd, 8) == "-rw-r--r--");
  CHECK(text(*handles, passwd, 12) == "30");
  CHECK(text(*handles, passwd, 13) == "0100000");
  CHECK(text(*handles, passwd, 14) == "5");
  const Row& deleted = handles->rows[1];
  CHECK(text(*handles, deleted, 3) == "2");
  CHECK(text(*handles, deleted, 4) == "/deleted.bin (deleted)");
  CHECK(text(*handles, deleted, 8) == "-rw-------");
  CHECK(text(*handles, deleted, 13) == "02000002");  // O_RDWR and the close-on-exec bit of fd 2
  // The tiny kernel's tasks have no timekeeper and a kernel thread without its kthread: the only
  // warnings are theirs, none about the module or the files.
  for (const std::string& warning : session.diagnostics().warnings()) {
    CAPTURE(warning);
    CHECK(warning.find("module") == std::string::npos);
    CHECK(warning.find(" fd ") == std::string::npos);
  }
}

TEST_CASE("a module or descriptor field that cannot be read is '-' with a warning naming object, field and address") {
  std::string bytes = synthetic_image();
  put64(bytes, 0x80A8, 100000);                   // num_kp: far more parameters than any module has
  put64(bytes, 0x8600 + 32, 0xffffffff9f000000);  // passwd's d_name.name: outside the image
  put64(bytes, 0x8440 + 16, 0xffffffff9f000000);  // fd 2's f_inode: outside the image
  Session session = open_synthetic(bytes);

  auto modules = run_plugin(session, "modules");
  REQUIRE(modules.has_value());
  REQUIRE(modules->rows.size() == 1);
  CHECK(modules->rows[0].cells[4] == Cell{Absence::unreadable});  // Load Arguments
  CHECK(text(*modules, modules->rows[0], 1) == "brd");            // the rest is still read
  CHECK(has_warning(session, "module 0xffffffff81008000 (brd): field 'num_kp' at 0xffffffff810080a8 holds 100000"));

  auto handles = run_plugin(session, "handles");
  REQUIRE(handles.has_value());
  REQUIRE(handles->rows.size() == 2);
  CHECK(handles->rows[0].cells[4] == Cell{Absence::unreadable});  // Path
  CHECK(text(*handles, handles->rows[0], 6) == "87");             // Inode still read
  CHECK(
      has_warning(session, "task 0xffffffff81004100 (pid 1) fd 0: field 'dentry.d_name string' at 0xffffffff9f000000"));
  for (std::size_t column : {5, 6, 7, 8, 9, 10, 11, 12}) {  // every inode field of fd 2
    CAPTURE(column);
    CHECK(handles->rows[1].cells[column] == Cell{Absence::unreadable});
  }
  CHECK(has_warning(session, "fd 2: field 'inode.i_ino' at 0xffffffff9f000010 is unreadable"));
  CHECK(text(*handles, handles->rows[1], 4) == "/deleted.bin (deleted)");  // from the dentry, still read
}

TEST_CASE("a NULL pointer on a descriptor's path is '-' with a warning that says NULL, not a path") {
  std::string bytes = synthetic_image();
  put64(bytes, 0x8440 + 8, 0);  // fd 2's f_path.dentry
  put64(bytes, 0x8800 + 8, 0);  // the super_block's s_type: fd 0's file system is unknown
  Session session = open_synthetic(bytes);
  auto handles = run_plugin(session, "handles");
  REQUIRE(handles.has_value());
  REQUIRE(handles->rows.size() == 2);
  CHECK(handles->rows[0].cells[4] == Cell{Absence::unreadable});
  CHECK(handles->rows[1].cells[4] == Cell{Absence::unreadable});
  CHECK(text(*handles, handles->rows[1], 6) == "3");  // the inode is still read
  CHECK(has_warning(session, "fd 0: field 'super_block.s_type' at 0xffffffff81008808 is NULL"));
  CHECK(has_warning(session, "fd 2: field 'f_path.dentry' at 0xffffffff81008448 is NULL"));
}
