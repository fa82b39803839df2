// The kernel's own symbol table (kallsyms) recovered from a snapshot, with no profile.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vmi/expected.hpp"
#include "vmi/layer.hpp"

namespace vmi {

struct KallsymsSymbol {
  std::string name;
  Addr address = 0;  // run-time address (KASLR shift applied); per-CPU symbols are small offsets
  char type = '?';   // nm-style letter, as /proc/kallsyms prints it for the core kernel
  friend bool operator==(const KallsymsSymbol&, const KallsymsSymbol&) = default;
};

// Where the tables were found (virtual addresses in the kernel layer), for callers that want to
// cross-check or reuse them.
struct KallsymsTables {
  Addr token_table = 0;
  Addr token_index = 0;
  Addr markers = 0;
  Addr seqs_of_names = 0;  // kallsyms_seqs_of_names (6.2+ and backports), else 0
  Addr names = 0;
  Addr num_syms = 0;
  Addr offsets = 0;        // kallsyms_offsets (base-relative kernels), else 0
  Addr relative_base = 0;  // address of kallsyms_relative_base, else 0
  Addr addresses = 0;      // kallsyms_addresses (absolute kernels), else 0
  bool absolute_percpu = false;
};

struct KallsymsResult {
  std::vector<KallsymsSymbol> symbols;  // in the table's (address) order
  KallsymsTables tables;
};

struct KallsymsOptions {
  // How far past text_virtual the tables are searched for (the kernel image, not modules).
  std::uint64_t scan_bytes = 128ull << 20;
};

// Finds kallsyms in kernel_space by the shape of its tables (no kallsyms_* symbol from any
// profile is used), starting at text_virtual (the run-time `_text`, which must come out as the
// `_text` entry), decompresses every name and recovers every address. Supports the layouts up to
// 6.3 (offsets + relative_base or addresses, num_syms, names, markers, [seqs_of_names],
// token_table, token_index) and from 6.4 (num_syms, names, markers, token_table, token_index,
// offsets, relative_base, seqs_of_names), base-relative with or without ABSOLUTE_PERCPU, or
// absolute addresses. Fails with Errc::not_found when no token table
// is in [text_virtual, text_virtual + scan_bytes), Errc::bad_format naming the address of a table
// that does not decode, Errc::limit_exceeded when a count passes its cap. Holes in the scanned
// range are skipped; never throws.
Expected<KallsymsResult> recover_kallsyms(const Layer& kernel_space, Addr text_virtual,
                                          const KallsymsOptions& options = {});

}  // namespace vmi
