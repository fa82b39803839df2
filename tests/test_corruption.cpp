// Damaged real snapshots: every plugin finishes, returns what it could read and reports what
// it could not. The damage is applied through an overlay layer; the evidence file is untouched.
// Rows that survive are compared with the guest's own /proc, and the warnings each kind of damage
// must produce are checked: a task the damage reached is named in a warning, no other is.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/session.hpp"

using namespace vmi;

namespace {

constexpr Addr kPage = 4096;

// Guest-physical memory with some pages replaced, some pages unreadable (holes) and, optionally,
// everything past `limit` gone.
class DamagedLayer final : public Layer {
 public:
  DamagedLayer(std::shared_ptr<const Layer> base, Addr limit) : base_(std::move(base)), limit_(limit) {
    for (Range r : base_->ranges()) {
      r.end = std::min(r.end, limit_);
      if (r.begin < r.end) ranges_.push_back(r);
    }
  }
  std::string_view name() const override { return "damaged sample"; }
  std::span<const Range> ranges() const override { return ranges_; }

  Expected<std::size_t> read(Addr addr, std::span<std::byte> dst) const override {
    if (addr >= limit_) return make_error(Errc::unmapped, "damaged sample: no data at " + hex(addr));
    std::size_t done = 0;
    const std::size_t wanted = static_cast<std::size_t>(std::min<std::uint64_t>(dst.size(), limit_ - addr));
    while (done < wanted) {
      const Addr at = addr + done;
      const std::size_t in_page = std::min<std::size_t>(kPage - (at & (kPage - 1)), wanted - done);
      if (holes_.contains(at & ~(kPage - 1))) {
        if (done == 0)
          return make_error(Errc::unmapped, "damaged sample: page " + hex(at & ~(kPage - 1)) + " is unreadable");
        return done;
      }
      if (auto patched = pages_.find(at & ~(kPage - 1)); patched != pages_.end()) {
        std::memcpy(dst.data() + done, patched->second.data() + (at & (kPage - 1)), in_page);
      } else {
        auto got = base_->read(at, dst.subspan(done, in_page));
        if (!got) return done == 0 ? std::move(got).error() : Expected<std::size_t>(done);
        if (*got < in_page) return done + *got;
      }
      done += in_page;
    }
    return done;
  }

  std::array<std::byte, kPage>& page(Addr page_address) {
    auto [it, inserted] = pages_.try_emplace(page_address);
    if (inserted) (void)read_exact(*base_, page_address, it->second);
    return it->second;
  }
  void write_u64(Addr physical, std::uint64_t value) {
    std::memcpy(page(physical & ~(kPage - 1)).data() + (physical & (kPage - 1)), &value, 8);
  }
  // The page at this physical address can no longer be read.
  void hole(Addr page_address) { holes_.insert(page_address & ~(kPage - 1)); }

