// malfind: process memory that holds code no file accounts for, the mark of injected code —
// areas both writable and executable, and executable areas with no file behind them.
#include <algorithm>

#include "plugins/area_dump.hpp"
#include "plugins/plugins.hpp"
#include "vmi/linux.hpp"
#include "vmi/rows.hpp"

namespace vmi {

namespace {

using linux_objects::MemoryMap;

constexpr std::uint64_t kRead = 0x1, kWrite = 0x2, kExec = 0x4;  // VM_READ, VM_WRITE, VM_EXEC
constexpr std::size_t kShownBytes = 64;

struct MalfindRow {
  std::int32_t pid = 0;
  std::string process;
  Addr start = 0, end = 0;
  Maybe<std::string> path;
  std::string protection;  // "rwx", as Volatility 3 shows it
  Maybe<Code> bytes;       // the area's first 64 bytes: hexdump and disassembly
  Maybe<std::string> file_output = Absence::not_applicable;
  std::string reason;
};

// Volatility 3's Malfind columns (its newer set: Path and File output included), then why the
// area was flagged.
constexpr auto kMalfindRow = declare_row(
    column<&MalfindRow::pid>("PID"), column<&MalfindRow::process>("Process"),
    column<&MalfindRow::start, ColumnType::address>("Start"), column<&MalfindRow::end, ColumnType::address>("End"),
    column<&MalfindRow::path>("Path"), column<&MalfindRow::protection>("Protection"),
    column<&MalfindRow::bytes>("Hexdump"), column<&MalfindRow::bytes, ColumnType::disassembly>("Disasm"),
    column<&MalfindRow::file_output>("File output"), column<&MalfindRow::reason>("Reason"));

constexpr PluginOption kOptions[] = {
    {"pid", OptionType::integers, "only these process IDs (comma-separated)"},
    {"dump", OptionType::path, "write each flagged area to DIR/pid.PID.vma.START-END.dmp"}};

// Why an area is suspicious, or nothing. A special mapping ([vdso]) is the kernel's own code:
// anonymous and executable on every clean process, so it is not flagged.
std::optional<std::string> suspicion(const MemoryMap& map) {
  if ((map.flags & kExec) == 0) return std::nullopt;
  if ((map.flags & kWrite) != 0) return std::string("writable and executable");
  if (map.file != 0) return std::nullopt;
  const auto* name = std::get_if<std::string>(&map.name);
  if (name != nullptr && (*name == "[vdso]" || *name == "[vsyscall]")) return std::nullopt;
  return std::string("executable with no file behind it");
}

std::string protection(std::uint64_t flags) {
  std::string text = "---";
  if ((flags & kRead) != 0) text[0] = 'r';
  if ((flags & kWrite) != 0) text[1] = 'w';
  if ((flags & kExec) != 0) text[2] = 'x';
  return text;
}

Expected<void> run_malfind(PluginContext& context) {
  const auto pids = VMI_TRY(context.args.integers("pid"));
  const std::filesystem::path dump{context.args.text("dump")};
  RowWriter rows(context.out, kMalfindRow);
  return linux_objects::for_each_process_area(
      *context.kernel, pids, context.diagnostics, [&](const linux_objects::ProcessMemory& process, MemoryMap&& map) {
        auto reason = suspicion(map);
        if (!reason) return true;
        MalfindRow row{.pid = process.task.tgid,
                       .process = process.task.comm,
                       .start = map.start,
                       .end = map.end,
                       .path = map.name,
                       .protection = protection(map.flags),
                       .bytes = Absence::unreadable,
                       .reason = std::move(*reason)};
        Code code{.address = map.start, .bytes = std::vector<std::uint8_t>(std::min(kShownBytes, map.end - map.start))};
        if (read_exact(process.space, map.start, std::as_writable_bytes(std::span(code.bytes)))) {
          row.bytes = std::move(code);
        } else {
          context.diagnostics.warn("pid " + std::to_string(process.task.tgid) + " area " + hex(map.start) + "-" +
                                   hex(map.end) + ": its first page is not in the snapshot; no hexdump");
        }
        if (!dump.empty())
          row.file_output =
              dump_area(process.space, map, process.task.tgid, dump, kDefaultMaxAreaDump, context.diagnostics);
        return rows.write(row);
      });
}

}  // namespace

constexpr std::string_view kMalfindAliases[] = {"linux.malfind.Malfind", "linux.malware.malfind.Malfind"};
const Plugin kMalfindPlugin{.name = "linux.malfind",
                            .short_name = "malfind",
                            .os = "linux",
                            .aliases = kMalfindAliases,
                            .description = "Process memory holding code no file accounts for (injected code)",
                            .needs = Requirement::kernel,
                            .columns = kMalfindRow.columns,
                            .tree = false,
                            .options = kOptions,
                            .run = run_malfind};

}  // namespace vmi
