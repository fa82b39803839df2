// A task field that cannot be read is an empty cell and a warning naming the task, the field and
// its address, never a plausible default: one field of one real task is made unreadable at a time
// in a real sample, and the row is compared with the guest's own /proc.
#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/linux.hpp"
#include "vmi/object.hpp"

using namespace vmi;

namespace {

// Columns of pslist (plugins/linux_task_rows.hpp).
enum Column { kOffset, kPid, kTid, kPpid, kComm, kName, kThreads, kUid, kGid, kEuid, kEgid, kStart, kCreation };

const Row* row_of(const Table& table, std::int64_t pid) {
  for (const Row& row : table.rows) {
    if (std::get<std::int64_t>(row.cells.at(kPid)) == pid) return &row;
  }
  return nullptr;
}

bool empty(const Row& row, int column) { return row.cells.at(column) == Cell{Absence::unreadable}; }
std::int64_t integer(const Row& row, int column) { return test::cell_integer(row, column).value(); }

bool warned(Session& session, const std::string& text) {
  const auto& warnings = session.diagnostics().warnings();
  return std::any_of(warnings.begin(), warnings.end(),
                     [&](const std::string& warning) { return warning.find(text) != std::string::npos; });
}

}  // namespace

TEST_CASE("an unreadable task field is an empty cell and a warning naming task, field and address") {
  const auto samples = test::load_samples();
  REQUIRE_MESSAGE(!samples.empty(), "samples/build-samples.sh builds the samples this test reads");
  const test::Sample& sample = samples.front();
  const auto image_path = sample.dir / "memory.raw";
  const auto profile_path = test::profile_for(sample);

  // A user process with a parent other than swapper, so a lost parent changes where pstree puts it.
  const auto target = std::find_if(sample.processes.begin(), sample.processes.end(),
                                   [](const auto& p) { return p.ppid > 1 && p.comm.starts_with("vmi-wl"); });
  REQUIRE_MESSAGE(target != sample.processes.end(), "the workload's processes are in the truth");

  static const auto cache = test::scratch_dir("unreadable-fields-cache");
  Session reference = test::open_sample(image_path, profile_path);
  const Kernel* kernel = *reference.kernel();
  Addr task_address = 0;
  REQUIRE(linux_objects::for_each_task(*kernel, false, reference.diagnostics(), [&](linux_objects::Task&& task) {
            if (task.tgid == target->pid) task_address = task.address;
            return task_address == 0;
          }).has_value());
  REQUIRE(task_address != 0);

  struct Damage {
    const char* field;      // task_struct member made unreadable
    const char* warning;    // the field's name in the warning
    std::vector<int> lost;  // the cells that must then be empty
  };
  const Damage damages[] = {
      {"real_parent", "real_parent", {kPpid}},
      {"flags", "flags", {kName}},
      {"start_boottime", "start_boottime", {kStart, kCreation}},
      {"signal", "signal", {kThreads}},
      {"real_cred", "real_cred", {kUid, kGid, kEuid, kEgid}},
  };
  for (const Damage& damage : damages) {
    SUBCASE(damage.field) {
      const Addr field = task_address + *bind_offset(kernel->profile(), "task_struct", damage.field);
      const auto physical = kernel->kernel_layer().translate(field);
      REQUIRE(physical.has_value());
      auto image = open_image(image_path);
      REQUIRE(image.has_value());
      auto holed = std::make_shared<test::MaskedLayer>(std::shared_ptr<const Layer>(std::move(*image)),
                                                       std::vector<Range>{{physical->physical, physical->physical + 8}},
                                                       test::MaskedLayer::Mask::hole);
      SessionOptions options;
      options.profile_paths = {profile_path};
      options.cache = CacheOptions{true, cache};  // one ISF parse for all the damaged sessions
      Session session = Session::over_layer(holed, options);

      auto table = vmi::run_plugin(session, "pslist");
      REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
      const Row* row = row_of(*table, target->pid);
      REQUIRE(row != nullptr);
      for (int column : damage.lost) {
        CAPTURE(column);
        CHECK(empty(*row, column));
      }
      CHECK(warned(session, "task " + hex(task_address) + " (pid " + std::to_string(target->pid) + "): field '" +
                                damage.warning + "' at " + hex(field) + " is unreadable"));
      // What could still be read equals the guest's /proc.
      auto kept = [&](int column) { return std::ranges::find(damage.lost, column) == damage.lost.end(); };
      if (kept(kPpid)) CHECK(integer(*row, kPpid) == target->ppid);
      if (kept(kThreads)) CHECK(integer(*row, kThreads) == target->threads);
      if (kept(kUid)) CHECK(integer(*row, kUid) == target->uid);
      if (kept(kEgid)) CHECK(integer(*row, kEgid) == target->egid);
      if (kept(kStart)) CHECK(integer(*row, kStart) / 10'000'000 == target->start_ticks);
      if (kept(kName)) CHECK(std::get<std::string>(row->cells.at(kName)) == target->comm);
      // Every other process is untouched.
      CHECK(table->rows.size() == sample.processes.size());

      if (damage.field == std::string("real_parent")) {
        // pstree keeps the task, at the top level, with its parent shown as unknown rather than 0.
        auto tree = vmi::run_plugin(session, "pstree");
        REQUIRE(tree.has_value());
        const Row* node = row_of(*tree, target->pid);
        REQUIRE(node != nullptr);
        CHECK(node->depth == 0);
        CHECK(empty(*node, kPpid));
      }
    }
  }
}