 private:
  std::shared_ptr<const Layer> base_;
  Addr limit_;
  std::vector<Range> ranges_;
  std::map<Addr, std::array<std::byte, kPage>> pages_;
  std::set<Addr> holes_;
};

struct Fixture {
  test::Sample sample;
  std::shared_ptr<const Layer> image;
  std::vector<std::pair<std::int64_t, std::uint64_t>> tasks;  // pid, task_struct VA, list order
  std::vector<Addr> every_task;  // init_task, every leader and every other thread: what the walk may read
  std::uint32_t tasks_offset = 0;
  // The task_struct fields the task reader reads (and neighbours of theirs), by name, and the bytes
  // from the first of them to 16 bytes past the last: what a read of one task touches in its struct.
  std::map<std::string, std::uint32_t> task_fields;
  std::uint32_t window_begin = 0, window_end = 0;
  Addr page_table_root = 0;
};

SessionOptions shipped_profile_only() {
  SessionOptions options;
  options.profile_paths = {test::shipped_profile()};
  static const auto cache = test::scratch_dir("corruption-cache");  // emptied once: one ISF parse per run
  options.cache = CacheOptions{true, cache};
  return options;
}

const Fixture& fixture() {
  static const Fixture loaded = [] {
    Fixture f;
    auto samples = test::load_samples();
    f.sample = samples.front();
    auto image = open_image(f.sample.dir / "memory.raw");
    REQUIRE(image.has_value());
    f.image = std::shared_ptr<const Layer>(std::move(*image));
    Session session = Session::over_layer(f.image, shipped_profile_only());
    auto table = vmi::run_plugin(session, "pslist");
    REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
    for (const Row& row : table->rows)
      f.tasks.emplace_back(std::get<std::int64_t>(row.cells[test::kPid]),
                           std::get<std::uint64_t>(row.cells[test::kOffset]));
    // The undamaged image gives exactly the guest's processes: what damage is compared against.
    REQUIRE(f.tasks.size() == f.sample.processes.size());
    PluginArgs threads;
    threads.values["threads"] = "";
    auto all = vmi::run_plugin(session, "pslist", threads);
    REQUIRE_MESSAGE(all.has_value(), test::error_text(all));
    for (const Row& row : all->rows) f.every_task.push_back(std::get<std::uint64_t>(row.cells[test::kOffset]));
    REQUIRE(f.every_task.size() == f.sample.threads.size());
    const Kernel* kernel = *session.kernel();
    f.every_task.push_back(*kernel->symbol("init_task"));
    f.tasks_offset = kernel->profile().field("task_struct", "tasks")->offset;
    for (const char* name : {"tasks", "pid", "tgid", "comm", "real_parent", "real_cred", "cred", "flags", "start_time",
                             "start_boottime", "signal", "thread_node", "worker_private"}) {
      if (auto field = kernel->profile().field("task_struct", name)) f.task_fields[name] = field->offset;
    }
    f.window_begin = ~std::uint32_t{0};
    for (const auto& [name, offset] : f.task_fields) {
      f.window_begin = std::min(f.window_begin, offset);
      f.window_end = std::max(f.window_end, offset + 16);  // no field read is longer than comm's 16 bytes
    }
    f.page_table_root = kernel->kernel_layer().page_table_root();
    return f;
  }();
  return loaded;
}

// Physical address of a kernel virtual address, through the sample's own page tables.
Addr physical_of(Addr va) {
  static Session session = Session::over_layer(fixture().image, shipped_profile_only());  // one detection
  return (*session.kernel())->kernel_layer().translate(va)->physical;
}

std::vector<std::int64_t> pids_of(const Table& table) {
  std::vector<std::int64_t> pids;
  for (const Row& row : table.rows) pids.push_back(std::get<std::int64_t>(row.cells[test::kPid]));
  return pids;
}

bool any_warning_contains(Session& session, std::string_view text) {
  for (const auto& w : session.diagnostics().warnings()) {
    if (w.find(text) != std::string::npos) return true;
  }
  return false;
}

// Every row equals the guest's row for its pid.
void check_rows_equal_truth(const Table& table) {
  const Fixture& f = fixture();
  for (const Row& row : table.rows) {
    const auto pid = test::cell_integer(row, test::kPid);
    REQUIRE(pid.has_value());
    CAPTURE(*pid);
    const test::TruthProcess* truth = test::truth_process(f.sample, *pid);
    REQUIRE(truth != nullptr);
    const auto differences = test::row_differences(row, *truth);
    CHECK_MESSAGE(differences.empty(), test::joined(differences));
  }
}

// What a run may give when the damage makes memory unreadable, never wrong (holes, truncation):
// rows of the guest's processes only, at their own task_structs; each row equals the guest's
// except in cells left empty, and a row with an empty cell has a warning naming its task_struct;
// a process with no row has a warning naming its task_struct, or the walk of the task list says
// where it stopped ("task list: ...", tasks.cpp).
void check_unreadable_damage_reported(Session& session, const Table& table) {
  const Fixture& f = fixture();
  const std::map<std::int64_t, Addr> address_of(f.tasks.begin(), f.tasks.end());
  std::set<std::int64_t> listed;
  for (const Row& row : table.rows) {
    const auto pid = test::cell_integer(row, test::kPid);
    const auto address = test::cell_address(row, test::kOffset);
    REQUIRE(pid.has_value());
    REQUIRE(address.has_value());
    CAPTURE(*pid);
    const test::TruthProcess* truth = test::truth_process(f.sample, *pid);
    CHECK_MESSAGE(truth != nullptr, "a row for a pid the guest did not have");
    if (truth == nullptr) continue;
    listed.insert(*pid);
    CHECK(address_of.at(*pid) == *address);
    const auto differences = test::row_differences(row, *truth);
    for (const auto& difference : differences) CHECK_MESSAGE(difference.ends_with(": empty"), difference);
    if (!differences.empty()) {
      CHECK_MESSAGE(any_warning_contains(session, hex(*address)), "no warning names task ", hex(*address), " (",
                    test::joined(differences), ")");
    }
  }
  const bool walk_stopped = any_warning_contains(session, "task list: ");
  for (const auto& task : f.tasks) {
    const std::int64_t pid = task.first;
    const Addr address = task.second;
    if (listed.contains(pid)) continue;
    CHECK_MESSAGE((walk_stopped || any_warning_contains(session, hex(address))), "pid ", pid, " (", hex(address),
                  ") has no row and no warning says why");
  }
}

}  // namespace

