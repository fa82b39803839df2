// Damaged real snapshots: every plugin finishes, returns what it could read and reports what
// it could not. The damage is applied through an overlay layer; the evidence file is untouched.
#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <map>
#include <random>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/session.hpp"

using namespace vmi;

namespace {

// Guest-physical memory with some pages replaced and, optionally, everything past `limit` gone.
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
      const std::size_t in_page = std::min<std::size_t>(4096 - (at & 0xfff), wanted - done);
      if (auto patched = pages_.find(at & ~Addr{0xfff}); patched != pages_.end()) {
        std::memcpy(dst.data() + done, patched->second.data() + (at & 0xfff), in_page);
      } else {
        auto got = base_->read(at, dst.subspan(done, in_page));
        if (!got) return done == 0 ? std::move(got).error() : Expected<std::size_t>(done);
        if (*got < in_page) return done + *got;
      }
      done += in_page;
    }
    return done;
  }

  std::array<std::byte, 4096>& page(Addr page_address) {
    auto [it, inserted] = pages_.try_emplace(page_address);
    if (inserted) (void)read_exact(*base_, page_address, it->second);
    return it->second;
  }
  void write_u64(Addr physical, std::uint64_t value) {
    std::memcpy(page(physical & ~Addr{0xfff}).data() + (physical & 0xfff), &value, 8);
  }

 private:
  std::shared_ptr<const Layer> base_;
  Addr limit_;
  std::vector<Range> ranges_;
  std::map<Addr, std::array<std::byte, 4096>> pages_;
};

struct Fixture {
  test::Sample sample;
  std::shared_ptr<const Layer> image;
  std::vector<std::pair<std::int64_t, std::uint64_t>> tasks;  // pid, task_struct VA, list order
  std::uint32_t tasks_offset = 0;
  Addr page_table_root = 0;
};

SessionOptions shipped_profile_only() {
  SessionOptions options;
  options.profile_paths = {test::shipped_profile()};
  options.cache = CacheOptions{true, test::scratch_dir("corruption-cache")};
  return options;
}

const Fixture& fixture() {
  static const Fixture loaded = [] {
    Fixture f;
    auto samples = test::load_samples();
    REQUIRE(!samples.empty());
    f.sample = samples.front();
    auto image = open_image(f.sample.dir / "memory.raw");
    REQUIRE(image.has_value());
    f.image = std::shared_ptr<const Layer>(std::move(*image));
    Session session = Session::over_layer(f.image, shipped_profile_only());
    auto table = session.run("pslist");
    REQUIRE(table.has_value());
    for (const Row& row : table->rows)
      f.tasks.emplace_back(std::get<std::int64_t>(row.cells[1]), std::get<std::uint64_t>(row.cells[0]));
    const Kernel* kernel = *session.kernel();
    f.tasks_offset = kernel->profile().field("task_struct", "tasks")->offset;
    f.page_table_root = kernel->kernel_layer().page_table_root();
    return f;
  }();
  return loaded;
}

// Physical address of a kernel virtual address, through the sample's own page tables.
Addr physical_of(Addr va) {
  const Fixture& f = fixture();
  Session session = Session::over_layer(f.image, shipped_profile_only());
  return (*session.kernel())->kernel_layer().translate(va)->physical;
}

std::vector<std::int64_t> pids_of(const Table& table) {
  std::vector<std::int64_t> pids;
  for (const Row& row : table.rows) pids.push_back(std::get<std::int64_t>(row.cells[1]));
  return pids;
}

bool any_warning_contains(Session& session, std::string_view text) {
  for (const auto& w : session.diagnostics().warnings()) {
    if (w.find(text) != std::string::npos) return true;
  }
  return false;
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
    auto table = session.run(plugin);
    REQUIRE(table.has_value());
    CHECK(table->rows.size() == victim + 1);
  }
  auto table = session.run("pslist");
  std::vector<std::int64_t> expected;
  for (std::size_t i = 0; i <= victim; ++i) expected.push_back(f.tasks[i].first);
  CHECK(pids_of(*table) == expected);
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
  auto table = session.run("pslist");
  REQUIRE(table.has_value());
  CHECK(table->rows.size() == victim + 1);
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
  auto table = session.run("pslist");
  REQUIRE(table.has_value());
  REQUIRE(table->rows.size() == f.tasks.size());
  const Row& row = table->rows.back();
  CHECK(std::get<std::int64_t>(row.cells[1]) == pid);
  CHECK(std::holds_alternative<std::monostate>(row.cells[7]));  // UID
  CHECK(any_warning_contains(session, "task " + std::to_string(pid) + ": cred at 0xffffffffff000000 is unreadable"));
}

TEST_CASE("pslist and pstree finish on images with 1% of pages zeroed or randomised") {
  const Fixture& f = fixture();
  const std::uint64_t pages = f.image->ranges().back().end / 4096;
  for (std::uint32_t seed : {1u, 2u, 3u, 4u}) {
    CAPTURE(seed);
    std::mt19937_64 random(seed);
    auto damaged = std::make_shared<DamagedLayer>(f.image, ~Addr{0});
    for (std::uint64_t i = 0; i < pages / 100; ++i) {
      auto& page = damaged->page((random() % pages) * 4096);
      for (auto& byte : page) byte = seed % 2 == 0 ? std::byte{0} : static_cast<std::byte>(random());
    }
    Session session = Session::over_layer(damaged, shipped_profile_only());
    for (const char* plugin : {"pslist", "pstree"}) {
      auto table = session.run(plugin);
      // Either the kernel's own pages were hit (a clean error) or rows came back; never a crash.
      if (table) {
        CHECK(table->rows.size() <= 4 * f.tasks.size());
      } else {
        CHECK(!table.error().message.empty());
      }
    }
  }
}

TEST_CASE("pslist on images truncated at random points returns an error or what it could read") {
  const Fixture& f = fixture();
  const std::uint64_t size = f.image->ranges().back().end;
  std::mt19937_64 random(7);
  for (int i = 0; i < 6; ++i) {
    const Addr limit = (random() % size) & ~Addr{0xfff};
    CAPTURE(limit);
    auto damaged = std::make_shared<DamagedLayer>(f.image, limit);
    Session session = Session::over_layer(damaged, shipped_profile_only());
    auto table = session.run("pslist");
    if (table) {
      CHECK(table->rows.size() <= f.tasks.size());
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
    const double peak_mib = test::peak_rss_growth_mib([&] { table = session.run(run.plugin, args); });
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
