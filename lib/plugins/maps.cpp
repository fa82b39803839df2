// proc.maps: every memory area of every process, as /proc/PID/maps shows it; --dump writes them.
#include <algorithm>
#include <filesystem>
#include <fstream>

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

constexpr std::uint64_t kDefaultMaxDump = std::uint64_t{1} << 30;
constexpr std::size_t kPage = 4096;

// Writes [map.start, map.end) of `space` to a file in `directory`: the file name, or why not.
// Pages not in the snapshot are written as zeros and counted in a warning.
Maybe<std::string> dump_area(const Layer& space, const MemoryMap& map, std::int32_t pid,
                             const std::filesystem::path& directory, std::uint64_t max_size, Diagnostics& diagnostics) {
  const std::string name = "pid." + std::to_string(pid) + ".vma." + hex(map.start) + "-" + hex(map.end) + ".dmp";
  const std::uint64_t size = map.end - map.start;
  if (size > max_size) {
    diagnostics.warn("pid " + std::to_string(pid) + " area " + hex(map.start) + "-" + hex(map.end) + " is " +
                     std::to_string(size) + " bytes, above --maxsize; not dumped");
    return std::string("not dumped: larger than --maxsize");
  }
  std::ofstream file(directory / name, std::ios::binary | std::ios::trunc);
  std::vector<std::byte> page(kPage);
  std::size_t missing = 0;
  for (Addr at = map.start; at < map.end && file; at += kPage) {
    if (!read_exact(space, at, page)) {
      std::ranges::fill(page, std::byte{0});
      ++missing;
    }
    file.write(reinterpret_cast<const char*>(page.data()), static_cast<std::streamsize>(page.size()));
  }
  if (!file) {
    diagnostics.warn("cannot write " + (directory / name).string());
    return Absence::unreadable;
  }
  if (missing != 0) {
    diagnostics.warn(name + ": " + std::to_string(missing) + " of " + std::to_string(size / kPage) +
                     " pages are not in the snapshot and were written as zeros");
  }
  return name;
}

Expected<void> run_maps(PluginContext& context) {
  const auto pids = VMI_TRY(context.args.integers("pid"));
  const auto addresses = VMI_TRY(context.args.integers("address"));
  const auto max_sizes = VMI_TRY(context.args.integers("maxsize"));
  const std::uint64_t max_size = max_sizes.empty() ? kDefaultMaxDump : static_cast<std::uint64_t>(max_sizes.front());
  const std::string_view dump = context.args.text("dump");
  const Kernel& kernel = *context.kernel;
  RowWriter rows(context.out, kMapRow);
  std::optional<Error> failed;  // the profile lacks the structures
  VMI_TRY_VOID(linux_objects::for_each_task(kernel, false, context.diagnostics, [&](auto&& task) {
    if (!pids.empty() && std::ranges::find(pids, task.tgid) == pids.end()) return true;
    if (task.kernel_thread.value_or(false)) return true;  // no user memory
    auto layout = linux_objects::memory_layout(kernel, task, context.diagnostics);
    if (!layout) {
      failed = layout.error();
      return false;
    }
    const auto* memory = std::get_if<linux_objects::MemoryLayout>(&*layout);
    if (memory == nullptr) return true;  // warned about, or an exiting task without memory
    const auto space = linux_objects::address_space(kernel, *memory);
    bool more = true;
    auto walked = linux_objects::for_each_memory_map(kernel, task, *memory, context.diagnostics, [&](MemoryMap&& map) {
      if (!addresses.empty() && std::ranges::none_of(addresses, [&](std::int64_t a) {
            return static_cast<Addr>(a) >= map.start && static_cast<Addr>(a) < map.end;
          }))
        return true;
      MapRow row{.pid = task.tgid,
                 .process = task.comm,
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
      if (!dump.empty())
        row.file_output = dump_area(*space, map, task.tgid, std::filesystem::path(dump), max_size, context.diagnostics);
      more = rows.write(row);
      return more;
    });
    if (!walked) {
      failed = walked.error();
      return false;
    }
    return more;
  }));
  if (failed) return *failed;
  return {};
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
