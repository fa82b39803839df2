// The plugin framework: declared rows, typed options, streaming sinks and the renderers' shapes.
#include <doctest/doctest.h>

#include <sstream>

#include "render.hpp"
#include "samples.hpp"
#include "support.hpp"
#include "vmi/plugin.hpp"
#include "vmi/rows.hpp"

using namespace vmi;

namespace {

struct Gadget {
  std::uint64_t base = 0;
  std::int32_t count = 0;
  std::string label;
  std::optional<std::uint32_t> size;
  Maybe<std::string> device;
  bool live = false;
  std::int64_t seen_ns = 0;
  Code code;
};

constexpr auto kGadgetRow =
    declare_row(column<&Gadget::base, ColumnType::address>("Base"), column<&Gadget::count>("Count"),
                column<&Gadget::label>("Label"), column<&Gadget::size>("Size"), column<&Gadget::device>("Device"),
                column<&Gadget::live>("Live"), column<&Gadget::seen_ns, ColumnType::timestamp>("Seen"),
                column<&Gadget::code>("Bytes"), column<&Gadget::code, ColumnType::disassembly>("Code"));

Gadget sample_gadget() {
  Gadget gadget;
  gadget.base = 0xffffffffc0a00000;
  gadget.count = -3;
  gadget.label = "a,\"b\"";
  gadget.device = Absence::not_applicable;  // size stays unreadable
  gadget.live = true;
  gadget.seen_ns = 1'700'000'000'123'456'789;
  gadget.code = {0xffffffff81000000, {0x55, 0x48, 0x89, 0xe5, 0xc3}};  // push rbp; mov rbp, rsp; ret
  return gadget;
}

std::string rendered(cli::Renderer renderer, const Table& table) {
  std::ostringstream out;
  cli::render(table, renderer, out);
  return out.str();
}

// Counts the rows it is given and asks for no more after `limit`.
class StopAfter final : public RowSink {
 public:
  explicit StopAfter(std::size_t limit) : limit_(limit) {}
  void begin(std::span<const Column> /*columns*/, bool /*tree*/) override {}
  bool row(const Row& /*row*/) override { return ++rows_ < limit_; }
  std::size_t rows() const { return rows_; }

 private:
  std::size_t limit_;
  std::size_t rows_ = 0;
};

}  // namespace

TEST_CASE("a declared column takes its type from its field and its cell from the field's value") {
  static_assert(kGadgetRow.columns[0].type == ColumnType::address);
  static_assert(kGadgetRow.columns[1].type == ColumnType::integer);
  static_assert(kGadgetRow.columns[2].type == ColumnType::text);
  static_assert(kGadgetRow.columns[3].type == ColumnType::integer);
  static_assert(kGadgetRow.columns[4].type == ColumnType::text);
  static_assert(kGadgetRow.columns[5].type == ColumnType::boolean);
  static_assert(kGadgetRow.columns[6].type == ColumnType::timestamp);
  static_assert(kGadgetRow.columns[7].type == ColumnType::bytes);
  static_assert(kGadgetRow.columns[8].type == ColumnType::disassembly);
  const Row row = make_row(kGadgetRow, sample_gadget(), 2);
  REQUIRE(row.cells.size() == 9);
  CHECK(row.depth == 2);
  CHECK(row.cells[0] == Cell{std::uint64_t{0xffffffffc0a00000}});
  CHECK(row.cells[1] == Cell{std::int64_t{-3}});
  CHECK(row.cells[2] == Cell{std::string("a,\"b\"")});
  CHECK(row.cells[3] == Cell{Absence::unreadable});
  CHECK(row.cells[4] == Cell{Absence::not_applicable});
  CHECK(row.cells[5] == Cell{true});
  CHECK(row.cells[6] == Cell{std::int64_t{1'700'000'000'123'456'789}});
  CHECK(std::get<Code>(row.cells[7]).bytes.size() == 5);
}

TEST_CASE("each renderer shows unreadable as '-', not applicable as 'N/A' and both as JSON null") {
  Table table{kGadgetRow.columns, {make_row(kGadgetRow, sample_gadget())}, false};
  const std::string text = rendered(cli::Renderer::table, table);
  CHECK(text.find("0xffffffffc0a00000  -3     a,\"b\"  -     N/A     True  2023-11-14 22:13:20.123456 UTC") !=
        std::string::npos);
  CHECK(text.find("55 48 89 e5 c3") != std::string::npos);
  CHECK(text.find("0xffffffff81000000: push rbp ; 0xffffffff81000001: mov rbp, rsp ; 0xffffffff81000004: ret") !=
        std::string::npos);

  const std::string csv = rendered(cli::Renderer::csv, table);
  CHECK(csv.starts_with("Base,Count,Label,Size,Device,Live,Seen,Bytes,Code\n"));
  CHECK(csv.find("0xffffffffc0a00000,-3,\"a,\"\"b\"\"\",-,N/A,True,2023-11-14 22:13:20.123456 UTC,55 48 89 e5 c3,") !=
        std::string::npos);

  const std::string jsonl = rendered(cli::Renderer::jsonl, table);
  CHECK(jsonl ==
        "{\"Base\": 18446744072646295552, \"Count\": -3, \"Label\": \"a,\\\"b\\\"\", \"Size\": null, "
        "\"Device\": null, \"Live\": true, \"Seen\": \"2023-11-14 22:13:20.123456 UTC\", \"Bytes\": \"554889e5c3\", "
        "\"Code\": \"0xffffffff81000000: push rbp\\n0xffffffff81000001: mov rbp, rsp\\n0xffffffff81000004: ret\"}\n");
}

