// Reads ntoskrnl's CodeView record from memory. A PE image in memory is laid out by section
// (each at its RVA), while LIEF reads files (each section at its PointerToRawData), so the bytes
// LIEF is given are the image's first bytes up to the end of the record, with every section
// header and debug entry rewritten to say "file offset = RVA" and the other data directories
// cleared: LIEF then parses headers, section table, debug directory and record as it would on
// disk, and nothing past the record is read. Layouts: the PE/COFF specification (winnt.h).
#include "os/windows/kernel_image.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <vector>

namespace vmi::os_windows {

namespace {

constexpr std::uint32_t kMaxHeaderOffset = 0x800;     // e_lfanew: the headers fit one page
constexpr std::uint16_t kMachineAmd64 = 0x8664;       // IMAGE_FILE_MACHINE_AMD64
constexpr std::uint16_t kPe32Plus = 0x20b;            // IMAGE_NT_OPTIONAL_HDR64_MAGIC
constexpr std::uint32_t kDataDirectories = 0x70;      // in the PE32+ optional header
constexpr std::uint32_t kDebugDirectory = 6;          // IMAGE_DIRECTORY_ENTRY_DEBUG
constexpr std::uint32_t kDebugEntrySize = 28;         // IMAGE_DEBUG_DIRECTORY
constexpr std::uint32_t kDebugTypeCodeView = 2;       // IMAGE_DEBUG_TYPE_CODEVIEW
constexpr std::uint32_t kSectionHeaderSize = 40;      // IMAGE_SECTION_HEADER
constexpr std::uint32_t kMaxDebugEntries = 32;        // ntoskrnl has 4 to 6
constexpr std::uint32_t kMaxCodeViewSize = 0x400;     // RSDS, GUID, age and a MAX_PATH name
constexpr std::uint64_t kMaxRecordEnd = 64ull << 20;  // ntoskrnl is 8 to 17 MiB
constexpr std::uint64_t kPageSize = 0x1000;

template <class T>
T at(const std::vector<std::uint8_t>& bytes, std::size_t offset) {
  T value{};
  if (offset + sizeof value <= bytes.size()) std::memcpy(&value, bytes.data() + offset, sizeof value);
  return value;
}
template <class T>
void put(std::vector<std::uint8_t>& bytes, std::size_t offset, T value) {
  if (offset + sizeof value <= bytes.size()) std::memcpy(bytes.data() + offset, &value, sizeof value);
}

// Where the headers say things are; offsets into the first page.
struct Headers {
  std::vector<std::uint8_t> page;
  std::uint32_t nt = 0;  // e_lfanew
  std::uint32_t optional = 0, sections = 0;
  std::uint16_t section_count = 0;
};

Expected<Headers> read_headers(const Layer& kernel, Addr base) {
  Headers h;
  h.page.resize(kPageSize);
  if (!read_exact(kernel, base, std::as_writable_bytes(std::span(h.page))))
    return make_error(Errc::unmapped, "PE headers at " + hex(base) + " are unreadable");
  if (h.page[0] != 'M' || h.page[1] != 'Z') return make_error(Errc::bad_format, "no MZ at " + hex(base));
  h.nt = at<std::uint32_t>(h.page, 0x3c);
  if (h.nt > kMaxHeaderOffset || std::memcmp(h.page.data() + h.nt, "PE\0\0", 4) != 0)
    return make_error(Errc::bad_format, "no PE signature at e_lfanew " + hex(h.nt) + " of " + hex(base));
  if (at<std::uint16_t>(h.page, h.nt + 4) != kMachineAmd64 || at<std::uint16_t>(h.page, h.nt + 24) != kPe32Plus)
    return make_error(Errc::unsupported, "PE image at " + hex(base) + " is not PE32+ for x86-64");
  h.section_count = at<std::uint16_t>(h.page, h.nt + 6);
  h.optional = h.nt + 24;
  h.sections = h.optional + at<std::uint16_t>(h.page, h.nt + 20);
  if (h.sections + std::uint64_t{h.section_count} * kSectionHeaderSize > kPageSize)
    return make_error(Errc::bad_format, "section table of " + hex(base) + " runs past its first page");
  return h;
}

}  // namespace

bool is_pe_image(const Layer& kernel, Addr base) { return read_headers(kernel, base).has_value(); }

Expected<PdbRecord> read_pdb_record(const Layer& kernel, Addr base) {
  Headers h = VMI_TRY(read_headers(kernel, base));
  const std::uint32_t directory = h.optional + kDataDirectories + kDebugDirectory * 8;
  const auto debug_rva = at<std::uint32_t>(h.page, directory);
  const auto debug_size = std::min(at<std::uint32_t>(h.page, directory + 4), kMaxDebugEntries * kDebugEntrySize);
  if (debug_rva == 0 || debug_size < kDebugEntrySize)
    return make_error(Errc::not_found, "PE image at " + hex(base) + " has no debug directory");
  // The debug entries, to find how far the CodeView record reaches.
  std::vector<std::uint8_t> entries(debug_size);
  if (!read_exact(kernel, base + debug_rva, std::as_writable_bytes(std::span(entries))))
    return make_error(Errc::unmapped, "debug directory at " + hex(base + debug_rva) + " is unreadable");
  std::uint64_t end = std::uint64_t{debug_rva} + debug_size;
  for (std::uint32_t e = 0; e + kDebugEntrySize <= debug_size; e += kDebugEntrySize) {
    if (at<std::uint32_t>(entries, e + 12) != kDebugTypeCodeView) continue;
    const std::uint64_t size = std::min(at<std::uint32_t>(entries, e + 16), kMaxCodeViewSize);
    end = std::max(end, at<std::uint32_t>(entries, e + 20) + size);
  }
  if (end > kMaxRecordEnd)
    return make_error(Errc::limit_exceeded,
                      "debug data of " + hex(base) + " ends at RVA " + hex(end) + " (cap " + hex(kMaxRecordEnd) + ")");
  // The image up to the record's end; pages other than the ones needed may be missing.
  std::vector<std::uint8_t> image(end, 0);
  std::copy(h.page.begin(), h.page.begin() + static_cast<std::ptrdiff_t>(std::min<std::uint64_t>(kPageSize, end)),
            image.begin());
  auto copy_in = [&](std::uint64_t rva, std::uint64_t size) {
    if (rva >= end) return true;
    size = std::min(size, end - rva);
    return read_exact(kernel, base + rva, std::as_writable_bytes(std::span(image).subspan(rva, size))).has_value();
  };
  if (!copy_in(debug_rva, debug_size))
    return make_error(Errc::unmapped, "debug directory at " + hex(base + debug_rva) + " is unreadable");
  for (std::uint32_t e = 0; e + kDebugEntrySize <= debug_size; e += kDebugEntrySize) {
    const std::uint32_t entry = debug_rva + e;
    const auto rva = at<std::uint32_t>(image, entry + 20);
    put<std::uint32_t>(image, entry + 24, rva);  // PointerToRawData: LIEF reads the record there
    if (at<std::uint32_t>(image, entry + 12) == kDebugTypeCodeView &&
        !copy_in(rva, std::min(at<std::uint32_t>(image, entry + 16), kMaxCodeViewSize)))
      return make_error(Errc::unmapped, "CodeView record at " + hex(base + rva) + " is unreadable");
  }
  // File offsets become RVAs; sections past the end keep no bytes.
  for (std::uint16_t s = 0; s < h.section_count; ++s) {
    const std::uint32_t header = h.sections + s * kSectionHeaderSize;
    const auto rva = at<std::uint32_t>(image, header + 12);
    const auto virtual_size = at<std::uint32_t>(image, header + 8);
    const std::uint64_t kept = rva < end ? std::min<std::uint64_t>(virtual_size, end - rva) : 0;
    put<std::uint32_t>(image, header + 16, static_cast<std::uint32_t>(kept));  // SizeOfRawData
    put<std::uint32_t>(image, header + 20, kept != 0 ? rva : 0);               // PointerToRawData
  }
  const auto directory_count = std::min<std::uint32_t>(at<std::uint32_t>(image, h.optional + 0x6c), 16);
  for (std::uint32_t d = 0; d < directory_count; ++d) {
    if (d != kDebugDirectory) put<std::uint64_t>(image, h.optional + kDataDirectories + d * 8, 0);
  }
  auto record = VMI_TRY(lief_pe_codeview(image));
  if (!record)
    return make_error(Errc::bad_format, "LIEF finds no PDB 7.0 CodeView record in the image at " + hex(base));
  return std::move(*record);
}

std::string guid_text(const PdbRecord& record) {
  const auto& g = record.guid;
  // Data1, Data2 and Data3 are little-endian integers; Data4 is 8 bytes in order.
  constexpr int kOrder[] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string text;
  for (int i : kOrder) {
    text += kDigits[g[i] >> 4];
    text += kDigits[g[i] & 15];
  }
  return text;
}

std::string pdb_file_name(const PdbRecord& record) {
  std::string name = record.path.substr(record.path.find_last_of("\\/") + 1);
  std::ranges::transform(name, name.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return name;
}

bool is_kernel_pdb(std::string_view pdb_name) {
  return pdb_name == "ntkrnlmp.pdb" || pdb_name == "ntoskrnl.pdb" || pdb_name == "ntkrnlpa.pdb" ||
         pdb_name == "ntkrpamp.pdb";
}

}  // namespace vmi::os_windows
