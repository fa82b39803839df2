// proc.maps: every memory area of every process, as /proc/PID/maps shows it; --dump writes them.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "plugins/area_dump.hpp"
#include "plugins/plugins.hpp"
#include "vmi/linux.hpp"
#include "vmi/rows.hpp"

namespace vmi {

namespace {

using linux_objects::MemoryMap;

struct MapRow {
  std::int32_t pid = 0;
  std::string process;
  Addr start = 0, end = 0;
  std::string flags;
  Maybe<std::uint64_t> page_offset;
  Maybe<std::uint32_t> major, minor;
  Maybe<std::uint64_t> inode;
  Maybe<std::string> path;
  Maybe<std::string> file_output;
  std::string permissions;
};

// Volatility 3's Maps columns (File Path named as /proc names it: empty for anonymous memory),
// then /proc's four permission letters, whose last tells shared from private.
constexpr auto kMapRow =
    declare_row(column<&MapRow::pid>("PID"), column<&MapRow::process>("Process"),
                column<&MapRow::start, ColumnType::address>("Start"), column<&MapRow::end, ColumnType::address>("End"),
                column<&MapRow::flags>("Flags"), column<&MapRow::page_offset, ColumnType::address>("PgOff"),
                column<&MapRow::major>("Major"), column<&MapRow::minor>("Minor"), column<&MapRow::inode>("Inode"),
                column<&MapRow::path>("File Path"), column<&MapRow::file_output>("File output"),
                column<&MapRow::permissions>("Perms"));

constexpr PluginOption kOptions[] = {
    {"pid", OptionType::integers, "only these process IDs (comma-separated)"},
    {"address", OptionType::integers, "only the areas holding these addresses (start <= address < end)"},
    {"dump", OptionType::path, "write each area to DIR/pid.PID.vma.START-END.dmp"},
    {"maxsize", OptionType::integers, "largest area --dump writes, in bytes (default 1 GiB)"}};

Expected<void> run_maps(PluginContext& context) {
  const auto pids = VMI_TRY(context.args.integers("pid"));
  const auto addresses = VMI_TRY(context.args.integers("address"));
  const auto max_sizes = VMI_TRY(context.args.integers("maxsize"));
  const std::uint64_t max_size =
      max_sizes.empty() ? kDefaultMaxAreaDump : static_cast<std::uint64_t>(max_sizes.front());
  const std::string_view dump = context.args.text("dump");
  RowWriter rows(context.out, kMapRow);
  return linux_objects::for_each_process_area(
      *context.kernel, pids, context.diagnostics, [&](const linux_objects::ProcessMemory& process, MemoryMap&& map) {
        if (!addresses.empty() && std::ranges::none_of(addresses, [&](std::int64_t a) {
              return static_cast<Addr>(a) >= map.start && static_cast<Addr>(a) < map.end;
            }))
          return true;
        MapRow row{.pid = process.task.tgid,
                   .process = process.task.comm,
                   .start = map.start,
                   .end = map.end,
                   .flags = map.permissions().substr(0, 3),
                   .page_offset = map.page_offset,
                   .major = map.major,
                   .minor = map.minor,
                   .inode = map.inode,
                   .path = map.name,
                   .file_output = Absence::not_applicable,
                   .permissions = map.permissions()};
        if (!dump.empty()) {
          row.file_output = dump_area(process.space, map, process.task.tgid, std::filesystem::path(dump), max_size,
                                      context.diagnostics);
        }
        return rows.write(row);
      });
}

}  // namespace

constexpr std::string_view kMapsAliases[] = {"linux.proc.Maps", "linux.maps"};
const Plugin kMapsPlugin{.name = "linux.proc.maps",
                         .short_name = "maps",
                         .os = "linux",
                         .aliases = kMapsAliases,
                         .description = "Each process's memory areas, as /proc/PID/maps shows them",
                         .needs = Requirement::kernel,
                         .columns = kMapRow.columns,
                         .tree = false,
                         .options = kOptions,
                         .run = run_maps};

}  // namespace vmi
