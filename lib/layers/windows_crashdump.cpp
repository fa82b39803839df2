// 64-bit Windows crash dumps ("PAGEDU64", MEMORY.DMP): complete dumps, whose pages follow the
// 0x2000-byte header run by run; bitmap dumps, whose "SDMP"/"FDMP" summary header at 0x2000
// holds one bit per PFN (set bits map PFNs, in order, onto consecutive pages of the file); and
// triage dumps (minidumps), whose TRIAGE_DUMP64 at 0x2000 locates copies of the crashing
// processor's KPRCB, thread and process, the driver list, the KDBG block and blocks of kernel
// virtual memory, and which hold no physical pages at all.
//
// Offsets checked against Volatility 3 (layers/crash.py, symbols/windows/crash64.json and
// crash_common.json), rekall's crashdump.py and kdmp-parser's kdmp-parser-structs.h (which
// follow DbgHelp's DUMP_HEADER64 and winnt.h's CONTEXT). Unused header bytes hold "PAGE".
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>
#include <optional>
#include <utility>

#include "layers/bytes.hpp"
#include "layers/formats.hpp"
#include "layers/segment_layer.hpp"

namespace vmi {

namespace {

struct PhysicalMemoryRun64 {
  std::uint64_t base_page;
  std::uint64_t page_count;
};
static_assert(sizeof(PhysicalMemoryRun64) == 0x10);

constexpr std::size_t kContextOffset = 0x348;
constexpr std::size_t kRunsOffset = 0x98;
// Run[] has room up to the ContextRecord: 43 runs (rizin checks the same bound).
constexpr std::uint32_t kMaxRuns = (kContextOffset - kRunsOffset) / sizeof(PhysicalMemoryRun64);

struct DumpHeader64 {
  char signature[4];                      // 0x000 "PAGE"
  char valid_dump[4];                     // 0x004 "DU64"
  std::uint32_t major_version;            // 0x008
  std::uint32_t minor_version;            // 0x00c
  std::uint64_t directory_table_base;     // 0x010
  std::uint64_t pfn_database;             // 0x018
  std::uint64_t ps_loaded_module_list;    // 0x020
  std::uint64_t ps_active_process_head;   // 0x028
  std::uint32_t machine_image_type;       // 0x030 0x8664 for x64
  std::uint32_t number_processors;        // 0x034
  std::uint32_t bug_check_code;           // 0x038
  std::uint32_t padding0;                 // 0x03c
  std::uint64_t bug_check_parameters[4];  // 0x040
  char version_user[32];                  // 0x060
  std::uint64_t kd_debugger_data_block;   // 0x080
  // PhysicalMemoryBlockBuffer (_PHYSICAL_MEMORY_DESCRIPTOR64) at 0x088.
  std::uint32_t number_of_runs;        // 0x088
  std::uint32_t padding1;              // 0x08c
  std::uint64_t number_of_pages;       // 0x090 (Volatility's JSON says u32 at 0x8c; DbgHelp aligns it)
  PhysicalMemoryRun64 runs[kMaxRuns];  // 0x098
  std::byte context_record[3000];      // 0x348 CONTEXT (0x4d0 bytes used)
  std::byte exception[0x98];           // 0xf00 EXCEPTION_RECORD64
  std::uint32_t dump_type;             // 0xf98
  std::uint32_t padding3;              // 0xf9c
  std::uint64_t required_dump_space;   // 0xfa0
  std::uint64_t system_time;           // 0xfa8
  char comment[128];                   // 0xfb0
  std::uint64_t system_up_time;        // 0x1030
  std::byte rest[0x2000 - 0x1038];     // MiniDumpFields ... up to the first page
};
static_assert(sizeof(DumpHeader64) == 0x2000);
static_assert(offsetof(DumpHeader64, kd_debugger_data_block) == 0x80 && offsetof(DumpHeader64, number_of_runs) == 0x88);
static_assert(offsetof(DumpHeader64, runs) == kRunsOffset && offsetof(DumpHeader64, context_record) == kContextOffset);
static_assert(offsetof(DumpHeader64, exception) == 0xf00 && offsetof(DumpHeader64, dump_type) == 0xf98);

// The bitmap dumps' summary header (_SUMMARY_DUMP / kdmp-parser's BMP_HEADER64) at 0x2000.
struct SummaryDump64 {
  char signature[4];           // 0x00 "SDMP" (kernel/summary) or "FDMP" (full bitmap)
  char valid_dump[4];          // 0x04 "DUMP"
  std::uint32_t dump_options;  // 0x08
  std::byte padding[0x14];     // 0x0c
  std::uint64_t header_size;   // 0x20 file offset of the first dumped page
  std::uint64_t pages;         // 0x28 number of set bits (pages present)
  std::uint64_t bitmap_size;   // 0x30 number of bits (PFNs covered)
};                             // 0x38 the bitmap, (bitmap_size + 7) / 8 bytes
static_assert(sizeof(SummaryDump64) == 0x38);

constexpr std::uint64_t kPageSize = 4096;
constexpr std::uint64_t kSummaryOffset = sizeof(DumpHeader64);
constexpr std::uint64_t kMaxBitmapBits = std::uint64_t{1} << 40;  // 4 PiB of guest memory
// 2: kernel summary ("SDMP"); 5: full bitmap ("FDMP", Volatility 3, rekall); 6: kernel bitmap
// (rizin's DMP_DUMPTYPE_BITMAPKERNEL). kdmp-parser's newer "RDMP" types (8-10) are not read.
constexpr std::uint32_t kDumpFull = 1, kDumpKernel = 2, kDumpTriage = 4, kDumpBitmap = 5, kDumpKernelBitmap = 6;

// TRIAGE_DUMP64 (the WRK's triage.h; rizin's dmp64 reads the same), at 0x2000 in a triage dump.
// Every offset is from the start of the file.
struct TriageDump64 {
  std::uint32_t service_pack_build;       // 0x00
  std::uint32_t size_of_dump;             // 0x04
  std::uint32_t valid_offset;             // 0x08 a ULONG "TRGD" when the dump is complete
  std::uint32_t context_offset;           // 0x0c
  std::uint32_t exception_offset;         // 0x10
  std::uint32_t mm_offset;                // 0x14
  std::uint32_t unloaded_drivers_offset;  // 0x18
  std::uint32_t prcb_offset;              // 0x1c the KPRCB copy
  std::uint32_t process_offset;           // 0x20 the EPROCESS copy
  std::uint32_t thread_offset;            // 0x24 the ETHREAD copy
  std::uint32_t call_stack_offset;        // 0x28
  std::uint32_t size_of_call_stack;       // 0x2c
  std::uint32_t driver_list_offset;       // 0x30 DUMP_DRIVER_ENTRY64[DriverCount]
  std::uint32_t driver_count;             // 0x34
  std::uint32_t string_pool_offset;       // 0x38 DUMP_STRING {ULONG Length (chars); WCHAR Buffer[]}
  std::uint32_t string_pool_size;         // 0x3c
  std::uint32_t broken_driver_offset;     // 0x40
  std::uint32_t triage_options;           // 0x44
  std::uint64_t top_of_stack;             // 0x48
  std::byte architecture_specific[16];    // 0x50 (IA-64 backing store)
  std::uint64_t data_page_address;        // 0x60
  std::uint32_t data_page_offset;         // 0x68
  std::uint32_t data_page_size;           // 0x6c
  std::uint32_t debugger_data_offset;     // 0x70 the KDDEBUGGER_DATA64 copy (decoded)
  std::uint32_t debugger_data_size;       // 0x74
  std::uint32_t data_blocks_offset;       // 0x78 TRIAGE_DATA_BLOCK64[DataBlocksCount]
  std::uint32_t data_blocks_count;        // 0x7c
};
static_assert(sizeof(TriageDump64) == 0x80);

struct TriageDataBlock64 {
  std::uint64_t address;  // kernel virtual
  std::uint32_t offset;   // in the file
  std::uint32_t size;
};
static_assert(sizeof(TriageDataBlock64) == 0x10);

// DUMP_DRIVER_ENTRY64: DriverNameOffset, then (8-aligned) a KLDR_DATA_TABLE_ENTRY64 copy as
// wdbgexts.h declares it (0x88 bytes: DllBase at 0x30, SizeOfImage 0x40, BaseDllName 0x58).
constexpr std::size_t kDriverEntrySize = 0x90, kDriverLoaderEntry = 0x8, kLoaderEntrySize = 0x88;
constexpr std::uint32_t kTriageValid = 0x44475254;  // "TRGD"
constexpr std::uint32_t kMaxTriageDrivers = 4096, kMaxTriageBlocks = 1u << 16;
constexpr std::uint32_t kMaxSavedObject = 1u << 16;  // the KPRCB copy is the largest (< 64 KiB)

// CONTEXT (winnt.h, AMD64) offsets inside the ContextRecord.
constexpr std::size_t kContextFlags = 0x30, kContextSegCs = 0x38, kContextEFlags = 0x44, kContextRax = 0x78,
                      kContextRip = 0xf8;
constexpr const char* kContextGeneral[] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                           "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
constexpr const char* kContextSegments[] = {"cs", "ds", "es", "fs", "gs", "ss"};
constexpr std::uint32_t kUnusedFill = 0x45474150;  // "PAGE": the header's filler

class CrashDumpLayer final : public SegmentLayer {
 public:
  explicit CrashDumpLayer(std::shared_ptr<const FileMapping> file)
      : SegmentLayer("Windows crash dump '" + file->path().string() + "'", file), file_(std::move(file)) {}
  std::string_view format() const override { return "windows-crashdump"; }
  std::span<const CpuState> cpu_states() const override { return cpus_; }
  std::vector<std::pair<std::string, std::string>> facts() const override { return facts_; }
  const SavedVirtualMemory* saved_virtual_memory() const override { return triage_ ? &*triage_ : nullptr; }

