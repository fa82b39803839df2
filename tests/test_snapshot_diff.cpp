// diff against the guest's own view: the VMExit sample holds two snapshots of one boot
// (memory.raw, memory-b.raw) and the guest's view at each (truth/, truth-b/). Between them the
// workload killed vmi-wl-e, started vmi-wl-f with e's PID, made vmi-wl-d1 open a file, close
// another and rewrite its command line, loaded msr and unloaded cpuid (samples/workload.c,
// make_changes). The expected changes are what Python finds between the two truths; diff must
// report exactly those.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/session.hpp"
#include "vmi/snapshot_diff.hpp"

using namespace vmi;

namespace {

// Python's reading of the two truths, one change a line: change, object, pid ("-" for none), name
// ("-" for none), what identifies the change: an fd's "N link", a socket's "inode N", a module's
// load address, a changed command line's new text (its strings joined by spaces, as ps joins
// them); nothing for a process. Processes are keyed by PID and start time, as diff keys them.
constexpr const char* kExpectedChanges = R"(import csv, os, sys
def table(d, name):
    with open(os.path.join(d, name)) as f:
        return list(csv.DictReader(f, delimiter='\t', quoting=csv.QUOTE_NONE))
def view(d):
    procs = {(r['pid'], r['start_ticks']): r['comm'] for r in table(d, 'processes.tsv')}
    key = {pid: (pid, start) for pid, start in procs}
    args = {key[r['pid']]: r['cmdline_hex'] for r in table(d, 'args.tsv') if r['pid'] in key}
    fds = {(key[r['pid']], r['fd'] + ' ' + r['link']) for r in table(d, 'fds.tsv') if r['pid'] in key}
    sockets = {r['link'][8:-1] for r in table(d, 'fds.tsv') if r['link'].startswith('socket:[')}
    with open(os.path.join(d, 'modules.txt')) as f:
        modules = {(l.split()[0], l.split()[5]) for l in f if l.strip()}
    return procs, args, fds, sockets, modules
(pa, aa, fa, sa, ma), (pb, ab, fb, sb, mb) = view(sys.argv[1]), view(sys.argv[2])
comm = {**pa, **pb}
def joined(h):
    b = bytes.fromhex(h)
    b = b[:-1] if b.endswith(b'\0') else b
    return b.replace(b'\0', b' ').decode('utf-8', 'backslashreplace')
out = []
out += ['exited\tprocess\t%s\t%s\t' % (k[0], pa[k]) for k in pa.keys() - pb.keys()]
out += ['started\tprocess\t%s\t%s\t' % (k[0], pb[k]) for k in pb.keys() - pa.keys()]
out += ['changed\tcmdline\t%s\t%s\t%s' % (k[0], pb[k], joined(ab[k])) for k in aa.keys() & ab.keys() if aa[k] != ab[k]]
out += ['closed\tfd\t%s\t%s\t%s' % (k[0], comm[k], t) for k, t in fa - fb]
out += ['opened\tfd\t%s\t%s\t%s' % (k[0], comm[k], t) for k, t in fb - fa]
out += ['closed\tsocket\t-\t-\tinode %s' % i for i in sa - sb]
out += ['opened\tsocket\t-\t-\tinode %s' % i for i in sb - sa]
out += ['unloaded\tmodule\t-\t%s\t%s' % m for m in ma - mb]
out += ['loaded\tmodule\t-\t%s\t%s' % m for m in mb - ma]
print('\n'.join(sorted(out)))
)";