TEST_CASE("a task list link pointing back at its own node stops as a cycle and keeps the tasks before it") {
  const Fixture& f = fixture();
  REQUIRE(f.tasks.size() > 20);
  const std::size_t victim = f.tasks.size() / 2;
  const Addr link = f.tasks[victim].second + f.tasks_offset;  // victim->tasks.next
  auto damaged = std::make_shared<DamagedLayer>(f.image, ~Addr{0});
  damaged->write_u64(physical_of(link), link);
  Session session = Session::over_layer(damaged, shipped_profile_only());
  for (const char* plugin : {"pslist", "pstree"}) {
    CAPTURE(plugin);
    auto table = vmi::run_plugin(session, plugin);
    REQUIRE(table.has_value());
    CHECK(table->rows.size() == victim + 1);
  }
  auto table = vmi::run_plugin(session, "pslist");
  REQUIRE(table.has_value());
  std::vector<std::int64_t> expected;
  for (std::size_t i = 0; i <= victim; ++i) expected.push_back(f.tasks[i].first);
  CHECK(pids_of(*table) == expected);
  check_rows_equal_truth(*table);
  CHECK(any_warning_contains(session, "points back to " + hex(link) + ", a cycle"));
}

TEST_CASE("a task list link into unmapped memory ends the walk with a warning naming the address") {
  const Fixture& f = fixture();
  const std::size_t victim = 5;
  const Addr link = f.tasks[victim].second + f.tasks_offset;
  const Addr nowhere = 0xffffffffff000000ull;  // canonical, never mapped by Linux
  auto damaged = std::make_shared<DamagedLayer>(f.image, ~Addr{0});
  damaged->write_u64(physical_of(link), nowhere);
  Session session = Session::over_layer(damaged, shipped_profile_only());
  auto table = vmi::run_plugin(session, "pslist");
  REQUIRE(table.has_value());
  CHECK(table->rows.size() == victim + 1);
  std::vector<std::int64_t> expected;
  for (std::size_t i = 0; i <= victim; ++i) expected.push_back(f.tasks[i].first);
  CHECK(pids_of(*table) == expected);
  check_rows_equal_truth(*table);
  CHECK(any_warning_contains(session, "link at " + hex(nowhere) + " is unreadable"));
}

TEST_CASE("a task whose credentials point into unmapped memory is listed with N/A ids and a warning") {
  const Fixture& f = fixture();
  auto damaged = std::make_shared<DamagedLayer>(f.image, ~Addr{0});
  const auto [pid, task] = f.tasks.back();
  Session probe = Session::over_layer(f.image, shipped_profile_only());
  const std::uint32_t real_cred = (*probe.kernel())->profile().field("task_struct", "real_cred")->offset;
  damaged->write_u64(physical_of(task + real_cred), 0xffffffffff000000ull);
  Session session = Session::over_layer(damaged, shipped_profile_only());
  auto table = vmi::run_plugin(session, "pslist");
  REQUIRE(table.has_value());
  REQUIRE(table->rows.size() == f.tasks.size());
  for (const Row& row : table->rows) {
    const auto row_pid = test::cell_integer(row, test::kPid);
    REQUIRE(row_pid.has_value());
    CAPTURE(*row_pid);
    const test::TruthProcess* truth = test::truth_process(f.sample, *row_pid);
    REQUIRE(truth != nullptr);
    const auto differences = test::row_differences(row, *truth);
    if (*row_pid == pid) {
      CHECK_MESSAGE(test::joined(differences) == "UID: empty; GID: empty; EUID: empty; EGID: empty",
                    test::joined(differences));
    } else {
      CHECK_MESSAGE(differences.empty(), test::joined(differences));
    }
  }
  // The warnings name the task and the unreadable place the cred pointer leads to.
  CHECK(any_warning_contains(session, "task " + hex(task) + " (pid " + std::to_string(pid) + ")"));
  CHECK(any_warning_contains(session, "0xffffffffff0000"));
}

