// The command line: plugin listing, both argument orders, renderers, exit codes and one-line
// errors for bad input, and that the evidence file is never modified.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "samples.hpp"
#include "support.hpp"
#include "windows_images.hpp"

using namespace vmi;

namespace {

std::size_t count_lines(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

const test::Sample& pinned_sample() {
  static const auto samples = test::load_samples();
  REQUIRE(!samples.empty());
  REQUIRE_MESSAGE(samples.front().env.at("PINNED") == "1",
                  "CLI tests read the pinned kernel's samples with the shipped profile");
  return samples.front();
}

std::vector<std::string> with_profile(std::vector<std::string> args,
                                      const std::filesystem::path& profile = test::shipped_profile()) {
  static const auto cache = test::scratch_dir("cli-cache").string();  // emptied once per run
  args.insert(args.begin(), {"--profile", profile.string(), "--cache-dir", cache});
  return args;
}

// Copies the first `size` bytes of a file.
std::filesystem::path truncated_copy(const std::filesystem::path& from, const std::string& name, std::size_t size) {
  const auto to = test::scratch_dir("cli-" + name) / name;
  std::ifstream in(from, std::ios::binary);
  std::string bytes(size, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  test::write_file(to, bytes);
  return to;
}

}  // namespace

TEST_CASE("--help lists every plugin and the exit codes") {
  auto result = test::run_cli({"--help"});
  CHECK(result.exit_code == 0);
  CHECK(result.out.find("pslist") != std::string::npos);
  CHECK(result.out.find("pstree") != std::string::npos);
  CHECK(result.out.find("info") != std::string::npos);
  CHECK(result.out.find("Exit codes: 0 success") != std::string::npos);
}

TEST_CASE("pslist IMAGE and -f IMAGE pslist give the same table; JSON and CSV carry every process") {
  const auto& sample = pinned_sample();
  const auto image = (sample.dir / "memory.raw").string();
  auto positional = test::run_cli(with_profile({"pslist", image}));
  auto flagged = test::run_cli(with_profile({"-f", image, "pslist"}));
  REQUIRE(positional.exit_code == 0);
  CHECK(positional.out == flagged.out);
  CHECK(positional.err.empty());
  CHECK(positional.out.starts_with("OFFSET (V)"));
  CHECK(count_lines(positional.out) == sample.processes.size() + 1);

  auto json = test::run_cli(with_profile({"-r", "json", "pslist", image}));
  REQUIRE(json.exit_code == 0);
  std::size_t objects = 0;
  for (std::size_t at = 0; (at = json.out.find("\"PID\": ", at)) != std::string::npos; ++at) ++objects;
  CHECK(objects == sample.processes.size());
  CHECK(json.out.find("\"COMM\": \"vmi-wl-root\"") != std::string::npos);
  CHECK(json.out.find("\"COMM\": \"vmi-wl (c1) x\"") != std::string::npos);

  auto csv = test::run_cli(with_profile({"-r", "csv", "pslist", image}));
  REQUIRE(csv.exit_code == 0);
  CHECK(csv.out.starts_with(
      "OFFSET (V),PID,TID,PPID,COMM,NAME,THREADS,UID,GID,EUID,EGID,START (ns since boot),CREATION TIME\n"));
  CHECK(count_lines(csv.out) == sample.processes.size() + 1);

  auto tree = test::run_cli(with_profile({"pstree", image}));
  REQUIRE(tree.exit_code == 0);
  CHECK(tree.out.find("\n** 0x") != std::string::npos);  // grandchildren are indented two levels
}

TEST_CASE("info names the format, the ranges, the kernel and the KASLR shift") {
  const auto& sample = pinned_sample();
  auto result = test::run_cli(with_profile({"info", (sample.dir / "memory.elf").string()}));
  REQUIRE(result.exit_code == 0);
  CHECK(result.out.find("format                          elf-core") != std::string::npos);
  CHECK(result.out.find("kernel release                  " + sample.release) != std::string::npos);
  CHECK(result.out.find("KASLR virtual shift") != std::string::npos);
  CHECK(result.out.find("vCPU 0") != std::string::npos);
  CHECK(result.out.find("cr3=0x") != std::string::npos);
}

TEST_CASE("bad input ends in one clear line naming the file, and a documented exit code") {
  const auto& sample = pinned_sample();
  const auto dir = test::scratch_dir("cli-bad");

  SUBCASE("empty file") {
    test::write_file(dir / "empty.raw", "");
    auto result = test::run_cli(with_profile({"pslist", (dir / "empty.raw").string()}));
    CHECK(result.exit_code == 2);
    CHECK(result.err == "vmi-forensics: '" + (dir / "empty.raw").string() + "' is empty\n");
  }
  SUBCASE("a file that is not a memory image") {
    test::write_file(dir / "report.txt", "incident report\n");
    auto result = test::run_cli(with_profile({"pslist", (dir / "report.txt").string()}));
    CHECK(result.exit_code == 2);
    CHECK(count_lines(result.err) == 1);
    CHECK(result.err.find("report.txt' (16 bytes) is not a memory image") != std::string::npos);
  }
  SUBCASE("a truncated ELF core") {
    const auto image = truncated_copy(sample.dir / "memory.elf", "cut.elf", 64 << 20);
    auto result = test::run_cli(with_profile({"pslist", image.string()}));
    CHECK(result.exit_code == 2);
    CHECK(count_lines(result.err) == 1);
    CHECK(result.err.find("cut.elf': segment #") != std::string::npos);
    CHECK(result.err.find("runs past end of file (0x4000000)") != std::string::npos);
  }
  SUBCASE("a raw image cut before the kernel has no Linux kernel") {
    const auto image = truncated_copy(sample.dir / "memory.raw", "cut.raw", 1 << 20);
    auto result = test::run_cli(with_profile({"pslist", image.string()}));
    CHECK(result.exit_code == 3);
    CHECK(count_lines(result.err) == 1);
    CHECK(result.err.starts_with("vmi-forensics: raw '" + image.string() +
                                 "': no supported kernel found (linux: no Linux kernel found (no 'Linux version' "
                                 "banner in physical memory); windows: "));
  }
  SUBCASE("a profile of another kernel") {
    const auto other = dir / "other.json";
    test::write_file(other,
                     R"({"metadata": {"format": "6.2.0", "linux": {}}, "base_types": {}, "user_types": {}, "enums": {},
      "symbols": {"_text": {"address": 18446744071578845184}, "init_top_pgt": {"address": 18446744071578849280},
                  "linux_banner": {"address": 18446744071578853376, "constant_data": "TGludXggdmVyc2lvbiA0LjAuMAoA"}}})");
    auto result =
        test::run_cli({"--no-cache", "--profile", other.string(), "pslist", (sample.dir / "memory.raw").string()});
    CHECK(result.exit_code == 3);
    CHECK(count_lines(result.err) == 1);
    CHECK(result.err.find("no profile matches the kernel 'Linux version " + sample.release) != std::string::npos);
  }
  SUBCASE("a damaged profile") {
    const std::string good = test::read_file(test::shipped_profile());
    test::write_file(dir / "damaged.json.xz", good.substr(0, good.size() / 2));
    auto result = test::run_cli({"--no-cache", "--profile", (dir / "damaged.json.xz").string(), "pslist",
                                 (sample.dir / "memory.raw").string()});
    CHECK(result.exit_code == 4);
    CHECK(count_lines(result.err) == 1);
    CHECK(result.err.find("profile '" + (dir / "damaged.json.xz").string() + "': xz data is damaged") !=
          std::string::npos);
  }
}

// A plugin's JSON, JSON lines or CSV, parsed by Python's own json/csv modules into "pid ppid
// threads uid gid euid egid start_ticks name" lines, sorted by pid, each after its tree depth (from
// JSON's __children nesting, else the TreeDepth key or column) and a "|".
static std::vector<std::string> parsed_rows(const std::string& output, const std::string& renderer) {
  const auto dir = test::scratch_dir("cli-parse-" + renderer);
  test::write_file(dir / "out", output);
  const std::string script =
      "import csv, json, sys\n"
      "path, renderer = sys.argv[1], sys.argv[2]\n"
      "def flat(rows, depth):\n"
      "    for r in rows:\n"
      "        yield depth, r\n"
      "        yield from flat(r['__children'], depth + 1)\n"
      "if renderer == 'json':\n"
      "    rows = list(flat(json.load(open(path)), 0))\n"
      "elif renderer == 'jsonl':\n"
      "    rows = [(r.get('TreeDepth', 0), r) for r in map(json.loads, open(path))]\n"
      "else:\n"
      "    rows = [(int(r.get('TreeDepth', 0)), r) for r in csv.DictReader(open(path))]\n"
      "for depth, r in sorted(rows, key=lambda x: int(x[1]['PID'])):\n"
      "    name = r['NAME']\n"
      "    if name.startswith('kworker/') and not name.startswith('kworker/R-'):\n"
      "        name = name.split('+')[0].split('-')[0]\n"
      "    print(str(depth) + '|' + ' '.join(str(r[k]) for k in ['PID', 'PPID', 'THREADS', 'UID', 'GID', 'EUID', "
      "'EGID']),\n"
      "          int(r['START (ns since boot)']) // 10000000, name)\n";
  auto parsed = test::run_command({"python3", "-c", script, (dir / "out").string(), renderer});
  REQUIRE_MESSAGE(parsed.exit_code == 0, parsed.err);
  std::vector<std::string> rows;
  std::istringstream lines(parsed.out);
  for (std::string line; std::getline(lines, line);) rows.push_back(line);
  return rows;
}

TEST_CASE("pslist's and pstree's JSON, JSON lines and CSV parse back to the guest's /proc, cell by cell") {
  const auto& sample = pinned_sample();
  const auto image = (sample.dir / "memory.raw").string();
  std::vector<std::string> truth;
  for (const auto& p : sample.processes) {
    std::string name = p.comm;
    if (name.starts_with("kworker/") && !name.starts_with("kworker/R-"))
      name = name.substr(0, name.find_first_of("+-", 8));
    truth.push_back(fmt::format("{} {} {} {} {} {} {} {} {}", p.pid, p.ppid, p.threads, p.uid, p.gid, p.euid, p.egid,
                                p.start_ticks, name));
  }
  for (const std::string plugin : {"pslist", "pstree"}) {
    std::vector<std::string> first;  // the JSON's rows, depths included
    for (const std::string renderer : {"json", "jsonl", "csv"}) {
      CAPTURE(plugin);
      CAPTURE(renderer);
      auto result = test::run_cli(with_profile({plugin, image, "-r", renderer}));
      REQUIRE(result.exit_code == 0);
      const auto rows = parsed_rows(result.out, renderer);
      std::vector<std::string> cells;
      for (const auto& row : rows) cells.push_back(row.substr(row.find('|') + 1));
      CHECK(cells == truth);
      if (first.empty()) first = rows;
      CHECK(rows == first);  // the same tree depths in every format
      if (plugin == "pslist") CHECK(rows.front().starts_with("0|"));
    }
    // pstree's depths are not all 0: the workload's tree is four levels deep.
    if (plugin == "pstree")
      CHECK(std::any_of(first.begin(), first.end(), [](const std::string& row) { return row.starts_with("3|"); }));
  }
}

TEST_CASE("JSON lines and CSV print one line per row") {
  const auto& sample = pinned_sample();
  const auto image = (sample.dir / "memory.raw").string();
  auto jsonl = test::run_cli(with_profile({"pslist", image, "-r", "jsonl"}));
  REQUIRE(jsonl.exit_code == 0);
  CHECK(count_lines(jsonl.out) == sample.processes.size());
  auto csv = test::run_cli(with_profile({"pslist", image, "-r", "csv"}));
  CHECK(count_lines(csv.out) == sample.processes.size() + 1);
}

TEST_CASE("global options work after the command and the image as well as before them") {
  const auto& sample = pinned_sample();
  const auto image = (sample.dir / "memory.raw").string();
  const auto cache = test::scratch_dir("cli-order-cache").string();
  const auto profile = test::shipped_profile().string();
  auto before = test::run_cli({"--profile", profile, "--cache-dir", cache, "-r", "json", "pslist", image});
  auto after = test::run_cli({"pslist", image, "-r", "json", "--profile", profile, "--cache-dir", cache});
  auto between = test::run_cli({"pslist", "--profile", profile, image, "--cache-dir", cache, "-r", "json"});
  REQUIRE(before.exit_code == 0);
  CHECK(after.exit_code == 0);
  CHECK(between.exit_code == 0);
  CHECK(before.out.starts_with("["));
  CHECK(after.out == before.out);
  CHECK(between.out == before.out);
  auto tree = test::run_cli({"pstree", image, "-r", "csv", "--profile", profile, "--cache-dir", cache});
  CHECK(tree.exit_code == 0);
  CHECK(tree.out.starts_with("TreeDepth,OFFSET (V),PID"));
}

TEST_CASE("an unknown command names itself and lists the commands") {
  auto result = test::run_cli({"yarascan", "dump.raw"});
  CHECK(result.exit_code == 1);
  CHECK(count_lines(result.err) == 1);
  CHECK(result.err.starts_with("vmi-forensics: unknown command 'yarascan'; commands: info, pslist, pstree, "));
  auto after_options = test::run_cli({"-r", "json", "--profile", "x.json", "netscan"});
  CHECK(after_options.exit_code == 1);
  CHECK(after_options.err.starts_with("vmi-forensics: unknown command 'netscan'; commands: "));
}

TEST_CASE("info honours -r json and -r csv") {
  const auto& sample = pinned_sample();
  const auto image = (sample.dir / "memory.elf").string();
  auto json = test::run_cli(with_profile({"info", image, "-r", "json"}));
  REQUIRE(json.exit_code == 0);
  const auto dir = test::scratch_dir("cli-info-json");
  test::write_file(dir / "info.json", json.out);
  // An independent JSON parser reads it back; the kernel's release and format are where they belong.
  auto parsed = test::run_command({"python3", "-c",
                                   "import json,sys; d=json.load(open(sys.argv[1])); "
                                   "print(d['format']); print(d['kernel']['kernel release']); print(len(d['vcpus']))",
                                   (dir / "info.json").string()});
  REQUIRE(parsed.exit_code == 0);
  CHECK(parsed.out.starts_with("elf-core\n" + sample.release + "\n"));
  CHECK(parsed.out.find("\n0\n") == std::string::npos);

  auto csv = test::run_cli(with_profile({"-r", "csv", "info", image}));
  REQUIRE(csv.exit_code == 0);
  CHECK(csv.out.starts_with("Section,Name,Value\nimage,image,"));
  CHECK(csv.out.find("\nimage,format,elf-core\n") != std::string::npos);
  CHECK(csv.out.find("\nkernel,kernel release," + sample.release + "\n") != std::string::npos);
}

TEST_CASE("a --profile that does not exist is an error naming it") {
  const auto& sample = pinned_sample();
  const auto missing = test::scratch_dir("cli-missing-profile") / "typo.json.xz";
  auto result = test::run_cli({"--profile", missing.string(), "pslist", (sample.dir / "memory.raw").string()});
  CHECK(result.exit_code == 1);
  CHECK(result.out.empty());
  CHECK(result.err == "vmi-forensics: profile '" + missing.string() + "': No such file or directory\n");
}

TEST_CASE("an image that is not a regular file is refused at once, a FIFO included") {
  const auto dir = test::scratch_dir("cli-fifo");
  const auto fifo = dir / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // `timeout` turns the old behaviour (open blocking until a writer came) into a failure.
  auto result = test::run_command({"timeout", "20", test::cli_path().string(), "pslist", fifo.string()});
  CHECK(result.exit_code == 2);
  CHECK(result.err == "vmi-forensics: '" + fifo.string() + "' is not a regular file (a FIFO)\n");
  auto directory = test::run_cli({"pslist", dir.string()});
  CHECK(directory.exit_code == 2);
  CHECK(directory.err == "vmi-forensics: '" + dir.string() + "' is not a regular file (a directory)\n");
}

TEST_CASE("a plugin answers to its short name, its OS-qualified name and Volatility 3's name alike") {
  const auto& sample = pinned_sample();
  const auto image = (sample.dir / "memory.raw").string();
  auto short_name = test::run_cli(with_profile({"pslist", image, "--pid", "1"}));
  REQUIRE(short_name.exit_code == 0);
  CHECK(count_lines(short_name.out) == 2);
  for (const char* name : {"linux.pslist", "linux.pslist.PsList"}) {
    CAPTURE(name);
    auto named = test::run_cli(with_profile({name, image, "--pid", "1"}));
    CHECK(named.exit_code == 0);
    CHECK(named.out == short_name.out);
  }
  auto tree = test::run_cli(with_profile({"linux.pstree.PsTree", image}));
  CHECK(tree.exit_code == 0);
  CHECK(tree.out == test::run_cli(with_profile({"pstree", image})).out);
}

TEST_CASE("--help lists the plugins of each OS, one line each; help PLUGIN shows columns and options") {
  auto listing = test::run_cli({"--help"});
  REQUIRE(listing.exit_code == 0);
  CHECK(listing.out.find("Plugins by OS") != std::string::npos);
  CHECK(listing.out.find("\n  linux:\n    linux.pslist    pslist    List processes") != std::string::npos);
  CHECK(listing.out.find("\n    linux.pstree    pstree    Show processes") != std::string::npos);

  auto help = test::run_cli({"help", "linux.pslist.PsList"});
  REQUIRE(help.exit_code == 0);
  CHECK(help.out.starts_with("linux.pslist (linux): List processes from the kernel's task list\n"));
  CHECK(help.out.find("  short name: pslist\n") != std::string::npos);
  CHECK(help.out.find("    PPID                    integer\n") != std::string::npos);
  CHECK(help.out.find("    CREATION TIME           timestamp\n") != std::string::npos);
  CHECK(help.out.find("    --pid N[,N...]") != std::string::npos);
  CHECK(help.out.find("    --threads") != std::string::npos);
  CHECK(test::run_cli({"help", "pstree"}).out.starts_with("linux.pstree (linux): "));

  auto unknown = test::run_cli({"help", "netscan"});
  CHECK(unknown.exit_code == 1);
  CHECK(unknown.err.starts_with("vmi-forensics: no plugin named 'netscan'; plugins: linux.pslist, linux.pstree"));
}

TEST_CASE("plugins never modify the evidence file") {
  const auto& sample = pinned_sample();
  const auto image = sample.dir / "memory.raw";
  auto fingerprint = [&] {
    struct stat info {};
    ::stat(image.c_str(), &info);
    std::ifstream in(image, std::ios::binary);
    std::string bytes(1 << 20, '\0');
    std::uint64_t hash = 1469598103934665603ull;
    while (in.read(bytes.data(), static_cast<std::streamsize>(bytes.size())) || in.gcount() > 0) {
      for (std::streamsize i = 0; i < in.gcount(); i += 64)
        hash = (hash ^ static_cast<unsigned char>(bytes[i])) * 1099511628211ull;
    }
    return std::make_tuple(info.st_size, info.st_mtim.tv_sec, info.st_mtim.tv_nsec, hash);
  };
  const auto before = fingerprint();
  for (const char* command : {"info", "pslist", "pstree"}) {
    CHECK(test::run_cli(with_profile({command, image.string()})).exit_code == 0);
  }
  CHECK(fingerprint() == before);
}

TEST_CASE("profile build turns a vmlinux's BTF and System.map into an ISF that pslist reads") {
  const auto& sample = pinned_sample();
  const std::filesystem::path kernel = sample.env.at("KERNEL_DIR");
  const auto out = test::scratch_dir("cli-profile-build") / "built.json";
  auto built = test::run_cli({"profile", "build", "--vmlinux", (kernel / "vmlinux").string(), "--system-map",
                              (kernel / "System.map").string(), "-o", out.string()});
  REQUIRE(built.exit_code == 0);
  CHECK(built.err.starts_with("wrote " + out.string() + ": "));
  CHECK(built.err.find("banner 'Linux version " + sample.release) != std::string::npos);
  auto listed =
      test::run_cli({"--no-cache", "--profile", out.string(), "pslist", (sample.dir / "memory.elf").string()});
  REQUIRE(listed.exit_code == 0);
  CHECK(count_lines(listed.out) == sample.processes.size() + 1);

  auto missing = test::run_cli({"profile", "build", "--vmlinux", "/nonexistent/vmlinux", "-o", out.string()});
  CHECK(missing.exit_code == 1);  // CLI11 rejects a file that does not exist
}

TEST_CASE("profile build reads DWARF from the debug vmlinux by default and says where types and symbols came from") {
  const auto& sample = pinned_sample();
  const std::filesystem::path kernel = sample.env.at("KERNEL_DIR");
  const auto out = test::scratch_dir("cli-profile-build-dwarf") / "dwarf.json.zst";
  auto built = test::run_cli({"profile", "build", "--vmlinux", (kernel / "vmlinux.dbg").string(), "-o", out.string()});
  REQUIRE_MESSAGE(built.exit_code == 0, built.err);
  // The counts it states are those of the file it wrote (read back with simdjson's DOM, not our
  // reader), and its symbols are the names binutils' nm lists in the vmlinux.
  const test::IsfModel written = test::read_isf_model(out);
  const auto listed_by_nm = test::nm_symbols(kernel / "vmlinux.dbg");
  CHECK(written.symbols.size() == listed_by_nm.size());
  CHECK(built.err.starts_with(fmt::format("wrote {}: {} types from DWARF, {} symbols from ELF symbol table (",
                                          out.string(), written.user_types.size(), listed_by_nm.size())));
  auto listed =
      test::run_cli({"--no-cache", "--profile", out.string(), "pslist", (sample.dir / "memory.raw").string()});
  REQUIRE(listed.exit_code == 0);
  CHECK(count_lines(listed.out) == sample.processes.size() + 1);

  // The stripped vmlinux has BTF but no DWARF: asking for DWARF is a clean failure (exit 4).
  auto no_dwarf = test::run_cli(
      {"profile", "build", "--vmlinux", (kernel / "vmlinux").string(), "--types", "dwarf", "-o", out.string()});
  CHECK(no_dwarf.exit_code == 4);
  CHECK(no_dwarf.err == "vmi-forensics: " + (kernel / "vmlinux").string() +
                            ": no DWARF (.debug_info); Debian ships it in linux-image-*-dbg\n");
  auto bad_types = test::run_cli(
      {"profile", "build", "--vmlinux", (kernel / "vmlinux").string(), "--types", "stabs", "-o", out.string()});
  CHECK(bad_types.exit_code == 1);
}

// Every row of a plugin's JSON, JSON lines or CSV output as one canonical line, by Python's
// json/csv modules: tree depth, then each column's value (addresses as integers whatever their
// rendering, "-" and "N/A" as null, CSV's True/False as booleans and its spaced hexdump as
// JSON's), in output order.
static std::vector<std::string> canonical_rows(const std::string& output, const std::string& renderer) {
  const auto dir = test::scratch_dir("cli-canonical-" + renderer);
  test::write_file(dir / "out", output);
  const std::string script =
      "import csv, json, re, sys\n"
      "path, renderer = sys.argv[1], sys.argv[2]\n"
      "def flat(rows, depth):\n"
      "    for r in rows:\n"
      "        yield depth, {k: v for k, v in r.items() if k != '__children'}\n"
      "        yield from flat(r['__children'], depth + 1)\n"
      "def value(v):\n"
      "    if v is None or v in ('-', 'N/A'): return None\n"
      "    if renderer == 'csv' and re.fullmatch('([0-9a-f]{2} )+[0-9a-f]{2}', v): v = v.replace(' ', '')\n"
      "    if isinstance(v, str) and re.fullmatch('0x[0-9a-f]+', v): return int(v, 16)\n"
      "    if isinstance(v, str) and v.lstrip('-').isdigit(): return int(v)\n"
      "    if renderer == 'csv' and v in ('True', 'False'): return v == 'True'\n"
      "    return v\n"
      "if renderer == 'json':\n"
      "    rows = list(flat(json.load(open(path)), 0))\n"
      "elif renderer == 'jsonl':\n"
      "    rows = [(r.pop('TreeDepth', 0), r) for r in map(json.loads, open(path))]\n"
      "else:\n"
      "    rows = [(int(r.pop('TreeDepth', 0)), r) for r in csv.DictReader(open(path, newline=''))]\n"
      "for depth, r in rows:\n"
      "    print(json.dumps([depth] + [[k, value(v)] for k, v in r.items()]))\n";
  auto parsed = test::run_command({"python3", "-c", script, (dir / "out").string(), renderer});
  REQUIRE_MESSAGE(parsed.exit_code == 0, parsed.err);
  std::vector<std::string> rows;
  std::istringstream lines(parsed.out);
  for (std::string line; std::getline(lines, line);) rows.push_back(line);
  return rows;
}

TEST_CASE("every plugin's JSON, JSON lines and CSV parse back to the same cells, one row per library row") {
  const auto& sample = pinned_sample();
  auto raw = test::open_sample(sample.dir / "memory.raw", test::shipped_profile());
  auto elf = test::open_sample(sample.dir / "memory.elf", test::shipped_profile());
  // The Windows plugins read a SYNTHETIC Windows 10 image (synthetic_windows.hpp).
  auto windows = test::open_sample(test::windows10_raw_image(), test::windows_profiles());
  for (const Plugin* plugin : plugins()) {
    const std::string name(plugin->name);
    CAPTURE(name);
    // A plugin that reads vCPU registers needs an image that saved them (the ELF core).
    const bool vcpus = plugin->needs == Requirement::vcpus;
    const bool on_windows = plugin->os == "windows";
    const auto image = on_windows ? test::windows10_raw_image().string()
                                  : (sample.dir / (vcpus ? "memory.elf" : "memory.raw")).string();
    // A check that shows only what it accuses has no rows on a clean guest: check_creds shows
    // every cred with --all; hidden_modules has nothing to show, nor keyboard_notifiers on a guest
    // whose kernel registered no keyboard notifier.
    if (name == "linux.hidden_modules" || name == "linux.keyboard_notifiers") continue;
    const bool all = name == "linux.check_creds";
    PluginArgs args;
    if (all) args.values = {{"all", ""}};
    auto table = run_plugin(on_windows ? windows : vcpus ? elf : raw, name, args);
    REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
    REQUIRE(!table->rows.empty());
    std::vector<std::string> first;
    for (const std::string renderer : {"json", "jsonl", "csv"}) {
      CAPTURE(renderer);
      std::vector<std::string> command = {name, image, "-r", renderer};
      if (all) command.emplace_back("--all");
      auto result = test::run_cli(on_windows ? with_profile(command, test::windows_profiles()) : with_profile(command));
      REQUIRE(result.exit_code == 0);
      const auto rows = canonical_rows(result.out, renderer);
      CHECK(rows.size() == table->rows.size());
      if (first.empty()) first = rows;
      CHECK(rows == first);
    }
    // The cells are the library's: every integer and text cell of the first row appears as is.
    const Row& row = table->rows.front();
    for (std::size_t c = 0; c < table->columns.size(); ++c) {
      const Cell& cell = row.cells[c];
      std::string expected;
      if (const auto* text = std::get_if<std::string>(&cell)) {
        // Text that reads as a number (fdinfo's octal flags) is compared as the parser reads it.
        const bool digits = !text->empty() && text->find_first_not_of("0123456789") == std::string::npos;
        std::string quoted;  // as JSON writes it: Windows paths' backslashes escaped
        for (char ch : *text) quoted += ch == '\\' || ch == '"' ? std::string{'\\', ch} : std::string{ch};
        expected = digits ? std::to_string(std::stoll(*text)) : "\"" + quoted + "\"";
      }
      if (const auto* number = std::get_if<std::int64_t>(&cell)) expected = std::to_string(*number);
      if (const auto* number = std::get_if<std::uint64_t>(&cell)) expected = std::to_string(*number);
      if (std::holds_alternative<Absence>(cell)) expected = "null";
      if (expected.empty() || table->columns[c].type == ColumnType::timestamp) continue;
      CAPTURE(table->columns[c].name);
      CHECK(first.front().find("[\"" + std::string(table->columns[c].name) + "\", " + expected + "]") !=
            std::string::npos);
    }
  }
}
