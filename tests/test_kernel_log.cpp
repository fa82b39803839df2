// linux.kmsg against every record /dev/kmsg gave the guest (truth/kmsg.txt): "prio,seq,usec,flags;
// text" with the text escaped as the kernel escapes it, then " KEY=value" dictionary lines.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <map>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"

using namespace vmi;

namespace {

enum LogColumn : int { kFacility, kLevel, kTimestamp, kCaller, kLine, kSequence };

struct TruthRecord {
  int facility = 0, level = 0;
  std::string timestamp, text;
  std::vector<std::string> dictionary;  // "SUBSYSTEM=acpi"
};

// seq -> record, from truth/kmsg.txt.
std::map<std::uint64_t, TruthRecord> truth_log(const test::Sample& sample) {
  std::ifstream in(sample.dir / "truth" / "kmsg.txt");
  REQUIRE_MESSAGE(in.good(), "no truth/kmsg.txt in ", sample.dir.string(),
                  ": rebuild the samples (VMI_SAMPLES_FORCE=1 bash samples/build-samples.sh)");
  std::map<std::uint64_t, TruthRecord> records;
  TruthRecord* last = nullptr;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(" ")) {
      REQUIRE(last != nullptr);
      last->dictionary.push_back(line.substr(1));
      continue;
    }
    const auto semicolon = line.find(';');
    REQUIRE(semicolon != std::string::npos);
    unsigned prio = 0;
    unsigned long long seq = 0, usec = 0;
    REQUIRE(std::sscanf(line.c_str(), "%u,%llu,%llu,", &prio, &seq, &usec) == 3);
    char timestamp[32];
    std::snprintf(timestamp, sizeof timestamp, "%llu.%06llu", usec / 1'000'000, usec % 1'000'000);
    last = &records[seq];
    *last = {static_cast<int>(prio >> 3), static_cast<int>(prio & 7), timestamp, line.substr(semicolon + 1), {}};
  }
  REQUIRE(!records.empty());
  return records;
}

// The text as /dev/kmsg writes it (kernel/printk/printk.c msg_add_ext_text): bytes below ' ',
// from 127 and the backslash as \xNN.
std::string kmsg_escaped(const std::string& text) {
  std::string out;
  for (const unsigned char c : text) {
    if (c < ' ' || c >= 127 || c == '\\') {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\x%02x", c);
      out += escape;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

constexpr std::string_view kFacilities[] = {"kern", "user"};
constexpr std::string_view kLevels[] = {"emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"};

void check_kmsg_holds_every_dmesg_record(Session& session, const test::Sample& sample) {
  const auto expected = truth_log(sample);
  auto table = run_plugin(session, "dmesg");
  REQUIRE_MESSAGE(table.has_value(), test::error_text(table));
  std::map<std::uint64_t, TruthRecord> listed;
  for (const Row& row : table->rows) {
    const auto seq = static_cast<std::uint64_t>(test::cell_integer(row, kSequence).value());
    const auto line = test::cell_text(row, kLine).value();
    auto [it, first] = listed.try_emplace(seq);
    if (!first) {  // the record's dictionary rows follow it
      it->second.dictionary.push_back(kmsg_escaped(line));
      continue;
    }
    const auto facility = test::cell_text(row, kFacility).value();
    const auto level = test::cell_text(row, kLevel).value();
    it->second.facility = static_cast<int>(std::ranges::find(kFacilities, facility) - std::begin(kFacilities));
    it->second.level = static_cast<int>(std::ranges::find(kLevels, level) - std::begin(kLevels));
    it->second.timestamp = test::cell_text(row, kTimestamp).value();
    it->second.text = kmsg_escaped(line);
    const auto caller = test::cell_text(row, kCaller).value();
    CHECK_MESSAGE((caller.starts_with("Task(") || caller.starts_with("CPU(")), caller);
    CHECK(caller.ends_with(")"));
  }
  std::size_t workload_lines = 0;
  for (const auto& [seq, record] : expected) {
    CAPTURE(seq);
    const auto it = listed.find(seq);
    REQUIRE_MESSAGE(it != listed.end(), "record ", seq, " (", record.text, ") is missing");
    CHECK(it->second.facility == record.facility);
    CHECK(it->second.level == record.level);
    CHECK(it->second.timestamp == record.timestamp);
    CHECK(it->second.text == record.text);
    CHECK(it->second.dictionary == record.dictionary);
    workload_lines += record.text.starts_with("vmi-wl: ");
  }
  CHECK(workload_lines == 3);
}

}  // namespace

TEST_CASE(
    "kmsg on every sample, raw and ELF, holds every record of the guest's /dev/kmsg: level, time, text, dictionary") {
  test::for_each_sample_image(check_kmsg_holds_every_dmesg_record);
}

TEST_CASE("kmsg on every recovery sample holds every record of the guest's /dev/kmsg") {
  test::for_each_recovery_image(check_kmsg_holds_every_dmesg_record);
}