// Known fields of known tasks made unreadable (holes of a few bytes in guest-physical memory,
// since a task_struct shares its pages with its slab neighbours): six tasks spread over the list
// lose fields the task reader reads for them alone (never their list link, pid or tgid, so the
// walk goes on and their children's PPID stays readable). The one that loses comm is skipped with
// a warning; the others keep their rows with the unreadable cells empty and a warning.
TEST_CASE(
    "unreadable fields in known task_structs: a warning names each damaged task, every other row is the truth's") {
  const Fixture& f = fixture();
  struct Damage {
    std::int64_t pid;
    Addr task;
    std::vector<const char*> fields;
    bool skips_task;
  };
  const std::vector<std::vector<const char*>> field_sets = {
      {"comm"}, {"real_parent"}, {"start_boottime", "signal"}, {"real_cred"}, {"flags"}, {"real_parent", "real_cred"}};
  std::vector<Damage> chosen;
  const std::size_t step = f.tasks.size() / field_sets.size();
  REQUIRE(step >= 1);
  for (std::size_t i = 0; i < field_sets.size(); ++i) {
    const auto& [pid, task] = f.tasks[1 + i * step];  // never init: its row heads pstree
    const bool skips = std::string(field_sets[i].front()) == "comm";
    chosen.push_back({pid, task, field_sets[i], skips});
  }
  std::vector<Range> holes;
  for (const Damage& damage : chosen) {
    for (const char* name : damage.fields) {
      const auto offset = f.task_fields.find(name);
      REQUIRE(offset != f.task_fields.end());
      // 8 bytes at the field's start, split where they cross a page (physical pages need not follow).
      const Addr begin = damage.task + offset->second;
      const Addr page_end = (begin | (kPage - 1)) + 1;
      holes.push_back({physical_of(begin), physical_of(begin) + std::min<Addr>(8, page_end - begin)});
      if (page_end < begin + 8)
        holes.push_back({physical_of(page_end), physical_of(page_end) + (begin + 8 - page_end)});
    }
  }
  auto damaged = std::make_shared<test::MaskedLayer>(f.image, holes, test::MaskedLayer::Mask::hole);
  Session session = Session::over_layer(damaged, shipped_profile_only());
  auto table = vmi::run_plugin(session, "pslist");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  std::map<std::int64_t, const Row*> rows;
  for (const Row& row : table->rows) {
    const auto pid = test::cell_integer(row, test::kPid);
    REQUIRE(pid.has_value());
    rows[*pid] = &row;
  }
  std::size_t skipped = 0;
  for (const auto& listed : f.tasks) {
    const std::int64_t pid = listed.first;
    const Addr task = listed.second;
    CAPTURE(pid);
    const auto damage = std::find_if(chosen.begin(), chosen.end(), [&](const Damage& d) { return d.pid == pid; });
    const test::TruthProcess* truth = test::truth_process(f.sample, pid);
    REQUIRE(truth != nullptr);
    const auto row = rows.find(pid);
    if (damage == chosen.end()) {
      REQUIRE_MESSAGE(row != rows.end(), "an undamaged task is missing");
      const auto differences = test::row_differences(*row->second, *truth);
      CHECK_MESSAGE(differences.empty(), test::joined(differences));
      CHECK_FALSE(any_warning_contains(session, hex(task)));
      continue;
    }
    INFO("damaged ", damage->fields.front(), " of task ", hex(task), " (", truth->comm, ")");
    CHECK(any_warning_contains(session, hex(task)));
    if (damage->skips_task) {
      ++skipped;
      CHECK(row == rows.end());
    } else {
      REQUIRE(row != rows.end());
      const auto differences = test::row_differences(*row->second, *truth);
      CHECK_FALSE(differences.empty());
      for (const auto& difference : differences) CHECK_MESSAGE(difference.ends_with(": empty"), difference);
    }
  }
  CHECK(table->rows.size() == f.tasks.size() - skipped);
  check_unreadable_damage_reported(session, *table);
}