std::vector<std::string> expected_changes(const test::Sample& sample) {
  auto python = test::run_command(
      {"python3", "-c", kExpectedChanges, (sample.dir / "truth").string(), (sample.dir / "truth-b").string()});
  REQUIRE_MESSAGE(python.exit_code == 0, python.err);
  std::vector<std::string> lines;
  std::istringstream in(python.out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

// A fact the guest recorded at the second snapshot (truth-b/guest.env: plain words, unquoted).
std::string second_fact(const test::Sample& sample, const std::string& key) {
  std::ifstream in(sample.dir / "truth-b" / "guest.env");
  REQUIRE_MESSAGE(in.good(), "no truth-b/guest.env in ", sample.dir.string(), ": rebuild the samples");
  for (std::string line; std::getline(in, line);)
    if (line.starts_with(key + "=")) return line.substr(key.size() + 1);
  FAIL("truth-b/guest.env has no ", key);
  return {};
}

// The text after `marker` in `text`, up to the next space or ')'.
std::string word_after(const std::string& text, std::string_view marker) {
  const auto at = text.find(marker);
  if (at == std::string::npos) return "?";
  const auto start = at + marker.size();
  return text.substr(start, text.find_first_of(" ),", start) - start);
}

// A diff row in the form of expected_changes' lines.
std::string change_line(const Row& row) {
  const std::string change = test::cell_text(row, 0).value_or("?");
  const std::string object = test::cell_text(row, 1).value_or("?");
  const auto pid = test::cell_integer(row, 2);
  const std::string name = test::cell_text(row, 4).value_or("?");
  // What the change leaves: the new command line, the opened fd; else what was there before.
  const std::string detail = test::cell_text(row, 6).value_or(test::cell_text(row, 5).value_or(""));
  std::string identity;
  if (object == "fd" || object == "cmdline") identity = detail;
  if (object == "socket") identity = "inode " + word_after(detail, "inode ");
  if (object == "module") identity = word_after(detail, "base ");
  const bool process_object = object == "process" || object == "fd" || object == "cmdline";
  return change + "\t" + object + "\t" + (process_object && pid ? std::to_string(*pid) : "-") + "\t" +
         (object == "socket" ? "-" : name) + "\t" + identity;
}

Table diff_table(Session& before, Session& after) {
  TableSink sink;
  auto diffed = diff_snapshots(before, after, sink);
  REQUIRE_MESSAGE(diffed.has_value(), test::error_text(diffed));
  return sink.take();
}

bool has_line_starting(const std::vector<std::string>& lines, const std::string& prefix) {
  return std::ranges::any_of(lines, [&](const std::string& line) { return line.starts_with(prefix); });
}

}  // namespace

TEST_CASE("diff reports exactly the changes the guest made between its two snapshots") {
  for (const auto& sample : test::load_vmexit_samples()) {
    CAPTURE(sample.name);
    const auto expected = expected_changes(sample);
    // The truths themselves hold the changes the workload made: the expectation cannot be empty.
    const std::string e_pid = second_fact(sample, "DIFF_EXITED_PID");
    const std::string d1_pid = second_fact(sample, "DIFF_SIGNALLED_PID");
    REQUIRE(second_fact(sample, "DIFF_STARTED_PID") == e_pid);
    CHECK(has_line_starting(expected, "exited\tprocess\t" + e_pid + "\tvmi-wl-e\t"));
    CHECK(has_line_starting(expected, "started\tprocess\t" + e_pid + "\tvmi-wl-f\t"));
    CHECK(has_line_starting(expected, "changed\tcmdline\t" + d1_pid + "\tvmi-wl-d1\td1-usr1"));
    CHECK(has_line_starting(expected, "closed\tfd\t" + d1_pid + "\tvmi-wl-d1\t3 /run/vmi/d1-before.txt"));
    CHECK(has_line_starting(expected, "opened\tfd\t" + d1_pid + "\tvmi-wl-d1\t4 /run/vmi/d1-after.txt"));
    CHECK(has_line_starting(expected, "closed\tsocket\t"));
    CHECK(has_line_starting(expected, "opened\tsocket\t"));
    CHECK(has_line_starting(expected, "loaded\tmodule\t-\t" + second_fact(sample, "DIFF_LOADED_MODULE") + "\t"));
    CHECK(has_line_starting(expected, "unloaded\tmodule\t-\tcpuid\t"));

    const auto profile = test::profile_for(sample);
    Session before = test::open_sample(sample.dir / "memory.raw", profile);
    Session after = test::open_sample(sample.dir / "memory-b.raw", profile);
    const Table table = diff_table(before, after);
    std::vector<std::string> actual;
    for (const Row& row : table.rows) actual.push_back(change_line(row));
    std::ranges::sort(actual);
    CHECK_MESSAGE(actual == expected, "diff:\n", test::joined(actual), "\ntruth:\n", test::joined(expected));

    // The reused PID: two processes, told apart by their start times.
    std::vector<std::int64_t> starts;
    for (const Row& row : table.rows) {
      if (test::cell_text(row, 1) == "process" && test::cell_integer(row, 2) == std::stoll(e_pid)) {
        const auto start = test::cell_integer(row, 3);
        REQUIRE(start.has_value());
        starts.push_back(*start);
      }
    }
    REQUIRE(starts.size() == 2);
    CHECK(starts[0] < starts[1]);
    // The sockets as sockstat names them.
    CHECK(std::ranges::any_of(table.rows, [](const Row& row) {
      return test::cell_text(row, 0) == "closed" &&
             test::cell_text(row, 5).value_or("").starts_with("UDP 127.0.0.1:7790 ");
    }));
    CHECK(std::ranges::any_of(table.rows, [](const Row& row) {
      return test::cell_text(row, 0) == "opened" &&
             test::cell_text(row, 6).value_or("").starts_with("TCP 127.0.0.1:7791 -> 0.0.0.0:0 LISTEN");
    }));
    CHECK_MESSAGE(before.diagnostics().warnings().empty(), test::joined(before.diagnostics().warnings()));
    // msr's allow_writes parameter is printed by its own callback (module_param_cb): its value is
    // unreadable by design, and said so. Nothing else may be.
    for (const std::string& warning : after.diagnostics().warnings())
      CHECK_MESSAGE(warning.find("(msr): field 'parameter 'allow_writes'' ") != std::string::npos, warning);
  }
}

TEST_CASE("diff of a snapshot with itself reports nothing") {
  for (const auto& sample : test::load_vmexit_samples()) {
    CAPTURE(sample.name);
    const auto profile = test::profile_for(sample);
    Session raw = test::open_sample(sample.dir / "memory.raw", profile);
    Session elf = test::open_sample(sample.dir / "memory.elf", profile);
    const Table table = diff_table(raw, elf);
    CHECK(table.rows.empty());
    CHECK(table.columns.size() == 7);
  }
}

TEST_CASE("diff warns when the snapshots come from different boots of one kernel") {
  const auto vmexit = test::load_vmexit_samples();
  const auto samples = test::load_samples();
  for (const auto& other : samples) {
    for (const auto& sample : vmexit) {
      if (other.release != sample.release || other.version != sample.version) continue;
      CAPTURE(other.name);
      Session before = test::open_sample(other.dir / "memory.raw", test::profile_for(other));
      Session after = test::open_sample(sample.dir / "memory.raw", test::profile_for(sample));
      diff_table(before, after);
      // Two boots may, rarely, draw the same KASLR slot: then the kernel cannot tell them apart.
      const bool moved = test::guest_fact(other, "KALLSYMS__text") != test::guest_fact(sample, "KALLSYMS__text");
      CHECK(moved == std::ranges::any_of(after.diagnostics().warnings(), [](const std::string& warning) {
              return warning.find("another boot") != std::string::npos;
            }));
      return;
    }
  }
  FAIL("no main sample boots the VMExit sample's kernel");
}

TEST_CASE("vmi-forensics diff FIRST SECOND renders the changes in every format and needs both images") {
  const auto samples = test::load_vmexit_samples();
  REQUIRE(!samples.empty());
  const auto& sample = samples.front();
  const std::string first = (sample.dir / "memory.raw").string();
  const std::string second = (sample.dir / "memory-b.raw").string();
  const std::string profile = test::profile_for(sample).string();
  const std::string cache = test::scratch_dir("diff-cli-cache").string();
  auto table = test::run_cli({"--profile", profile, "--cache-dir", cache, "diff", first, second});
  REQUIRE_MESSAGE(table.exit_code == 0, table.err);
  CHECK(table.out.starts_with("Change "));
  CHECK(table.out.find("started   process") != std::string::npos);
  auto lines = test::run_cli({"--profile", profile, "--cache-dir", cache, "-r", "jsonl", "diff", first, second});
  REQUIRE_MESSAGE(lines.exit_code == 0, lines.err);
  CHECK(lines.out.find("\"Change\": \"loaded\", \"Object\": \"module\"") != std::string::npos);
  CHECK(lines.err.find("second snapshot: ") != std::string::npos);  // warnings name their snapshot
  CHECK(test::run_cli({"diff", first}).exit_code == 1);
}
