// elfs: the ELF images mapped in each process; --dump rebuilds each file from its loaded segments
// and reads it back with LIEF.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "binary/lief_readback.hpp"
#include "plugins/plugins.hpp"
#include "vmi/linux.hpp"
#include "vmi/rows.hpp"

namespace vmi {

namespace {

using linux_objects::MemoryMap;

struct ElfRow {
  std::int32_t pid = 0;
  std::string process;
  Addr start = 0, end = 0;
  Maybe<std::string> path;
  Maybe<std::string> file_output;
  Maybe<std::string> type;             // EXEC, DYN
  Maybe<bool> parses;                  // LIEF reads the rebuilt file back
  Maybe<std::uint64_t> missing_pages;  // pages of its loaded segments not in the snapshot
};

// Volatility 3's Elfs columns, then the ELF type, and for a dumped file whether LIEF parses it
// and how many of its pages the snapshot lacked.
constexpr auto kElfRow = declare_row(
    column<&ElfRow::pid>("PID"), column<&ElfRow::process>("Process"),
    column<&ElfRow::start, ColumnType::address>("Start"), column<&ElfRow::end, ColumnType::address>("End"),
    column<&ElfRow::path>("File Path"), column<&ElfRow::file_output>("File Output"), column<&ElfRow::type>("Type"),
    column<&ElfRow::parses>("Parses"), column<&ElfRow::missing_pages>("Missing Pages"));

constexpr PluginOption kOptions[] = {
    {"pid", OptionType::integers, "only these process IDs (comma-separated)"},
    {"dump", OptionType::path, "rebuild each image from its loaded segments into DIR/pid.PID.COMM.START.dmp"}};

constexpr std::size_t kPage = 4096;
constexpr std::uint16_t kExec = 2, kDyn = 3;
constexpr std::uint32_t kLoad = 1;
constexpr std::size_t kMaxProgramHeaders = 256;
constexpr std::uint64_t kMaxImage = std::uint64_t{1} << 30;  // a rebuilt file larger than this is not written

struct ElfHeader {
  std::uint16_t type = 0;
  std::uint64_t program_headers = 0;  // e_phoff
  std::uint16_t entry_size = 0, count = 0;
};

struct Segment {
  std::uint32_t type = 0, flags = 0;
  std::uint64_t offset = 0, vaddr = 0, file_size = 0;
};

template <class T>
T load(const std::byte* bytes) {
  T value{};
  std::memcpy(&value, bytes, sizeof value);
  return value;
}

enum class HeaderRead { elf, not_elf, not_in_snapshot };

// A 64-bit little-endian ELF header at `at`: what was found there, and the header when it is one.
std::pair<HeaderRead, ElfHeader> elf_header(const Layer& space, Addr at) {
  std::array<std::byte, 64> raw{};
  if (!read_exact(space, at, raw)) return {HeaderRead::not_in_snapshot, {}};
  if (std::memcmp(raw.data(),
                  "\x7f"
                  "ELF",
                  4) != 0 ||
      raw[4] != std::byte{2} || raw[5] != std::byte{1})
    return {HeaderRead::not_elf, {}};
  return {HeaderRead::elf, ElfHeader{load<std::uint16_t>(&raw[16]), load<std::uint64_t>(&raw[32]),
                                     load<std::uint16_t>(&raw[54]), load<std::uint16_t>(&raw[56])}};
}

Maybe<std::string> type_name(std::uint16_t type) {
  if (type == kExec) return std::string("EXEC");
  if (type == kDyn) return std::string("DYN");
  return std::to_string(type);
}

struct Rebuilt {
  std::vector<std::uint8_t> bytes;
  std::uint64_t missing_pages = 0;
};

// The file as its PT_LOAD segments put it in memory: each segment's file bytes read from where
// the loader mapped them (the first at the area's start), pages the snapshot lacks left zero.
std::optional<Rebuilt> rebuild(const Layer& space, const MemoryMap& map, const ElfHeader& header,
                               Diagnostics& diagnostics, const std::string& owner) {
  if (header.entry_size != 56 || header.count == 0 || header.count > kMaxProgramHeaders) {
    diagnostics.warn(owner + ": ELF header at " + hex(map.start) + " gives " + std::to_string(header.count) +
                     " program headers of " + std::to_string(header.entry_size) + " bytes; not rebuilt");
    return std::nullopt;
  }
  std::vector<std::byte> table(std::size_t{header.count} * 56);
  if (!read_exact(space, map.start + header.program_headers, table)) {
    diagnostics.warn(owner + ": program headers at " + hex(map.start + header.program_headers) +
                     " are not in the snapshot; not rebuilt");
    return std::nullopt;
  }
  std::vector<Segment> loads;
  for (std::size_t i = 0; i < header.count; ++i) {
    const std::byte* entry = table.data() + i * 56;
    Segment s{load<std::uint32_t>(entry), load<std::uint32_t>(entry + 4), load<std::uint64_t>(entry + 8),
              load<std::uint64_t>(entry + 16), load<std::uint64_t>(entry + 32)};
    if (s.type == kLoad) loads.push_back(s);
  }
  if (loads.empty() || loads.front().offset != 0) {
    diagnostics.warn(owner + ": the image at " + hex(map.start) + " has no PT_LOAD at file offset 0; not rebuilt");
    return std::nullopt;
  }
  // The first segment is mapped at the area's start: an executable at its own addresses, a shared
  // object wherever the loader put it.
  const Addr base = map.start - (loads.front().vaddr & ~Addr{kPage - 1});
  std::uint64_t size = 0;
  for (const Segment& s : loads) size = std::max(size, s.offset + s.file_size);
  if (size > kMaxImage) {
    diagnostics.warn(owner + ": the image at " + hex(map.start) + " claims " + std::to_string(size) +
                     " bytes of segments; not rebuilt");
    return std::nullopt;
  }
  Rebuilt out;
  out.bytes.resize(size);
  std::vector<std::byte> page(kPage);
  for (const Segment& s : loads) {
    for (std::uint64_t done = 0; done < s.file_size;) {
      const Addr at = base + s.vaddr + done;
      const std::size_t n = std::min<std::uint64_t>(kPage - (at & (kPage - 1)), s.file_size - done);
      if (read_exact(space, at, std::span(page.data(), n))) {
        std::memcpy(out.bytes.data() + s.offset + done, page.data(), n);
      } else {
        ++out.missing_pages;
      }
      done += n;
    }
  }
  return out;
}

std::string file_name(std::int32_t pid, std::string comm, Addr start) {
  std::ranges::replace(comm, '/', '_');
  return "pid." + std::to_string(pid) + "." + comm + "." + hex(start) + ".dmp";
}

// Rebuilds the image at `map` into `directory` and fills the row's File Output, Parses and
// Missing Pages; each stays unreadable, with a warning, when that step fails.
void dump_image(const linux_objects::ProcessMemory& process, const MemoryMap& map, const ElfHeader& header,
                const std::filesystem::path& directory, Diagnostics& diagnostics, ElfRow& row) {
  const linux_objects::Task& task = process.task;
  const std::string owner = "task " + hex(task.address) + " (pid " + std::to_string(task.pid) + ")";
  auto image = rebuild(process.space, map, header, diagnostics, owner);
  if (!image) return;
  const std::string name = file_name(task.tgid, task.comm, map.start);
  std::ofstream file(directory / name, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(image->bytes.data()), static_cast<std::streamsize>(image->bytes.size()));
  if (!file) {
    diagnostics.warn("cannot write " + (directory / name).string());
    return;
  }
  row.file_output = name;
  if (auto parses = lief_parses_elf(image->bytes)) {
    row.parses = *parses;
  } else {
    diagnostics.warn(name + ": not read back: " + parses.error().message);
  }
  row.missing_pages = image->missing_pages;
}

Expected<void> run_elfs(PluginContext& context) {
  const auto pids = VMI_TRY(context.args.integers("pid"));
  const std::string_view dump = context.args.text("dump");
  RowWriter rows(context.out, kElfRow);
  return linux_objects::for_each_process_area(
      *context.kernel, pids, context.diagnostics, [&](const linux_objects::ProcessMemory& process, MemoryMap&& map) {
        const linux_objects::Task& task = process.task;
        const auto [found, header] = elf_header(process.space, map.start);
        // A file mapped from its start may be an image whose header page the snapshot lacks: it
        // gets a row with its type unreadable rather than vanishing.
        const bool file_start = map.file != 0 && map.page_offset == Maybe<std::uint64_t>(std::uint64_t{0});
        if (found == HeaderRead::not_elf || (found == HeaderRead::not_in_snapshot && !file_start)) return true;
        ElfRow row{task.tgid,
                   task.comm,
                   map.start,
                   map.end,
                   map.name,
                   Absence::not_applicable,
                   found == HeaderRead::elf ? type_name(header.type) : Absence::unreadable,
                   Absence::not_applicable,
                   Absence::not_applicable};
        if (!dump.empty()) {
          row.file_output = Absence::unreadable;
          row.parses = Absence::unreadable;
          row.missing_pages = Absence::unreadable;
        }
        const std::string owner = "task " + hex(task.address) + " (pid " + std::to_string(task.pid) + ")";
        if (found == HeaderRead::not_in_snapshot) {
          context.diagnostics.warn(owner + ": the first page of the file area at " + hex(map.start) +
                                   " is not in the snapshot; whether it holds an ELF image is unknown");
        } else if (!dump.empty()) {
          dump_image(process, map, header, std::filesystem::path(dump), context.diagnostics, row);
        }
        return rows.write(row);
      });
}

}  // namespace

constexpr std::string_view kElfsAliases[] = {"linux.elfs.Elfs"};
const Plugin kElfsPlugin{.name = "linux.elfs",
                         .short_name = "elfs",
                         .os = "linux",
                         .aliases = kElfsAliases,
                         .description = "ELF images mapped in each process; --dump rebuilds them from memory",
                         .needs = Requirement::kernel,
                         .columns = kElfRow.columns,
                         .tree = false,
                         .options = kOptions,
                         .run = run_elfs};

}  // namespace vmi