TEST_CASE(
    "pslist and pstree on images with 1% of pages unreadable: what they list is the truth, the rest is reported") {
  const Fixture& f = fixture();
  const std::uint64_t pages = f.image->ranges().back().end / kPage;
  for (std::uint32_t seed : {11u, 12u, 13u, 14u}) {
    CAPTURE(seed);
    std::mt19937_64 random(seed);
    auto damaged = std::make_shared<DamagedLayer>(f.image, ~Addr{0});
    for (std::uint64_t i = 0; i < pages / 100; ++i) damaged->hole((random() % pages) * kPage);
    Session session = Session::over_layer(damaged, shipped_profile_only());
    for (const char* plugin : {"pslist", "pstree"}) {
      CAPTURE(plugin);
      session.diagnostics().clear();
      auto table = vmi::run_plugin(session, plugin);
      if (table) {
        check_unreadable_damage_reported(session, *table);
      } else {
        // The kernel's own pages were hit: a clean error.
        CHECK(!table.error().message.empty());
      }
    }
  }
}

TEST_CASE("pslist and pstree on images with 1% of pages zeroed or randomised: a changed process list is reported") {
  const Fixture& f = fixture();
  const std::uint64_t pages = f.image->ranges().back().end / kPage;
  std::vector<std::int64_t> truth_pids;
  for (const auto& process : f.sample.processes) truth_pids.push_back(process.pid);
  for (std::uint32_t seed : {1u, 2u, 3u, 4u}) {
    CAPTURE(seed);
    std::mt19937_64 random(seed);
    auto damaged = std::make_shared<DamagedLayer>(f.image, ~Addr{0});
    for (std::uint64_t i = 0; i < pages / 100; ++i) {
      auto& page = damaged->page((random() % pages) * kPage);
      for (auto& byte : page) byte = seed % 2 == 0 ? std::byte{0} : static_cast<std::byte>(random());
    }
    Session session = Session::over_layer(damaged, shipped_profile_only());
    for (const char* plugin : {"pslist", "pstree"}) {
      CAPTURE(plugin);
      session.diagnostics().clear();
      auto table = vmi::run_plugin(session, plugin);
      // Either the kernel's own pages were hit (a clean error) or rows came back.
      if (!table) {
        CHECK(!table.error().message.empty());
        continue;
      }
      CHECK(table->rows.size() <= 4 * f.tasks.size());
      // Wrong bytes can go unnoticed (a zeroed uid is a uid), but a list of processes other than
      // the guest's cannot: the walk that made it met a link it could not follow, or a task it
      // could not read, and says so.
      std::vector<std::int64_t> pids = pids_of(*table);
      std::sort(pids.begin(), pids.end());
      if (pids != truth_pids) {
        CHECK_MESSAGE(!session.diagnostics().warnings().empty(), table->rows.size(), " rows, not the guest's ",
                      truth_pids.size(), " processes, and no warning");
      }
    }
  }
}

TEST_CASE("pslist on images truncated at random points returns an error or what it could read, and says what it lost") {
  const Fixture& f = fixture();
  const std::uint64_t size = f.image->ranges().back().end;
  std::mt19937_64 random(7);
  for (int i = 0; i < 6; ++i) {
    const Addr limit = (random() % size) & ~(kPage - 1);
    CAPTURE(limit);
    auto damaged = std::make_shared<DamagedLayer>(f.image, limit);
    Session session = Session::over_layer(damaged, shipped_profile_only());
    auto table = vmi::run_plugin(session, "pslist");
    if (table) {
      CHECK(table->rows.size() <= f.tasks.size());
      check_unreadable_damage_reported(session, *table);
    } else {
      CHECK((table.error().code == Errc::not_found || table.error().code == Errc::profile_mismatch ||
             table.error().code == Errc::unmapped));
    }
  }
}

namespace {

// Guest-physical memory in which [begin, end) is a endless-looking linked list: every aligned
// qword points 16 bytes further on, through the kernel's direct map. Any list_head read there,
// and any pointer field of a "task" there, leads into a chain as long as the region.
class ChainLayer final : public Layer {
 public:
  ChainLayer(std::shared_ptr<const Layer> base, Addr begin, Addr end, Addr direct_map)
      : base_(std::move(base)), begin_(begin), end_(end), direct_map_(direct_map) {}
  std::string_view name() const override { return "chained sample"; }
  std::span<const Range> ranges() const override { return base_->ranges(); }
  Expected<std::size_t> read(Addr addr, std::span<std::byte> dst) const override {
    auto got = base_->read(addr, dst);
    if (!got) return got;
    for (std::size_t i = 0; i < *got; ++i) {
      const Addr at = addr + i;
      if (at < begin_ || at >= end_) continue;
      const std::uint64_t value = direct_map_ + (at & ~Addr{15}) + 16;
      dst[i] = static_cast<std::byte>(value >> (8 * (at & 7)));
    }
    return got;
  }

