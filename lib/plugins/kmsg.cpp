// kmsg: the kernel log (what dmesg prints), read from the printk ring buffer.
#include <cstdio>

#include "plugins/plugins.hpp"
#include "vmi/linux.hpp"
#include "vmi/rows.hpp"
#include "vmi/text.hpp"

namespace vmi {

namespace {

using linux_objects::LogRecord;

struct LogRow {
  std::string facility, level, timestamp, caller, line;
  std::uint64_t sequence = 0;
};

// Volatility 3's kmsg columns (lower-case, all text), then printk's sequence number, which
// /dev/kmsg shows and by which records are told apart.
constexpr auto kLogRow = declare_row(column<&LogRow::facility>("facility"), column<&LogRow::level>("level"),
                                     column<&LogRow::timestamp>("timestamp"), column<&LogRow::caller>("caller"),
                                     column<&LogRow::line>("line"), column<&LogRow::sequence>("sequence"));

// include/linux/syslog.h facilities and levels, named as Volatility 3 names them.
constexpr std::string_view kFacilities[] = {"kern",   "user",     "mail",    "daemon",       "auth",     "syslog",
                                            "lpr",    "news",     "uucp",    "cron",         "authpriv", "ftp",
                                            "ntp",    "security", "console", "solaris-cron", "local0",   "local1",
                                            "local2", "local3",   "local4",  "local5",       "local6",   "local7"};
constexpr std::string_view kLevels[] = {"emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"};

template <std::size_t N>
std::string name_of(const std::string_view (&names)[N], unsigned value) {
  return value < N ? std::string(names[value]) : std::to_string(value);
}

// dmesg's "[%5lu.%06lu]" without the brackets and padding: seconds and microseconds since boot.
std::string timestamp_of(std::uint64_t ns) {
  char text[32];
  std::snprintf(text, sizeof text, "%llu.%06llu", static_cast<unsigned long long>(ns / 1'000'000'000),
                static_cast<unsigned long long>(ns % 1'000'000'000 / 1000));
  return text;
}

// printk_caller_id(): the top bit set marks a CPU in interrupt context, else a task's pid.
std::string caller_of(std::uint32_t id) {
  constexpr std::uint32_t kCpuBit = 0x80000000u;
  if ((id & kCpuBit) != 0) return "CPU(" + std::to_string(id & ~kCpuBit) + ")";
  return "Task(" + std::to_string(id) + ")";
}

Expected<void> run_kmsg(PluginContext& context) {
  RowWriter rows(context.out, kLogRow);
  return linux_objects::for_each_log_record(*context.kernel, context.diagnostics, [&](LogRecord&& record) {
    LogRow row{name_of(kFacilities, record.facility), name_of(kLevels, record.level), timestamp_of(record.timestamp_ns),
               caller_of(record.caller_id),           escaped_text(record.text),      record.sequence};
    if (!rows.write(row)) return false;
    // The dictionary, as /dev/kmsg's continuation lines show it: one row per key.
    for (auto [key, value] : {std::pair{"SUBSYSTEM=", &record.subsystem}, std::pair{"DEVICE=", &record.device}}) {
      if (value->empty()) continue;
      row.line = key + escaped_text(*value);
      if (!rows.write(row)) return false;
    }
    return true;
  });
}

}  // namespace

constexpr std::string_view kKmsgAliases[] = {"linux.kmsg.Kmsg"};
const Plugin kKmsgPlugin{.name = "linux.kmsg",
                         .short_name = "dmesg",
                         .os = "linux",
                         .aliases = kKmsgAliases,
                         .description = "The kernel log, from the printk ring buffer",
                         .needs = Requirement::kernel,
                         .columns = kLogRow.columns,
                         .tree = false,
                         .options = {},
                         .run = run_kmsg};

}  // namespace vmi