  Expected<void> parse();

 private:
  Error fail(Errc code, const std::string& what) const {
    return make_error(code, "Windows crash dump '" + file_->path().string() + "': " + what);
  }
  Expected<std::vector<Segment>> full_segments(const DumpHeader64& header) const;
  Expected<std::vector<Segment>> bitmap_segments() const;
  Expected<SavedVirtualMemory> triage_memory(const DumpHeader64& header) const;
  // The `size` bytes at file offset `offset`, named `what` in the error when they run past the end.
  Expected<std::span<const std::byte>> file_span(std::uint64_t offset, std::uint64_t size,
                                                 const std::string& what) const;

  std::shared_ptr<const FileMapping> file_;
  std::optional<SavedVirtualMemory> triage_;
  std::vector<CpuState> cpus_;
  std::vector<std::pair<std::string, std::string>> facts_;
};

Expected<void> CrashDumpLayer::parse() {
  const auto bytes = file_->bytes();
  if (bytes.size() < sizeof(DumpHeader64)) {
    return fail(Errc::truncated,
                "file (" + hex(bytes.size()) + " bytes) is shorter than the 0x2000-byte DUMP_HEADER64");
  }
  const auto header = load<DumpHeader64>(bytes, 0);
  if (std::memcmp(header.signature, "PAGE", 4) != 0 || std::memcmp(header.valid_dump, "DU64", 4) != 0) {
    return fail(Errc::bad_format, "no PAGEDU64 signature at offset 0x0");
  }
  facts_ = {{"MajorVersion", hex(header.major_version)},
            {"MinorVersion", hex(header.minor_version)},
            {"DirectoryTableBase", hex(header.directory_table_base)},
            {"KdDebuggerDataBlock", hex(header.kd_debugger_data_block)},
            {"PsActiveProcessHead", hex(header.ps_active_process_head)},
            {"PsLoadedModuleList", hex(header.ps_loaded_module_list)},
            {"NumberProcessors", hex(header.number_processors)},
            {"MachineImageType", hex(header.machine_image_type)},
            {"DumpType", hex(header.dump_type)},
            {"BugCheckCode", hex(header.bug_check_code)}};

  std::vector<Segment> segments;
  if (header.dump_type == kDumpFull) {
    segments = VMI_TRY(full_segments(header));
  } else if (header.dump_type == kDumpKernel || header.dump_type == kDumpBitmap ||
             header.dump_type == kDumpKernelBitmap) {
    segments = VMI_TRY(bitmap_segments());
  } else if (header.dump_type == kDumpTriage) {
    triage_ = VMI_TRY(triage_memory(header));
  } else {
    return fail(Errc::unsupported, "DumpType " + hex(header.dump_type) +
                                       " at offset 0xf98 is neither full (0x1), triage (0x4) nor bitmap (0x2, 0x5, "
                                       "0x6)");
  }
  if (segments.empty() && !triage_) return fail(Errc::bad_format, "no physical memory is dumped");

  // The crashing processor's CONTEXT, unless the writer left the "PAGE" filler there; cr3 is the
  // header's DirectoryTableBase (the kernel's page-table root at the time of the dump).
  CpuState cpu;
  cpu.registers["cr3"] = header.directory_table_base;
  const auto context = std::span<const std::byte>(header.context_record, sizeof header.context_record);
  if (load<std::uint32_t>(context, kContextFlags) != kUnusedFill) {
    for (std::size_t r = 0; r < std::size(kContextGeneral); ++r)
      cpu.registers[kContextGeneral[r]] = load<std::uint64_t>(context, kContextRax + r * 8);
    for (std::size_t s = 0; s < std::size(kContextSegments); ++s)
      cpu.registers[kContextSegments[s]] = load<std::uint16_t>(context, kContextSegCs + s * 2);
    cpu.registers["rip"] = load<std::uint64_t>(context, kContextRip);
    cpu.registers["rflags"] = load<std::uint32_t>(context, kContextEFlags);
  }
  cpus_.push_back(std::move(cpu));
  return set_segments(std::move(segments));
}

Expected<std::vector<Segment>> CrashDumpLayer::full_segments(const DumpHeader64& header) const {
  if (header.number_of_runs > kMaxRuns) {
    return fail(Errc::limit_exceeded, "NumberOfRuns " + std::to_string(header.number_of_runs) +
                                          " at offset 0x88 exceeds the " + std::to_string(kMaxRuns) +
                                          " runs the header has room for");
  }
  const std::uint64_t file_size = file_->size();
  std::vector<Segment> segments;
  std::uint64_t offset = sizeof(DumpHeader64);  // pages follow the header, run after run
  for (std::uint32_t i = 0; i < header.number_of_runs; ++i) {
    const PhysicalMemoryRun64& run = header.runs[i];
    const std::string what = "run #" + std::to_string(i) + " at offset " + hex(kRunsOffset + i * sizeof run) +
                             " (BasePage " + hex(run.base_page) + ", PageCount " + hex(run.page_count) + ")";
    const std::uint64_t limit = ~std::uint64_t{0} / kPageSize;
    if (run.base_page > limit || run.page_count > limit - run.base_page)
      return fail(Errc::bad_format, what + " wraps the address space");
    const std::uint64_t length = run.page_count * kPageSize;
    if (length > file_size - offset) {
      return fail(Errc::truncated,
                  what + " stored at file offset " + hex(offset) + " runs past end of file (" + hex(file_size) + ")");
    }
    const Range physical{run.base_page * kPageSize, run.base_page * kPageSize + length};
    for (std::uint32_t j = 0; j < i; ++j) {
      const Segment& other = segments[j];
      if (physical.begin < other.physical.end && other.physical.begin < physical.end && physical.size() > 0) {
        return fail(Errc::bad_format, what + " overlaps run #" + std::to_string(j) + " at physical " +
                                          hex(std::max(physical.begin, other.physical.begin)));
      }
    }
    segments.push_back({physical, offset});
    offset += length;
  }
  return segments;
}

Expected<std::vector<Segment>> CrashDumpLayer::bitmap_segments() const {
  const auto bytes = file_->bytes();
  if (bytes.size() - kSummaryOffset < sizeof(SummaryDump64)) {
    return fail(Errc::truncated, "summary header at 0x2000 runs past end of file (" + hex(bytes.size()) + ")");
  }
  const auto summary = load<SummaryDump64>(bytes, kSummaryOffset);
  if ((std::memcmp(summary.signature, "SDMP", 4) != 0 && std::memcmp(summary.signature, "FDMP", 4) != 0) ||
      std::memcmp(summary.valid_dump, "DUMP", 4) != 0) {
    return fail(Errc::bad_format, "no SDMP/FDMP summary header with DUMP at offset 0x2000");
  }
  if (summary.bitmap_size > kMaxBitmapBits) {
    return fail(Errc::limit_exceeded,
                "BitmapSize " + hex(summary.bitmap_size) + " bits at offset 0x2030 (cap " + hex(kMaxBitmapBits) + ")");
  }
  const std::uint64_t bitmap_at = kSummaryOffset + sizeof(SummaryDump64);
  const std::uint64_t bitmap_bytes = (summary.bitmap_size + 7) / 8;
  if (bitmap_bytes > bytes.size() - bitmap_at) {
    return fail(Errc::truncated, "bitmap (" + hex(summary.bitmap_size) + " bits = " + hex(bitmap_bytes) + " bytes at " +
                                     hex(bitmap_at) + ") runs past end of file (" + hex(bytes.size()) + ")");
  }
  if (summary.header_size < bitmap_at + bitmap_bytes || summary.header_size > bytes.size()) {
    return fail(Errc::bad_format,
                "HeaderSize " + hex(summary.header_size) + " at offset 0x2020 is not between the bitmap's end (" +
                    hex(bitmap_at + bitmap_bytes) + ") and the end of file (" + hex(bytes.size()) + ")");
  }
  const auto bitmap = bytes.subspan(bitmap_at, bitmap_bytes);
  std::uint64_t set_bits = 0;
  for (std::byte b : bitmap) set_bits += std::popcount(std::to_integer<unsigned>(b));
  if (set_bits > (bytes.size() - summary.header_size) / kPageSize) {
    return fail(Errc::truncated, std::to_string(set_bits) + " pages set in the bitmap, stored from " +
                                     hex(summary.header_size) + ", run past end of file (" + hex(bytes.size()) + ")");
  }
  // Set bits map PFNs, in order, onto consecutive pages; a run of set bits is one segment.
  std::vector<Segment> segments;
  std::uint64_t offset = summary.header_size;
  for (std::uint64_t pfn = 0; pfn < summary.bitmap_size;) {
    const auto byte = std::to_integer<unsigned>(bitmap[pfn / 8]);
    if (pfn % 8 == 0 && byte == 0 && pfn + 8 <= summary.bitmap_size) {  // skip empty bytes quickly
      pfn += 8;
      continue;
    }
    if (((byte >> (pfn % 8)) & 1) == 0) {
      ++pfn;
      continue;
    }
    const std::uint64_t first = pfn;
    while (pfn < summary.bitmap_size && ((std::to_integer<unsigned>(bitmap[pfn / 8]) >> (pfn % 8)) & 1) != 0) ++pfn;
    const std::uint64_t length = (pfn - first) * kPageSize;
    segments.push_back({{first * kPageSize, first * kPageSize + length}, offset});
    offset += length;
  }
  return segments;
}

Expected<std::span<const std::byte>> CrashDumpLayer::file_span(std::uint64_t offset, std::uint64_t size,
                                                               const std::string& what) const {
  const std::uint64_t file_size = file_->size();
  if (offset > file_size || size > file_size - offset) {
    return fail(Errc::truncated, what + " (" + hex(size) + " bytes at offset " + hex(offset) +
                                     ") runs past end of file (" + hex(file_size) + ")");
  }
  return file_->bytes().subspan(offset, size);
}

Expected<SavedVirtualMemory> CrashDumpLayer::triage_memory(const DumpHeader64& header) const {
  const auto triage_bytes = VMI_TRY(file_span(sizeof(DumpHeader64), sizeof(TriageDump64), "TRIAGE_DUMP64"));
  const auto triage = load<TriageDump64>(triage_bytes, 0);
  SavedVirtualMemory saved;
  if (triage.valid_offset != 0) {
    const auto valid = VMI_TRY(file_span(triage.valid_offset, 4, "ValidOffset's marker (TRIAGE_DUMP64 0x08)"));
    if (load<std::uint32_t>(valid, 0) != kTriageValid) {
      return fail(Errc::bad_format, "no \"TRGD\" marker at ValidOffset " + hex(triage.valid_offset) +
                                        ": the triage dump was not completely written");
    }
  }
  // The KDBG copy lies at the address the header names.
  if (triage.debugger_data_offset != 0 && header.kd_debugger_data_block != 0) {
    const auto kdbg = VMI_TRY(file_span(triage.debugger_data_offset, triage.debugger_data_size,
                                        "KDDEBUGGER_DATA64 copy (DebuggerDataOffset, TRIAGE_DUMP64 0x70)"));
    saved.blocks.push_back({header.kd_debugger_data_block, kdbg});
  }
  if (triage.data_blocks_count > kMaxTriageBlocks) {
    return fail(Errc::limit_exceeded, "DataBlocksCount " + std::to_string(triage.data_blocks_count) +
                                          " at offset 0x207c (cap " + std::to_string(kMaxTriageBlocks) + ")");
  }
  const auto table = VMI_TRY(file_span(triage.data_blocks_offset, std::uint64_t{triage.data_blocks_count} * 0x10,
                                       "TRIAGE_DATA_BLOCK64 table (DataBlocksOffset, TRIAGE_DUMP64 0x78)"));
  for (std::uint32_t i = 0; i < triage.data_blocks_count; ++i) {
    const auto block = load<TriageDataBlock64>(table, i * sizeof(TriageDataBlock64));
    const auto bytes = VMI_TRY(file_span(block.offset, block.size,
                                         "data block #" + std::to_string(i) + " (address " + hex(block.address) + ")"));
    saved.blocks.push_back({block.address, bytes});
  }
  const std::pair<const char*, std::uint32_t> objects[] = {
      {"KPRCB", triage.prcb_offset}, {"EPROCESS", triage.process_offset}, {"ETHREAD", triage.thread_offset}};
  for (const auto& [type, offset] : objects) {
    if (offset == 0) continue;
    // The copies' sizes are the kernel's structure sizes, which only the profile knows: each
    // span runs to the end of the file (at most kMaxSavedObject) and the reader takes its size.
    const std::uint64_t available = offset < file_->size() ? file_->size() - offset : 1;  // 1: fails below
    const std::uint64_t size = std::min<std::uint64_t>(kMaxSavedObject, available);
    saved.objects.emplace(type, VMI_TRY(file_span(offset, size, std::string(type) + " copy")));
  }
  if (triage.driver_count > kMaxTriageDrivers) {
    return fail(Errc::limit_exceeded, "DriverCount " + std::to_string(triage.driver_count) + " at offset 0x2034 (cap " +
                                          std::to_string(kMaxTriageDrivers) + ")");
  }
  const auto drivers =
      VMI_TRY(file_span(triage.driver_list_offset, std::uint64_t{triage.driver_count} * kDriverEntrySize,
                        "DUMP_DRIVER_ENTRY64 list (DriverListOffset, TRIAGE_DUMP64 0x30)"));
  for (std::uint32_t i = 0; i < triage.driver_count; ++i) {
    const auto entry = drivers.subspan(i * kDriverEntrySize, kDriverEntrySize);
    SavedDriver driver;
    driver.loader_entry = entry.subspan(kDriverLoaderEntry, kLoaderEntrySize);
    driver.name_offset = load<std::uint32_t>(entry, 0);
    if (driver.name_offset != 0) {
      const std::string what =
          "driver #" + std::to_string(i) + "'s name (DUMP_STRING at " + hex(driver.name_offset) + ")";
      const auto length = VMI_TRY(file_span(driver.name_offset, 4, what));
      driver.name_utf16 =
          VMI_TRY(file_span(driver.name_offset + 4, std::uint64_t{load<std::uint32_t>(length, 0)} * 2, what));
    }
    saved.drivers.push_back(driver);
  }
  return saved;
}

}  // namespace

bool probe_windows_crashdump(const FileMapping& file) {
  return file.size() >= 8 && std::memcmp(file.bytes().data(), "PAGEDU64", 8) == 0;
}

Expected<std::unique_ptr<PhysicalImage>> open_windows_crashdump(std::shared_ptr<const FileMapping> file) {
  auto layer = std::make_unique<CrashDumpLayer>(std::move(file));
  VMI_TRY_VOID(layer->parse());
  return std::unique_ptr<PhysicalImage>(std::move(layer));
}

}  // namespace vmi