 private:
  std::shared_ptr<const Layer> base_;
  Addr begin_, end_, direct_map_;
};

}  // namespace

namespace {

// init_task.tasks.next into a 48 MiB chain: three million nodes of 16 bytes, placed where it
// cannot cover the kernel image (KASLR puts it anywhere) or the early tables at the top of RAM.
struct HostileChain {
  std::shared_ptr<const Layer> layer;
  Addr tasks_head = 0;  // init_task.tasks
};

const HostileChain& hostile_chain() {
  static const HostileChain chain = [] {
    const Fixture& f = fixture();
    Session probe = Session::over_layer(f.image, shipped_profile_only());
    const Kernel* kernel = *probe.kernel();
    const Addr direct_map = *read_value<std::uint64_t>(kernel->kernel_layer(), *kernel->symbol("page_offset_base"));
    const Addr text = kernel->kernel_layer().translate(*kernel->symbol("_text"))->physical;
    Addr begin = 0;
    for (Addr candidate : {64ull << 20, 128ull << 20, 200ull << 20, 256ull << 20, 320ull << 20}) {
      if (candidate + (48ull << 20) + (16ull << 20) <= text || candidate >= text + (112ull << 20)) {
        begin = candidate;
        break;
      }
    }
    REQUIRE(begin != 0);
    HostileChain made;
    made.tasks_head = *kernel->symbol("init_task") + f.tasks_offset;
    auto patched = std::make_shared<DamagedLayer>(f.image, ~Addr{0});
    patched->write_u64(physical_of(made.tasks_head), direct_map + begin);
    made.layer = std::make_shared<ChainLayer>(patched, begin, begin + (48ull << 20), direct_map);
    return made;
  }();
  return chain;
}

// What one plugin run over the chain may cost at most: every row is capped at kMaxTasks (1M),
// and a row with its cells is about 0.6 KiB. The sanitizers' allocator keeps freed memory in
// quarantine, so the bound is checked in the plain build only.
constexpr double kHostilePeakBudgetMib = 896;  // measured: pslist 708, --threads 657, pstree 788

}  // namespace

TEST_CASE(
    "a hostile task list of millions of nodes, each claiming a huge thread group, is cut at named caps in bounded "
    "memory") {
  const HostileChain& chain = hostile_chain();
  struct Run {
    const char* plugin;
    bool threads;
  };
  for (const Run run : {Run{"pslist", false}, Run{"pslist", true}, Run{"pstree", false}}) {
    CAPTURE(run.plugin);
    CAPTURE(run.threads);
    Session session = Session::over_layer(chain.layer, shipped_profile_only());
    REQUIRE(session.kernel().has_value());
    PluginArgs args;
    if (run.threads) args.values["threads"] = "";
    Expected<Table> table = make_error(Errc::not_found, "not run");
    const auto started = std::chrono::steady_clock::now();
    const double peak_mib = test::peak_rss_growth_mib([&] { table = vmi::run_plugin(session, run.plugin, args); });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    REQUIRE(table.has_value());
    const std::string what = std::string(run.plugin) + (run.threads ? " --threads" : "");
    MESSAGE(what << " over the chain: " << table->rows.size() << " rows in " << seconds << " s, peak RSS +" << peak_mib
                 << " MiB");
    CHECK(table->rows.size() == (1u << 20));  // kMaxTasks: leaders and threads together
    CHECK(any_warning_contains(
              session, "list at " + hex(chain.tasks_head) + " has more than 1048576 entries; stopped") != run.threads);
    // The first group's thread list takes the whole thread budget; every later group counts as one.
    CHECK(any_warning_contains(session, run.threads
                                            ? "tasks: more than 1048576 tasks and threads; stopped"
                                            : "thread lists: more than 1048576 entries over all thread groups"));
#if !VMI_SANITIZED
    CHECK(peak_mib < kHostilePeakBudgetMib);
#endif
  }
}
