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

// A 64-bit little-endian ELF header at `at`, or nothing.
std::optional<ElfHeader> elf_header(const Layer& space, Addr at) {
  std::array<std::byte, 64> raw{};
  if (!read_exact(space, at, raw)) return std::nullopt;
  if (std::memcmp(raw.data(),
                  "\x7f"
                  "ELF",
                  4) != 0 ||
      raw[4] != std::byte{2} || raw[5] != std::byte{1})
    return std::nullopt;
  return ElfHeader{load<std::uint16_t>(&raw[16]), load<std::uint64_t>(&raw[32]), load<std::uint16_t>(&raw[54]),
                   load<std::uint16_t>(&raw[56])};
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

Expected<void> run_elfs(PluginContext& context) {
  const auto pids = VMI_TRY(context.args.integers("pid"));
  const std::string_view dump = context.args.text("dump");
  const Kernel& kernel = *context.kernel;
  RowWriter rows(context.out, kElfRow);
  std::optional<Error> failed;
  VMI_TRY_VOID(linux_objects::for_each_task(kernel, false, context.diagnostics, [&](auto&& task) {
    if (!pids.empty() && std::ranges::find(pids, task.tgid) == pids.end()) return true;
    if (task.kernel_thread.value_or(false)) return true;
    auto layout = linux_objects::memory_layout(kernel, task, context.diagnostics);
    if (!layout) {
      failed = layout.error();
      return false;
    }
    const auto* memory = std::get_if<linux_objects::MemoryLayout>(&*layout);
    if (memory == nullptr) return true;
    const auto space = linux_objects::address_space(kernel, *memory);
    const std::string owner = "task " + hex(task.address) + " (pid " + std::to_string(task.pid) + ")";
    bool more = true;
    auto walked = linux_objects::for_each_memory_map(kernel, task, *memory, context.diagnostics, [&](MemoryMap&& map) {
      const auto header = elf_header(*space, map.start);
      if (!header) return true;
      ElfRow row{task.tgid,
                 task.comm,
                 map.start,
                 map.end,
                 map.name,
                 Absence::not_applicable,
                 header->type == kExec  ? Maybe<std::string>(std::string("EXEC"))
                 : header->type == kDyn ? Maybe<std::string>(std::string("DYN"))
                                        : Maybe<std::string>(std::to_string(header->type)),
                 Absence::not_applicable,
                 Absence::not_applicable};
      if (!dump.empty()) {
        row.file_output = Absence::unreadable;
        row.parses = Absence::unreadable;
        row.missing_pages = Absence::unreadable;
        if (auto image = rebuild(*space, map, *header, context.diagnostics, owner)) {
          const std::string name = file_name(task.tgid, task.comm, map.start);
          std::ofstream file(std::filesystem::path(dump) / name, std::ios::binary | std::ios::trunc);
          file.write(reinterpret_cast<const char*>(image->bytes.data()),
                     static_cast<std::streamsize>(image->bytes.size()));
          if (file) {
            row.file_output = name;
            if (auto parses = lief_parses_elf(image->bytes)) {
              row.parses = *parses;
            } else {
              context.diagnostics.warn(name + ": not read back: " + parses.error().message);
            }
            row.missing_pages = image->missing_pages;
          } else {
            context.diagnostics.warn("cannot write " + (std::filesystem::path(dump) / name).string());
          }
        }
      }
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
