// States a clean guest never shows, on kernels laid out from the shipped Debian 6.1 profile by the
// synthetic-kernel builder (fuzz/targets/synthetic_kernel.hpp, shared with the fuzz targets):
// tasks unlinked from the task list, fields whose memory is missing, a hooked system-call table.
// Every expected value is the one written into the image, not one read back through the program.
#include <doctest/doctest.h>

#include <algorithm>

#include "samples.hpp"
#include "support.hpp"
#include "synthetic_kernel.hpp"
#include "vmi/isf.hpp"
#include "vmi/kernel.hpp"
#include "vmi/linux.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"

using namespace vmi;
using vmi_synthetic::SyntheticKernel;

namespace {

const std::filesystem::path& shipped_profile_path() {
  static const auto path = test::source_dir() / "profiles/linux/debian-6.1.0-56-amd64.json.xz";
  return path;
}

std::shared_ptr<const Profile> shipped_profile() {
  static const std::shared_ptr<const Profile> profile = [] {
    auto loaded = load_isf_file(shipped_profile_path());
    REQUIRE_MESSAGE(loaded.has_value(), test::error_text(loaded));
    return std::make_shared<const Profile>(std::move(*loaded));
  }();
  return profile;
}

// The shipped profile's catalog, shared by every session of this file: the ISF is parsed once.
std::shared_ptr<ProfileCatalog> shared_catalog() {
  static const auto catalog = [] {
    auto made = std::make_shared<ProfileCatalog>(std::vector<std::filesystem::path>{shipped_profile_path()},
                                                 CacheOptions{true, test::scratch_dir("synthetic-states-cache")});
    made->set_snapshot_recovery(false);
    return made;
  }();
  return catalog;
}

// A session over the builder's image that finds the kernel with the shipped profile.
Session open_synthetic(const SyntheticKernel& kernel) {
  SessionOptions options;
  options.shared_profiles = shared_catalog();
  Session session = Session::over_layer(kernel.image(), options);
  REQUIRE_MESSAGE(session.kernel().has_value(), test::error_text(session.kernel()));
  return session;
}

const Row* row_with_pid(const Table& table, std::int64_t pid) {
  for (const Row& row : table.rows) {
    if (test::cell_integer(row, test::kPid) == pid) return &row;
  }
  return nullptr;
}

bool has_warning(Session& session, std::string_view text) {
  const auto& warnings = session.diagnostics().warnings();
  return std::ranges::any_of(warnings, [&](const std::string& w) { return w.find(text) != std::string::npos; });
}

// init (1) with two children, as the tests below start from.
struct ThreeTasks {
  SyntheticKernel kernel{shipped_profile()};
  Addr init = kernel.add_task({.pid = 1, .tgid = 1, .comm = "init", .start_boottime_ns = 1'000'000});
  Addr sshd = kernel.add_task({.pid = 100,
                               .tgid = 100,
                               .comm = "sshd",
                               .parent = init,
                               .uid = 0,
                               .gid = 0,
                               .start_boottime_ns = 5'000'000'000});
  Addr shell = kernel.add_task({.pid = 200,
                                .tgid = 200,
                                .comm = "bash",
                                .parent = sshd,
                                .uid = 1000,
                                .gid = 1001,
                                .start_boottime_ns = 7'000'000'000});
};

}  // namespace

TEST_CASE("pslist on a synthetic kernel laid out from the shipped 6.1 profile shows exactly the tasks written") {
  ThreeTasks t;
  Session session = open_synthetic(t.kernel);
  auto table = run_plugin(session, "pslist");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  REQUIRE(table->rows.size() == 3);
  const Row* shell = row_with_pid(*table, 200);
  REQUIRE(shell != nullptr);
  CHECK(test::cell_address(*shell, test::kOffset) == t.shell);
  CHECK(test::cell_integer(*shell, test::kPpid) == 100);
  CHECK(test::cell_text(*shell, test::kComm) == "bash");
  CHECK(test::cell_integer(*shell, test::kThreads) == 1);
  CHECK(test::cell_integer(*shell, test::kUid) == 1000);
  CHECK(test::cell_integer(*shell, test::kGid) == 1001);
  CHECK(test::cell_integer(*row_with_pid(*table, 1), test::kPpid) == 0);  // init's parent is swapper
  CHECK(session.diagnostics().warnings().empty());
}

TEST_CASE(
    "a task unlinked from the task list is missing from pslist and pstree, and its children's PPID still names it") {
  ThreeTasks t;
  // Direct kernel-object manipulation: sshd is taken off init_task.tasks but keeps running, and
  // its child still points at it. The task list is the only view pslist has.
  t.kernel.list_del(t.kernel.field_address(t.sshd, "task_struct", "tasks"));
  Session session = open_synthetic(t.kernel);
  auto table = run_plugin(session, "pslist");
  REQUIRE(table.has_value());
  CHECK(table->rows.size() == 2);
  CHECK(row_with_pid(*table, 100) == nullptr);
  const Row* shell = row_with_pid(*table, 200);
  REQUIRE(shell != nullptr);
  CHECK(test::cell_integer(*shell, test::kPpid) == 100);  // a parent nobody lists: the tell-tale
  CHECK(session.diagnostics().warnings().empty());
  auto tree = run_plugin(session, "pstree");
  REQUIRE(tree.has_value());
  CHECK(tree->rows.size() == 2);
}

TEST_CASE("a task whose credentials page is missing shows its ids as unreadable, with a warning naming the field") {
  ThreeTasks t;
  const Addr cred = t.kernel.read<std::uint64_t>(t.kernel.field_address(t.shell, "task_struct", "real_cred"));
  const Addr uid_at = t.kernel.field_address(cred, "cred", "uid");
  t.kernel.unmap(uid_at);
  Session session = open_synthetic(t.kernel);
  auto table = run_plugin(session, "pslist");
  REQUIRE(table.has_value());
  const Row* shell = row_with_pid(*table, 200);
  REQUIRE(shell != nullptr);
  for (int column : {test::kUid, test::kGid, test::kEuid, test::kEgid})
    CHECK(shell->cells.at(column) == Cell{Absence::unreadable});
  CHECK(test::cell_integer(*shell, test::kPpid) == 100);  // the rest of the row is still read
  CHECK(has_warning(session, "task " + hex(t.shell) + " (pid 200): field 'cred.uid' at " + hex(uid_at)));
  const Row* sshd = row_with_pid(*table, 100);
  REQUIRE(sshd != nullptr);
  CHECK(test::cell_integer(*sshd, test::kUid) == 0);  // its neighbours' credentials are intact
}

TEST_CASE("a task whose first page is missing is skipped with a warning, and the walk stops at its links") {
  ThreeTasks t;
  t.kernel.add_task({.pid = 300, .tgid = 300, .comm = "cron", .parent = t.init});
  // pid and the tasks links share the task_struct's first page in this build.
  const Addr links = t.kernel.field_address(t.shell, "task_struct", "tasks");
  const bool same_page = links >> 12 == t.kernel.field_address(t.shell, "task_struct", "pid") >> 12;
  REQUIRE(same_page);
  t.kernel.unmap(links);
  Session session = open_synthetic(t.kernel);
  auto table = run_plugin(session, "pslist");
  REQUIRE(table.has_value());
  CHECK(row_with_pid(*table, 1) != nullptr);
  CHECK(row_with_pid(*table, 100) != nullptr);
  CHECK(row_with_pid(*table, 200) == nullptr);
  CHECK(row_with_pid(*table, 300) == nullptr);  // beyond the broken link: a partial list, said so
  CHECK(has_warning(session, "task at " + hex(t.shell) + ": "));
  CHECK(has_warning(session, "task list: list at "));
  CHECK(has_warning(session, "link at " + hex(links) + " is unreadable"));
}

TEST_CASE("the builder's hooked system-call table is read back through the kernel's own symbol") {
  // A rootkit's hook: one sys_call_table slot points into memory outside the kernel image. The
  // check_syscall plugin that judges it is future work; this proves the builder lays the table out
  // where the kernel in the image finds it.
  SyntheticKernel kernel(shipped_profile());
  const Addr table = kernel.symbol("sys_call_table");
  const Addr read_handler = kernel.symbol("__x64_sys_read");
  const Addr hook = kernel.allocate(64);
  kernel.put<std::uint64_t>(table, read_handler);
  kernel.put<std::uint64_t>(table + 8 * 2, hook);  // open
  Session session = open_synthetic(kernel);
  const Kernel& found = **session.kernel();
  const Addr slot = found.symbol("sys_call_table").value();
  const auto first = read_value<std::uint64_t>(found.kernel_layer(), slot);
  const auto open = read_value<std::uint64_t>(found.kernel_layer(), slot + 16);
  REQUIRE(first.has_value());
  REQUIRE(open.has_value());
  CHECK(*first == read_handler);
  CHECK(*open == hook);
  CHECK(hook >= vmi_synthetic::kDirectMap);
}

TEST_CASE("sessions sharing a profile catalog load the profile once and keep their own kernels and warnings") {
  ThreeTasks clean;
  ThreeTasks damaged;
  damaged.kernel.unmap(damaged.kernel.field_address(damaged.shell, "task_struct", "real_cred"));
  Session first = open_synthetic(clean.kernel);
  Session second = open_synthetic(damaged.kernel);
  CHECK(&(*first.kernel())->profile() == &(*second.kernel())->profile());
  CHECK(&first.profiles() == &second.profiles());
  REQUIRE(run_plugin(first, "pslist").has_value());
  REQUIRE(run_plugin(second, "pslist").has_value());
  CHECK(first.diagnostics().warnings().empty());
  CHECK_FALSE(second.diagnostics().warnings().empty());
}
