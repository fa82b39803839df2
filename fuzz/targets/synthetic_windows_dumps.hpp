// SYNTHETIC Windows crash-dump files of a SyntheticWindows image, laid out as Windows writes them
// (DbgHelp's DUMP_HEADER64; the WRK's triage.h for TRIAGE_DUMP64, which rizin's dmp64 reads the
// same): complete (DumpType 1) and bitmap (5) dumps of its physical pages, and kernel triage
// dumps (4) of the kernel memory a caller names.
#pragma once

#include "synthetic_windows.hpp"

namespace vmi_synthetic {

enum class DumpKind { full, bitmap };

namespace dump_detail {

template <class T>
void put_at(std::string& bytes, std::size_t offset, T value) {
  if (bytes.size() < offset + sizeof value) bytes.resize(offset + sizeof value, '\0');
  std::memcpy(bytes.data() + offset, &value, sizeof value);
}

// The 0x2000-byte DUMP_HEADER64, naming the page-table root, PsLoadedModuleList,
// PsActiveProcessHead and KdDebuggerDataBlock; unused bytes hold "PAGE" as Windows leaves them.
inline std::string dump_header(const SyntheticWindows& w, std::uint32_t dump_type) {
  std::string out(0x2000, '\0');
  for (std::size_t i = 0; i < 0x2000; i += 4) std::memcpy(out.data() + i, "PAGE", 4);
  std::memcpy(out.data() + 4, "DU64", 4);
  put_at<std::uint32_t>(out, 0x8, 15);
  put_at<std::uint32_t>(out, 0xc, w.build_number());
  put_at<std::uint64_t>(out, 0x10, SyntheticWindows::kKernelPml4);
  put_at<std::uint64_t>(out, 0x18, 0);
  put_at<std::uint64_t>(out, 0x20, w.symbol("PsLoadedModuleList"));
  put_at<std::uint64_t>(out, 0x28, w.symbol("PsActiveProcessHead"));
  put_at<std::uint32_t>(out, 0x30, 0x8664);
  put_at<std::uint32_t>(out, 0x34, 1);
  put_at<std::uint32_t>(out, 0x38, 0xe2);  // MANUALLY_INITIATED_CRASH
  put_at<std::uint64_t>(out, 0x80, w.symbol("KdDebuggerDataBlock"));
  put_at<std::uint32_t>(out, 0xf98, dump_type);
  return out;
}

inline void align(std::string& out, std::size_t to) { out.resize((out.size() + to - 1) / to * to, '\0'); }

}  // namespace dump_detail

// A complete or bitmap crash dump of the physical memory. A full dump's runs cover every page
// (holes included, as zero) between the first and last of each 4 MiB-separated cluster; a bitmap
// dump holds exactly the pages.
inline std::string crash_dump(const SyntheticWindows& w, DumpKind kind) {
  using dump_detail::put_at;
  constexpr Addr kPage = 0x1000;
  const auto& pages = w.pages();
  std::string out = dump_detail::dump_header(w, kind == DumpKind::full ? 1 : 5);
  const Addr end = pages.rbegin()->first + kPage;
  if (kind == DumpKind::full) {
    std::vector<std::pair<Addr, Addr>> runs;  // [begin, end)
    for (const auto& [base, data] : pages) {
      if (!runs.empty() && base - runs.back().second <= (4u << 20)) {
        runs.back().second = base + kPage;
      } else {
        runs.emplace_back(base, base + kPage);
      }
    }
    if (runs.size() > 43) throw std::runtime_error("too many runs for a full dump header");
    put_at<std::uint32_t>(out, 0x88, static_cast<std::uint32_t>(runs.size()));
    std::uint64_t count = 0;
    for (std::size_t i = 0; i < runs.size(); ++i) {
      put_at<std::uint64_t>(out, 0x98 + i * 16, runs[i].first / kPage);
      put_at<std::uint64_t>(out, 0xa0 + i * 16, (runs[i].second - runs[i].first) / kPage);
      count += (runs[i].second - runs[i].first) / kPage;
    }
    put_at<std::uint64_t>(out, 0x90, count);
    for (const auto& [begin, stop] : runs) {
      for (Addr p = begin; p < stop; p += kPage) {
        const auto found = pages.find(p);
        if (found == pages.end()) {
          out.append(kPage, '\0');
        } else {
          out.append(reinterpret_cast<const char*>(found->second.data()), kPage);
        }
      }
    }
    return out;
  }
  const std::uint64_t bits = end / kPage;
  std::string summary(0x38, '\0');
  std::memcpy(summary.data(), "FDMP", 4);
  std::memcpy(summary.data() + 4, "DUMP", 4);
  const std::uint64_t bitmap_bytes = (bits + 7) / 8;
  const std::uint64_t header_size = (0x2000 + 0x38 + bitmap_bytes + kPage - 1) & ~(kPage - 1);
  put_at<std::uint64_t>(summary, 0x20, header_size);
  put_at<std::uint64_t>(summary, 0x28, pages.size());
  put_at<std::uint64_t>(summary, 0x30, bits);
  std::string bitmap(bitmap_bytes, '\0');
  for (const auto& [base, data] : pages) bitmap[base / kPage / 8] |= static_cast<char>(1 << (base / kPage % 8));
  out += summary + bitmap;
  out.resize(header_size, '\0');
  for (const auto& [base, data] : pages) out.append(reinterpret_cast<const char*>(data.data()), kPage);
  return out;
}

// What a triage dump saves besides the header's facts.
struct TriageSpec {
  Addr thread = 0;  // the crashing thread's _ETHREAD, its Tcb.Process set; copied with its process
  std::vector<std::pair<Addr, std::size_t>> blocks;  // kernel memory saved as data blocks
};

// A kernel triage dump: TRIAGE_DUMP64 at 0x2000, then copies of the KPRCB (CurrentThread set),
// the thread and its process, the driver list (wdbgexts.h's 0x88-byte KLDR_DATA_TABLE_ENTRY64
// copies, each name a DUMP_STRING in the string pool), the decoded KDBG block and the data
// blocks; a "TRGD" marker at ValidOffset ends it. No physical page is saved.
inline std::string triage_dump(const SyntheticWindows& w, const TriageSpec& spec) {
  using dump_detail::align;
  using dump_detail::put_at;
  constexpr std::size_t kTriage = 0x2000;
  std::string out = dump_detail::dump_header(w, 4);
  out.resize(kTriage + 0x80, '\0');
  put_at<std::uint32_t>(out, kTriage + 0x00, 0);  // ServicePackBuild

  auto append = [&](const std::string& bytes) {
    align(out, 16);
    const auto at = static_cast<std::uint32_t>(out.size());
    out += bytes;
    return at;
  };
  // The crashing processor's objects.
  std::string prcb(w.size_of("_KPRCB"), '\0');
  put_at<std::uint64_t>(prcb, w.offset("_KPRCB", "CurrentThread"), spec.thread);
  put_at<std::uint32_t>(out, kTriage + 0x1c, append(prcb));
  const std::uint32_t process_field = w.has_field("_KTHREAD", "Process")
                                          ? w.offset("_KTHREAD", "Process")
                                          : w.offset("_KTHREAD", "ApcState") + w.offset("_KAPC_STATE", "Process");
  const Addr process = w.read<std::uint64_t>(spec.thread + process_field);
  put_at<std::uint32_t>(out, kTriage + 0x20, append(w.read_bytes(process, w.size_of("_EPROCESS"))));
  put_at<std::uint32_t>(out, kTriage + 0x24, append(w.read_bytes(spec.thread, w.size_of("_ETHREAD"))));

  // The driver list, names in the string pool after it.
  const auto& entries = w.module_entries();
  std::string drivers(entries.size() * 0x90, '\0');
  std::string pool;
  std::vector<std::size_t> name_at;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::string entry = w.read_bytes(entries[i], 0x88);
    std::memcpy(drivers.data() + i * 0x90 + 8, entry.data(), entry.size());
    const auto length = w.read<std::uint16_t>(entries[i] + 0x58);
    const auto buffer = w.read<std::uint64_t>(entries[i] + 0x60);
    align(pool, 8);
    name_at.push_back(pool.size());
    put_at<std::uint32_t>(pool, pool.size(), length / 2u);
    pool += w.read_bytes(buffer, length) + std::string(2, '\0');
  }
  const std::uint32_t drivers_at = append(drivers);
  align(out, 16);
  const auto pool_at = static_cast<std::uint32_t>(out.size());
  for (std::size_t i = 0; i < entries.size(); ++i)
    put_at<std::uint32_t>(out, drivers_at + i * 0x90, static_cast<std::uint32_t>(pool_at + name_at[i]));
  out += pool;
  put_at<std::uint32_t>(out, kTriage + 0x30, drivers_at);
  put_at<std::uint32_t>(out, kTriage + 0x34, static_cast<std::uint32_t>(entries.size()));
  put_at<std::uint32_t>(out, kTriage + 0x38, pool_at);
  put_at<std::uint32_t>(out, kTriage + 0x3c, static_cast<std::uint32_t>(pool.size()));

