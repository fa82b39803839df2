// kallsyms recovered from memory by table shape, against the guest's own /proc/kallsyms.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/kallsyms.hpp"
#include "vmi/kernel.hpp"
#include "vmi/session.hpp"

using namespace vmi;

namespace {

// A virtual layer with some pages replaced (the pattern of test_corruption.cpp's DamagedLayer).
class PatchedLayer final : public Layer {
 public:
  explicit PatchedLayer(const Layer& base) : base_(base) {}
  std::string_view name() const override { return "patched kernel space"; }
  std::span<const Range> ranges() const override { return base_.ranges(); }

  Expected<std::size_t> read(Addr addr, std::span<std::byte> dst) const override {
    std::size_t done = 0;
    while (done < dst.size()) {
      const Addr at = addr + done;
      const std::size_t in_page = std::min<std::size_t>(4096 - (at & 0xfff), dst.size() - done);
      if (auto patched = pages_.find(at & ~Addr{0xfff}); patched != pages_.end()) {
        std::memcpy(dst.data() + done, patched->second.data() + (at & 0xfff), in_page);
      } else {
        auto got = base_.read(at, dst.subspan(done, in_page));
        if (!got) return done == 0 ? std::move(got).error() : Expected<std::size_t>(done);
        if (*got < in_page) return done + *got;
      }
      done += in_page;
    }
    return done;
  }

  void write(Addr addr, std::span<const std::byte> bytes) {
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      const Addr at = addr + i;
      auto [it, inserted] = pages_.try_emplace(at & ~Addr{0xfff});
      if (inserted) (void)read_exact(base_, at & ~Addr{0xfff}, it->second);
      it->second[at & 0xfff] = bytes[i];
    }
  }

 private:
  const Layer& base_;
  std::map<Addr, std::array<std::byte, 4096>> pages_;
};

// truth/kallsyms: "addr type name [module]" per line, in the kernel's table order.
std::vector<KallsymsSymbol> read_truth(const test::Sample& sample, std::size_t& module_lines) {
  std::istringstream in(test::read_file(sample.dir / "truth/kallsyms"));
  std::vector<KallsymsSymbol> out;
  module_lines = 0;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string address, type, name, module;
    fields >> address >> type >> name >> module;
    if (!module.empty()) {
      ++module_lines;
      continue;
    }
    out.push_back(KallsymsSymbol{name, std::stoull(address, nullptr, 16), type.at(0)});
  }
  return out;
}

}  // namespace

TEST_CASE("kallsyms recovered from memory equals the guest's /proc/kallsyms on every real sample") {
  auto samples = test::load_samples();
  REQUIRE(samples.size() >= 2);
  const std::size_t main_samples = samples.size();
  const auto others = test::load_recovery_samples();  // other flavours, 6.1.0-55, 6.12 (6.4+ layout)
  samples.insert(samples.end(), others.begin(), others.end());
  for (std::size_t n = 0; n < samples.size(); ++n) {
    const auto& sample = samples[n];
    const bool main_sample = n < main_samples;
    CAPTURE(sample.name);
    std::size_t module_lines = 0;
    const auto truth = read_truth(sample, module_lines);
    // The guest loads brd and cpuid: their symbols are in /proc/kallsyms but not in the kernel's
    // own table, which is what is recovered; they are left out of the comparison.
    CHECK(module_lines > 0);
    if (main_sample) CHECK(truth.size() == 94266);
    // The recovery samples' kernels have no profile file: their session recovers one, whose
    // page tables and _text the table search then starts from.
    SessionOptions no_profiles;
    no_profiles.profile_paths = {test::scratch_dir("kallsyms-no-profiles")};
    no_profiles.cache.enabled = false;
    Session session = main_sample ? test::open_sample(sample.dir / "memory.raw", test::profile_for(sample))
                                  : std::move(Session::open(sample.dir / "memory.raw", no_profiles).value());
    auto kernel = session.kernel();
    REQUIRE_MESSAGE(kernel.has_value(), test::error_text(kernel));
    const Layer& space = (*kernel)->kernel_layer();
    const auto text = (*kernel)->symbol("_text");
    REQUIRE(text.has_value());

    const auto started = std::chrono::steady_clock::now();
    auto recovered = recover_kallsyms(space, *text);
    const auto elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started);
    REQUIRE_MESSAGE(recovered.has_value(), test::error_text(recovered));
    MESSAGE(sample.name << ": " << recovered->symbols.size() << " symbols in " << elapsed.count() << " ms");

    // The tables were found where the profile (System.map) says they are, or for kernels without
    // a profile file where the guest's /proc/kallsyms does (6.2+ lists the tables themselves).
    const KallsymsTables& t = recovered->tables;
    auto expected = [&](const std::string& name) -> std::optional<Addr> {
      if (main_sample) return (*kernel)->symbol(name);
      for (const auto& symbol : truth) {
        if (symbol.name == name) return symbol.address;
      }
      return std::nullopt;
    };
    std::size_t tables_checked = 0;
    for (const auto& [name, found] :
         std::vector<std::pair<std::string, Addr>>{{"kallsyms_token_table", t.token_table},
                                                   {"kallsyms_token_index", t.token_index},
                                                   {"kallsyms_markers", t.markers},
                                                   {"kallsyms_seqs_of_names", t.seqs_of_names},
                                                   {"kallsyms_names", t.names},
                                                   {"kallsyms_num_syms", t.num_syms},
                                                   {"kallsyms_offsets", t.offsets},
                                                   {"kallsyms_relative_base", t.relative_base}}) {
      CAPTURE(name);
      if (const auto want = expected(name)) {
        CHECK(found == *want);
        ++tables_checked;
      }
    }
    if (main_sample || sample.release.starts_with("6.12")) CHECK(tables_checked == 8);
    CHECK(t.addresses == 0);
    CHECK(t.absolute_percpu);

    // /proc/kallsyms prints the core kernel's table in table order, so compare entry by entry.
    const auto& symbols = recovered->symbols;
    REQUIRE(symbols.size() == truth.size());
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < truth.size(); ++i) {
      if (symbols[i] == truth[i]) continue;
      if (++mismatches <= 5)
        MESSAGE("entry " << i << ": got " << hex(symbols[i].address) << " " << symbols[i].type << " " << symbols[i].name
                         << ", /proc says " << hex(truth[i].address) << " " << truth[i].type << " " << truth[i].name);
    }
    CHECK(mismatches == 0);
    CHECK(symbols.front().name == "fixed_percpu_data");
    CHECK(symbols.front().address == 0);  // per-CPU symbols keep their small absolute offsets
    CHECK(std::is_sorted(symbols.begin(), symbols.end(),
                         [](const KallsymsSymbol& a, const KallsymsSymbol& b) { return a.address < b.address; }));
  }
}

