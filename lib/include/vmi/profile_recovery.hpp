// A Linux profile recovered from the snapshot itself: kallsyms for the symbols, the kernel's own
// BTF for the types. No vmlinux, System.map or ISF file is needed.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "vmi/expected.hpp"
#include "vmi/image.hpp"
#include "vmi/paging.hpp"
#include "vmi/profile.hpp"

namespace vmi {

struct RecoveredProfile {
  Profile profile;          // link-time addresses, as an ISF would give them
  std::string build_id;     // the kernel's GNU build id (hex) from its .notes; empty when absent
  std::size_t types = 0;    // user types, enums and base types in the profile
  std::size_t symbols = 0;  // kallsyms entries kept (one per name)
  Addr text_virtual = 0;    // run-time _text
  Addr text_physical = 0;
  Addr page_table_root = 0;  // physical address of init_top_pgt
  const PagingMode* paging = nullptr;
  Addr btf_virtual = 0;  // __start_BTF, run-time
  std::size_t btf_bytes = 0;
};

// Finds the kernel in physical memory with no profile and rebuilds one from it:
//  1. the banner ("Linux version ...\n\0") by a chunked scan, which fixes a physical address
//     inside the kernel image;
//  2. the page-table root among the pages near it: a top-level table whose kernel-map entry
//     (4- or 5-level) maps that banner; _text is the first 2 MiB page of the kernel map that is
//     present (the kernel clears the entries below _text at boot);
//  3. kallsyms from memory (recover_kallsyms), which must agree on _text; __pgtable_l5_enabled
//     must agree with the paging depth, and init_top_pgt becomes the root;
//  4. the BTF blob between __start_BTF and __stop_BTF, parsed into types, and the build id note
//     between __start_notes and __stop_notes.
// Errors name the step that failed (no banner, no page-table root, no kallsyms, no BTF).
Expected<RecoveredProfile> recover_linux_profile(const std::shared_ptr<const PhysicalImage>& image);

// The GNU build id (hex) of the ELF notes at [begin, end) in `space`; empty when there is none.
std::string read_build_id(const Layer& space, Addr begin, Addr end);

}  // namespace vmi