  // The KDBG block, decoded as the dump writer leaves it.
  std::string kdbg(0x340, '\0');
  std::memcpy(kdbg.data() + 0x10, "KDBG", 4);
  put_at<std::uint32_t>(kdbg, 0x14, 0x340);
  put_at<std::uint64_t>(kdbg, 0x18, w.kernel_base());
  put_at<std::uint64_t>(kdbg, 0x48, w.symbol("PsLoadedModuleList"));
  put_at<std::uint64_t>(kdbg, 0x50, w.symbol("PsActiveProcessHead"));
  put_at<std::uint64_t>(kdbg, 0x58, w.symbol("PspCidTable"));
  put_at<std::uint32_t>(out, kTriage + 0x70, append(kdbg));
  put_at<std::uint32_t>(out, kTriage + 0x74, 0x340);

  // The data blocks: their table, then their bytes.
  std::string table(spec.blocks.size() * 16, '\0');
  const std::uint32_t table_at = append(table);
  for (std::size_t i = 0; i < spec.blocks.size(); ++i) {
    const auto& [address, size] = spec.blocks[i];
    const std::uint32_t at = append(w.read_bytes(address, size));
    put_at<std::uint64_t>(out, table_at + i * 16, address);
    put_at<std::uint32_t>(out, table_at + i * 16 + 8, at);
    put_at<std::uint32_t>(out, table_at + i * 16 + 12, static_cast<std::uint32_t>(size));
  }
  put_at<std::uint32_t>(out, kTriage + 0x78, table_at);
  put_at<std::uint32_t>(out, kTriage + 0x7c, static_cast<std::uint32_t>(spec.blocks.size()));

  const std::uint32_t valid_at = append(std::string("TRGD", 4));
  put_at<std::uint32_t>(out, kTriage + 0x08, valid_at);
  put_at<std::uint32_t>(out, kTriage + 0x04, static_cast<std::uint32_t>(out.size()));
  return out;
}

}  // namespace vmi_synthetic
