// Process address spaces: each process's arguments, read from the snapshot through its own page
// tables, against the /proc/PID/cmdline and /proc/PID/stat addresses the guest recorded.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/linux.hpp"

using namespace vmi;
namespace fs = std::filesystem;

namespace {

struct TruthArguments {
  std::uint64_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0, start_code = 0, end_code = 0, start_stack = 0;
  std::string cmdline;  // the bytes of /proc/PID/cmdline
};

std::map<std::int64_t, TruthArguments> truth_arguments(const test::Sample& sample) {
  const auto path = sample.dir / "truth" / "args.tsv";
  REQUIRE_MESSAGE(fs::exists(path), "no truth/args.tsv in ", sample.dir.string(),
                  ": rebuild the samples (TRUTH_VERSION 6)");
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  REQUIRE(line ==
          "pid\targ_start\targ_end\tenv_start\tenv_end\tstart_code\tend_code\tstart_stack\tcmdline_hex\t"
          "environ_hex");
  std::map<std::int64_t, TruthArguments> arguments;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::int64_t pid = 0;
    TruthArguments a;
    std::string hex_bytes;
    fields >> pid >> a.arg_start >> a.arg_end >> a.env_start >> a.env_end >> a.start_code >> a.end_code >>
        a.start_stack >> hex_bytes;
    REQUIRE_MESSAGE(!fields.fail(), line);
    for (std::size_t i = 0; i + 1 < hex_bytes.size(); i += 2)
      a.cmdline += static_cast<char>(std::stoi(hex_bytes.substr(i, 2), nullptr, 16));
    arguments[pid] = a;
  }
  REQUIRE(!arguments.empty());
  return arguments;
}

void check_arguments_equal_proc(Session& session, const test::Sample& sample) {
  const auto truth = truth_arguments(sample);
  auto kernel = session.kernel();
  REQUIRE_MESSAGE(kernel.has_value(), test::error_text(kernel));
  auto tasks = linux_objects::list_tasks(**kernel, false, session.diagnostics());
  REQUIRE(tasks.has_value());
  std::size_t checked = 0;
  for (const auto& task : *tasks) {
    CAPTURE(task.pid);
    auto layout = linux_objects::memory_layout(**kernel, task, session.diagnostics());
    REQUIRE_MESSAGE(layout.has_value(), test::error_text(layout));
    const auto it = truth.find(task.tgid);
    if (it == truth.end()) {
      // No arguments: a kernel thread, which has no mm of its own.
      CHECK(task.kernel_thread == true);
      CHECK(std::get<Absence>(*layout) == Absence::not_applicable);
      continue;
    }
    const auto* mm = std::get_if<linux_objects::MemoryLayout>(&*layout);
    REQUIRE(mm != nullptr);
    const TruthArguments& expected = it->second;
    CHECK(mm->arg_start == expected.arg_start);
    CHECK(mm->arg_end == expected.arg_end);
    CHECK(mm->env_start == expected.env_start);
    CHECK(mm->env_end == expected.env_end);
    CHECK(mm->start_code == expected.start_code);
    CHECK(mm->end_code == expected.end_code);
    CHECK(mm->start_stack == expected.start_stack);
    const auto space = linux_objects::address_space(**kernel, *mm);
    REQUIRE(space != nullptr);
    CHECK(space.get() == linux_objects::address_space(**kernel, *mm).get());  // made once per page-table root
    std::string arguments(mm->arg_end - mm->arg_start, '\0');
    auto read = read_exact(*space, mm->arg_start, std::as_writable_bytes(std::span(arguments)));
    REQUIRE_MESSAGE(read.has_value(), test::error_text(read));
    CHECK(arguments == expected.cmdline);
    // The kernel's own page tables (init_top_pgt) map no user page: it takes the process's.
    CHECK_FALSE((*kernel)->kernel_layer().translate(mm->arg_start).has_value());
    ++checked;
  }
  CHECK(checked == truth.size());
}

}  // namespace

TEST_CASE("each process's arguments, read through its own page tables, equal /proc/PID/cmdline on every sample") {
  test::for_each_sample_image(check_arguments_equal_proc);
}

TEST_CASE("process address spaces on every recovery kernel equal /proc/PID/cmdline") {
  test::for_each_recovery_image(check_arguments_equal_proc);
}

TEST_CASE(
    "with page-table isolation (pti=on) the kernel's half of a process's page tables maps its memory, the user half no "
    "kernel data") {
  // With PTI each mm has two top-level tables (arch/x86/mm/pti.c): mm->pgd, the kernel's, and the
  // page after it, the one user mode runs on, which maps user memory and only the entry
  // trampoline of the kernel. The recovery sample booted with pti=on says whether PTI was on.
  std::size_t isolated = 0;
  for (const auto& sample : test::load_recovery_samples()) {
    if (test::guest_fact(sample, "CPU_PTI") != "1") continue;
    ++isolated;
    CAPTURE(sample.name);
    SessionOptions options;
    options.profile_paths = {test::scratch_dir("pti-no-profiles")};
    options.cache = CacheOptions{true, test::scratch_dir("recovery-images-" + sample.name)};
    auto session = Session::open(sample.dir / "memory.raw", options);
    REQUIRE(session.has_value());
    check_arguments_equal_proc(*session, sample);
    const Kernel& kernel = **session->kernel();
    const Addr init_task = kernel.symbol("init_task").value();
    auto tasks = linux_objects::list_tasks(kernel, false, session->diagnostics());
    REQUIRE(tasks.has_value());
    const auto truth = truth_arguments(sample);
    std::size_t checked = 0;
    for (const auto& task : *tasks) {
      if (!truth.contains(task.tgid)) continue;
      auto layout = linux_objects::memory_layout(kernel, task, session->diagnostics());
      REQUIRE(layout.has_value());
      const auto& mm = std::get<linux_objects::MemoryLayout>(*layout);
      CHECK((mm.page_table_root & 0x1fff) == 0);  // PTI allocates the pair as one 8 KiB block
      const PagedLayer user_half(kernel.kernel_layer().shared_physical(), mm.page_table_root + 0x1000,
                                 kernel.kernel_layer().mode());
      std::string arguments(mm.arg_end - mm.arg_start, '\0');
      CHECK(read_exact(user_half, mm.arg_start, std::as_writable_bytes(std::span(arguments))).has_value());
      CHECK(arguments == truth.at(task.tgid).cmdline);
      CHECK_FALSE(user_half.translate(init_task).has_value());
      CHECK(linux_objects::address_space(kernel, mm)->translate(init_task).has_value());
      ++checked;
    }
    CHECK(checked == truth.size());
  }
  CHECK_MESSAGE(isolated > 0,
                "no recovery sample ran with page-table isolation (samples/build-samples.sh boots one with pti=on)");
}