TEST_CASE("damaged kallsyms tables give a clean error naming the address") {
  const auto samples = test::load_samples();
  REQUIRE(!samples.empty());
  const auto& sample = samples.front();
  Session session = test::open_sample(sample.dir / "memory.raw", test::profile_for(sample));
  auto kernel = session.kernel();
  REQUIRE(kernel.has_value());
  const Layer& space = (*kernel)->kernel_layer();
  const Addr text = *(*kernel)->symbol("_text");
  const Addr token_table = *(*kernel)->symbol("kallsyms_token_table");
  const Addr markers = *(*kernel)->symbol("kallsyms_markers");

  SUBCASE("a token table whose tokens no longer match the index is not found") {
    PatchedLayer damaged(space);
    const std::array<std::byte, 64> junk{};  // NULs shift every token after the first few
    damaged.write(token_table + 8, junk);
    auto result = recover_kallsyms(damaged, text);
    REQUIRE(!result.has_value());
    CHECK(result.error().code == Errc::not_found);
    CHECK(result.error().message == "kallsyms: no token table in patched kernel space between " + hex(text) + " and " +
                                        hex(text + (128ull << 20)));
  }
  SUBCASE("markers that disagree with the names leave the token table without its tables") {
    PatchedLayer damaged(space);
    const std::uint32_t wrong = 12345;
    damaged.write(markers + 4, std::as_bytes(std::span(&wrong, 1)));
    auto result = recover_kallsyms(damaged, text);
    REQUIRE(!result.has_value());
    CHECK(result.error().code == Errc::bad_format);
    CHECK(result.error().message == "kallsyms: token table at " + hex(token_table) +
                                        " has no kallsyms_markers/kallsyms_names/kallsyms_num_syms before it");
  }
  SUBCASE("a scan range that stops before the tables finds nothing") {
    auto result = recover_kallsyms(space, text, KallsymsOptions{1u << 20});
    REQUIRE(!result.has_value());
    CHECK(result.error().code == Errc::not_found);
  }
}

TEST_CASE(
    "kallsyms fuzz seeds (fuzz/make_corpus.py) decode: 6.1 and seqs_of_names layouts, relative and absolute per-CPU") {
  constexpr Addr kText = 0xffffffff81000000ull;
  const auto dir = test::source_dir() / "fuzz/corpus/kallsyms";
  std::size_t seeds = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    CAPTURE(name);
    const std::string bytes = test::read_file(entry.path());
    const MemoryLayer kernel("seed", std::as_bytes(std::span(bytes.data(), bytes.size())), kText);
    auto recovered = recover_kallsyms(kernel, kText, KallsymsOptions{bytes.size()});
    REQUIRE_MESSAGE(recovered.has_value(), test::error_text(recovered));
    const bool percpu = name.ends_with("-percpu");
    REQUIRE(recovered->symbols.size() == (percpu ? 301u : 300u));
    CHECK(recovered->tables.absolute_percpu == percpu);
    CHECK((recovered->tables.seqs_of_names != 0) == name.starts_with("tables-seqs"));
    const auto& last = recovered->symbols.back();
    CHECK(last.name == "sym_299");
    CHECK(last.type == 'T');  // every third symbol is data, the rest text
    CHECK(last.address == kText + 16 * 299);
    ++seeds;
  }
  CHECK(seeds == 4);
}
