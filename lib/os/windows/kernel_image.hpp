// ntoskrnl's PE image as it lies in kernel memory: recognising one, and reading its CodeView
// record (which names the PDB, and so the profile) with LIEF.
#pragma once

#include <string>

#include "binary/lief_readback.hpp"
#include "vmi/layer.hpp"

namespace vmi::os_windows {

// Whether `base` starts a PE32+ image for x86-64 ("MZ", e_lfanew, "PE\0\0", machine 0x8664):
// a cheap test before the CodeView record is read.
bool is_pe_image(const Layer& kernel, Addr base);

// The image's PDB 7.0 CodeView record, read with LIEF from the headers, the debug directory and
// the record as they lie in memory at `base`. The error names what was missing and where.
Expected<PdbRecord> read_pdb_record(const Layer& kernel, Addr base);

// "BBED7C2955FBE4522AAA23F4B8677AD9": the GUID as symbol servers and ISF files spell it.
std::string guid_text(const PdbRecord& record);
// "ntkrnlmp.pdb": the file name of the record's path, lower-case.
std::string pdb_file_name(const PdbRecord& record);
// Whether a PDB file name is one of the kernel's (ntkrnlmp, ntoskrnl, ntkrnlpa, ntkrpamp).
bool is_kernel_pdb(std::string_view pdb_name);

}  // namespace vmi::os_windows
