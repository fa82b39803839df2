// The profile built from the kernel's own BTF + System.map against dwarf2json's ISF of the same
// build (read with simdjson, not our ISF reader): same walker offsets, same symbols, same
// pslist/pstree on the real samples.
#include <doctest/doctest.h>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/isf.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"
#include "vmi/vmlinux.hpp"

using namespace vmi;

namespace {

// The fields the task walker and kernel detection bind, per type.
const std::vector<std::pair<std::string, std::vector<std::string>>> kWalkerFields = {
    {"task_struct",
     {"tasks", "pid", "tgid", "comm", "real_parent", "parent", "real_cred", "cred", "flags", "start_time",
      "start_boottime", "signal", "thread_node", "thread_group", "group_leader", "mm", "worker_private"}},
    {"signal_struct", {"thread_head", "nr_threads"}},
    {"cred", {"uid", "gid", "euid", "egid"}},
    {"list_head", {"next", "prev"}},
    {"kthread", {"full_name", "data"}},
    {"worker", {"desc", "current_work", "pool"}},
    {"mm_struct", {"pgd"}},
};

const std::vector<std::string> kAnchorSymbols = {
    "_text",   "linux_banner", "init_top_pgt", "init_task", "__pgtable_l5_enabled", "page_offset_base",
    "tk_core", "phys_base"};

struct Profiles {
  Profile btf;
  std::filesystem::path btf_file;
};

const Profiles& profiles() {
  static const Profiles loaded = [] {
    const auto samples = test::load_samples();
    REQUIRE(!samples.empty());
    REQUIRE_MESSAGE(samples.front().env.at("PINNED") == "1",
                    "needs the pinned kernel, which the dwarf2json ISF describes");
    const std::filesystem::path kernel = samples.front().env.at("KERNEL_DIR");
    auto built = build_profile_from_vmlinux(kernel / "vmlinux", kernel / "System.map");
    REQUIRE_MESSAGE(built.has_value(), test::error_text(built));
    // Round trip through our ISF writer and reader: the file is what users get from `profile build`.
    const auto file = test::scratch_dir("btf-profile") / "btf-6.1.0-56-amd64.json";
    REQUIRE(save_isf_file(*built, file).has_value());
    auto reread = load_isf_file(file);
    REQUIRE_MESSAGE(reread.has_value(), test::error_text(reread));
    return Profiles{std::move(*reread), file};
  }();
  return loaded;
}

}  // namespace

TEST_CASE("BTF-built and dwarf2json profiles agree on the sizes and offsets the walkers use") {
  const auto& p = profiles();
  const test::IsfModel& dwarf = test::shipped_isf_model();
  CHECK(p.btf.banner() == test::isf_banner(dwarf));
  for (const auto& [type, fields] : kWalkerFields) {
    CAPTURE(type);
    const Aggregate* btf = p.btf.find_aggregate(type);
    REQUIRE(btf != nullptr);
    REQUIRE(dwarf.user_types.contains(type));
    CHECK(btf->size == dwarf.user_types.at(type).size);
    // The field as a lookup by name reaches it in dwarf2json's file (through anonymous members).
    const auto reference = test::isf_named_fields(dwarf, type);
    for (const auto& field : fields) {
      CAPTURE(field);
      auto a = p.btf.field(type, field);
      const auto b = reference.find(field);
      REQUIRE(a.has_value());
      REQUIRE(b != reference.end());
      CHECK(a->offset == b->second.offset);
      CHECK(p.btf.size_of(a->type) == test::isf_size_of(dwarf, b->second.type));
    }
  }
  for (const auto& symbol : kAnchorSymbols) {
    CAPTURE(symbol);
    REQUIRE(dwarf.symbols.contains(symbol));
    CHECK(p.btf.symbol_address(symbol) == dwarf.symbols.at(symbol).address);
  }
}

TEST_CASE("BTF-built and dwarf2json profiles give the same pslist and pstree on every sample") {
  const auto& p = profiles();
  for (const auto& sample : test::load_samples()) {
    CAPTURE(sample.name);
    auto run = [&](const std::filesystem::path& profile, const char* plugin) {
      SessionOptions options;
      options.profile_paths = {profile};
      options.cache.enabled = false;
      auto session = Session::open(sample.dir / "memory.raw", options);
      REQUIRE(session.has_value());
      auto table = vmi::run_plugin(*session, plugin);
      REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
      // Every column, CREATION TIME included (tk_core is untyped in BTF; its layout is known).
      std::vector<std::string> rows;
      for (const Row& row : table->rows) {
        CHECK(std::holds_alternative<std::int64_t>(row.cells.back()));
        std::string line = std::to_string(row.depth);
        for (std::size_t c = 0; c < row.cells.size(); ++c) {
          line += '|';
          std::visit(
              [&](const auto& v) {
                using V = std::decay_t<decltype(v)>;
                if constexpr (std::is_same_v<V, std::string>)
                  line += v;
                else if constexpr (std::is_same_v<V, std::int64_t> || std::is_same_v<V, std::uint64_t>)
                  line += std::to_string(v);
                else if constexpr (std::is_same_v<V, Absence>)
                  line += v == Absence::unreadable ? "-" : "N/A";
              },
              row.cells[c]);
        }
        rows.push_back(std::move(line));
      }
      return rows;
    };
    for (const char* plugin : {"pslist", "pstree"}) {
      CAPTURE(plugin);
      const auto from_btf = run(p.btf_file, plugin);
      const auto from_dwarf = run(test::shipped_profile(), plugin);
      CHECK(from_btf.size() == sample.processes.size());
      CHECK(from_btf == from_dwarf);
    }
  }
}