TEST_CASE("bytes Capstone cannot decode are shown after the instructions, not dropped") {
  Gadget gadget = sample_gadget();
  gadget.code.bytes = {0xc3, 0x0f};  // ret, then the first byte of a two-byte opcode
  Table table{kGadgetRow.columns, {make_row(kGadgetRow, gadget)}, false};
  CHECK(rendered(cli::Renderer::jsonl, table).find("0xffffffff81000000: ret\\n0xffffffff81000001: (bad) 0f") !=
        std::string::npos);
}

TEST_CASE("a tree's rows nest under __children in JSON and carry TreeDepth in JSON lines and CSV") {
  Table table{kGadgetRow.columns, {}, true};
  for (std::uint32_t depth : {0u, 1u, 2u, 1u, 0u}) table.rows.push_back(make_row(kGadgetRow, sample_gadget(), depth));
  const std::string json = rendered(cli::Renderer::json, table);
  const auto parsed = test::run_command({"python3", "-c",
                                         "import json,sys\n"
                                         "def walk(rows, depth):\n"
                                         "    for r in rows:\n"
                                         "        print(depth, r['Count'])\n"
                                         "        walk(r['__children'], depth + 1)\n"
                                         "walk(json.loads(sys.argv[1]), 0)\n",
                                         json});
  REQUIRE_MESSAGE(parsed.exit_code == 0, parsed.err);
  CHECK(parsed.out == "0 -3\n1 -3\n2 -3\n1 -3\n0 -3\n");
  const std::string jsonl = rendered(cli::Renderer::jsonl, table);
  CHECK(jsonl.starts_with("{\"TreeDepth\": 0, \"Base\""));
  CHECK(jsonl.find("{\"TreeDepth\": 2, ") != std::string::npos);
  CHECK(rendered(cli::Renderer::csv, table).find("\n2,0xffffffffc0a00000,") != std::string::npos);
}

TEST_CASE("plugin options are checked against their declared types") {
  const Plugin* pslist = find_plugin("linux.pslist");
  REQUIRE(pslist != nullptr);
  PluginArgs args;
  args.values["pid"] = "1,42";
  args.values["threads"] = "";
  CHECK(check_args(*pslist, args).has_value());
  CHECK(args.integers("pid").value() == std::vector<std::int64_t>{1, 42});
  CHECK(args.flag("threads"));

  args.values["pid"] = "1,,2";
  CHECK(check_args(*pslist, args).error().message == "--pid: '' is not an integer (expected a comma-separated list)");
  args.values["pid"] = "1";
  args.values["threads"] = "yes";
  CHECK(check_args(*pslist, args).error().message == "--threads is a flag and takes no value");
  args.values.erase("threads");
  args.values["color"] = "red";
  CHECK(check_args(*pslist, args).error().message == "plugin 'linux.pslist' has no option --color");
  const PluginOption path{"dump-dir", OptionType::path, ""};
  CHECK(check_option_value(path, "/nonexistent/dir").error().message ==
        "--dump-dir: '/nonexistent/dir' does not exist");
  CHECK(check_option_value(path, VMI_TEST_SOURCE_DIR).has_value());
}

TEST_CASE("pslist streams: a sink that wants three rows stops the walk after three") {
  const auto samples = test::load_samples();
  const auto& sample = samples.front();
  auto session = test::open_sample(sample.dir / "memory.raw", test::profile_for(sample));
  StopAfter sink(3);
  REQUIRE(run_plugin(session, "pslist", {}, sink).has_value());
  CHECK(sink.rows() == 3);
  REQUIRE(sample.processes.size() > 3);
}

TEST_CASE("a plugin given an option it does not declare fails naming the option") {
  const auto samples = test::load_samples();
  auto session = test::open_sample(samples.front().dir / "memory.raw", test::profile_for(samples.front()));
  PluginArgs args;
  args.values["threads"] = "";
  CHECK(run_plugin(session, "pstree", args).error().message == "plugin 'linux.pstree' has no option --threads");
}
