// A Windows kernel of a patch level no shipped or imported profile matches by GUID: its build
// (the crash-dump header, else KUSER_SHARED_DATA) picks a profile of the same build, whose
// structure layouts apply while its symbol offsets do not; the globals come from the KDBG block
// instead. Windows 8 and later keep that block encoded; nt!KdCopyDataBlock decodes it, and the
// values it decodes with are found the way Volatility 2's win8_kdbg.py finds them: by
// disassembling the function (Capstone) for the RIP-relative references to KdpDataBlockEncoded
// (cmp byte ptr [rip+X], 0), KdDebuggerDataBlock (lea), KiWaitNever (the first mov r64, [rip+X])
// and KiWaitAlways (the next mov or xor). ObTypeIndexTable and ObHeaderCookie are not in the
// block: they are derived from the object type "Type" the block names (ObpTypeObjectType), which
// is its own type: the table holds it at its Index, after the 0 and 0xbad0b0b0 of slots 0 and 1,
// and its own object header's TypeIndex is that Index encoded with the cookie.
#include <array>
#include <bit>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

#include "os/windows/windows_kernel.hpp"
#include "vmi/disassembly.hpp"
#include "vmi/object.hpp"

namespace vmi::os_windows {

namespace {

constexpr std::uintmax_t kMaxBuildsFile = 1u << 16;
constexpr Addr kPageSize = 0x1000;
constexpr Addr kUserSharedData = 0xfffff78000000000ull;  // KUSER_SHARED_DATA's kernel address
constexpr std::size_t kSharedBuildNumber = 0x260, kSharedMajorVersion = 0x26c, kSharedMinorVersion = 0x270;
constexpr std::uint32_t kWindows7Sp1 = 7601;
// _KDDEBUGGER_DATA64 (wdbgexts.h)
constexpr std::uint64_t kKdbgTag = 0x4742444b;  // "KDBG"
constexpr std::size_t kKdbgOwnerTag = 0x10, kKdbgKernBase = 0x18, kKdbgPsLoadedModuleList = 0x48,
                      kKdbgPsActiveProcessHead = 0x50, kKdbgPspCidTable = 0x58, kKdbgObpTypeObjectType = 0xa0;
constexpr std::size_t kKdbgMinimum = kKdbgObpTypeObjectType + 8, kKdbgMaximum = 0x1000;
constexpr Addr kMaxImageScan = 64ull << 20;            // ntoskrnl is smaller than 64 MiB
constexpr std::size_t kCopyFunctionBytes = 300;        // KdCopyDataBlock is about 100 bytes
constexpr std::size_t kMaxCopyCandidates = 1u << 16;   // "cmp byte ptr [rip+X], 0" sites tried
constexpr std::uint64_t kTypeTableSlot1 = 0xbad0b0b0;  // ObTypeIndexTable[1]

// GUID-age → build, from each builds.tsv beside the catalog's profile files.
std::map<std::string, std::uint32_t> builds_beside(const std::filesystem::path& directory) {
  std::map<std::string, std::uint32_t> builds;
  const auto path = directory / "builds.tsv";
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error) || std::filesystem::file_size(path, error) > kMaxBuildsFile)
    return builds;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line.front() == '#') continue;
    std::istringstream fields(line);
    std::string pdb;
    std::string guid_age;
    std::uint32_t build = 0;
    if (fields >> pdb >> guid_age >> build && is_kernel_pdb(pdb)) builds.emplace(guid_age, build);
  }
  return builds;
}

// The mapped pages of ntoskrnl's image, a page at a time (SizeOfImage from its headers).
void for_each_image_page(const Layer& kernel, Addr base,
                         const std::function<bool(Addr, std::span<const std::byte>)>& visit) {
  std::uint32_t nt = 0;
  std::uint32_t size = 0;
  if (!read_exact(kernel, base + 0x3c, std::as_writable_bytes(std::span(&nt, 1))) ||
      !read_exact(kernel, base + nt + 0x50, std::as_writable_bytes(std::span(&size, 1))))
    return;
  std::array<std::byte, kPageSize> page{};
  for (Addr at = base; at < base + std::min<Addr>(size, kMaxImageScan); at += kPageSize) {
    if (!read_exact(kernel, at, page)) continue;
    if (!visit(at, page)) return;
  }
}

// Where KdCopyDataBlock reads from, as its code says.
struct CopyFunction {
  Addr encoded_flag = 0, block = 0, wait_never = 0, wait_always = 0, at = 0;
};

std::optional<CopyFunction> copy_function_at(const Layer& kernel, Addr at) {
  std::array<std::uint8_t, kCopyFunctionBytes> code{};
  const auto n = kernel.read(at, std::as_writable_bytes(std::span(code)));
  if (!n) return std::nullopt;
  const auto instructions = disassemble_x86_64(std::span(code).first(*n), at, 64);
  if (!instructions) return std::nullopt;
  CopyFunction found;
  found.at = at;
  for (const Instruction& instruction : *instructions) {
    if (instruction.mnemonic == "ret") break;
    if (!instruction.rip_target) continue;
    const Addr target = *instruction.rip_target;
    if (found.encoded_flag == 0 && instruction.mnemonic == "cmp" && instruction.immediate == 0) {
      found.encoded_flag = target;
    } else if (found.block == 0 && instruction.mnemonic == "lea" && instruction.first_register64) {
      found.block = target;
    } else if (found.wait_never == 0 && instruction.mnemonic == "mov" && instruction.first_register64) {
      found.wait_never = target;
    } else if (found.wait_always == 0 && (instruction.mnemonic == "mov" || instruction.mnemonic == "xor") &&
               instruction.first_register64) {
      found.wait_always = target;
    }
  }
  if (found.encoded_flag == 0 || found.block == 0 || found.wait_never == 0 || found.wait_always == 0)
    return std::nullopt;
  return found;
}

// KdCopyDataBlock's decoding, a quadword at a time: KiWaitAlways ^ bswap(&KdpDataBlockEncoded ^
// rol(value ^ KiWaitNever, KiWaitNever's low byte)).
std::uint64_t decode_quadword(std::uint64_t value, std::uint64_t wait_never, std::uint64_t wait_always, Addr flag) {
  value = std::rotl(value ^ wait_never, static_cast<int>(wait_never & 0xff));
  return __builtin_bswap64(value ^ flag) ^ wait_always;
}

// The fields of the block at `block` as KdCopyDataBlock would copy them (decoded with
// `decoder`'s values when given): nothing unless it has the KDBG tag and a plausible Size.
std::optional<KdbgBlock> read_block(const Layer& kernel, Addr block, const CopyFunction* decoder) {
  std::array<std::uint64_t, kKdbgMinimum / 8> values{};
  if (!read_exact(kernel, block, std::as_writable_bytes(std::span(values)))) return std::nullopt;
  if (decoder != nullptr) {
    const auto never = read_value<std::uint64_t>(kernel, decoder->wait_never);
    const auto always = read_value<std::uint64_t>(kernel, decoder->wait_always);
    if (!never || !always) return std::nullopt;
    for (auto& value : values) value = decode_quadword(value, *never, *always, decoder->encoded_flag);
  }
  const std::uint64_t header = values[kKdbgOwnerTag / 8];  // OwnerTag, then Size
  const std::uint64_t size = header >> 32;
  if ((header & 0xffffffff) != kKdbgTag || size < kKdbgMinimum || size > kKdbgMaximum) return std::nullopt;
  return KdbgBlock{values[kKdbgKernBase / 8], values[kKdbgPsLoadedModuleList / 8], values[kKdbgPsActiveProcessHead / 8],
                   values[kKdbgPspCidTable / 8], values[kKdbgObpTypeObjectType / 8]};
}

struct KdbgFound {
  KdbgBlock block;
  std::string found_by;
};

Expected<KdbgFound> find_kdbg(const PhysicalImage& image, const Layer& kernel, Addr base) {
  const auto header_block = crash_dump_fact(image, "KdDebuggerDataBlock");
  if (header_block) {
    if (auto block = read_block(kernel, *header_block, nullptr))
      return KdbgFound{*block, "the KDBG block at " + hex(*header_block) + " (crash-dump header)"};
  }
  // KdCopyDataBlock starts with "cmp byte ptr [rip+X], 0" (80 3d X 00).
  std::optional<CopyFunction> decoder;
  std::size_t tried = 0;
  for_each_image_page(kernel, base, [&](Addr page, std::span<const std::byte> bytes) {
    for (std::size_t i = 0; i + 7 <= bytes.size(); ++i) {
      if (bytes[i] != std::byte{0x80} || bytes[i + 1] != std::byte{0x3d} || bytes[i + 6] != std::byte{0}) continue;
      if (++tried > kMaxCopyCandidates) return false;
      decoder = copy_function_at(kernel, page + i);
      if (decoder && (!header_block || decoder->block == *header_block)) return false;
      decoder.reset();
    }
    return true;
  });
  if (!decoder) {
    return make_error(Errc::not_found,
                      "KDBG: " + std::string(header_block ? "the header's block is encoded and " : "") +
                          "no KdCopyDataBlock among " + std::to_string(tried) +
                          " \"cmp byte ptr [rip+X], 0\" sites of ntoskrnl at " + hex(base));
  }
  std::uint8_t encoded = 0;
  if (!read_exact(kernel, decoder->encoded_flag, std::as_writable_bytes(std::span(&encoded, 1))))
    return make_error(Errc::unmapped, "KDBG: KdpDataBlockEncoded at " + hex(decoder->encoded_flag) + " is unreadable");
  const auto block = read_block(kernel, decoder->block, encoded != 0 ? &*decoder : nullptr);
  if (!block) {
    return make_error(Errc::bad_format, "KDBG: the block at " + hex(decoder->block) + " that KdCopyDataBlock at " +
                                            hex(decoder->at) + " copies " +
                                            (encoded != 0 ? "does not decode to" : "does not start with") +
                                            " a KDBG header");
  }
  return KdbgFound{*block, std::string(encoded != 0 ? "decoded " : "") + "KDBG block at " + hex(decoder->block) +
                               " (by KdCopyDataBlock at " + hex(decoder->at) + ")"};
}

std::uint64_t quadword_at(std::span<const std::byte> bytes, std::size_t offset) {
  std::uint64_t value = 0;
  std::memcpy(&value, bytes.data() + offset, 8);
  return value;
}

}  // namespace

std::optional<KdbgBlock> read_plain_kdbg(const Layer& kernel, Addr at) { return read_block(kernel, at, nullptr); }

std::vector<std::filesystem::path> same_build_profiles(ProfileCatalog& profiles, std::uint32_t build) {
  std::vector<std::filesystem::path> found;
  std::map<std::filesystem::path, std::map<std::string, std::uint32_t>> by_directory;
  for (const auto& file : profiles.files()) {
    auto [entry, fresh] = by_directory.try_emplace(file.parent_path());
    if (fresh) entry->second = builds_beside(file.parent_path());
    const std::string name = file.filename().string();
    const auto known = entry->second.find(name.substr(0, name.find(".json")));
    if (known != entry->second.end() && known->second == build) found.push_back(file);
  }
  return found;
}

std::optional<BuildFound> image_build(const PhysicalImage& image, const Layer& kernel) {
  if (const auto minor = crash_dump_fact(image, "MinorVersion"); minor && *minor != 0)
    return BuildFound{static_cast<std::uint32_t>(*minor), "crash-dump header MinorVersion"};
  auto shared = [&](std::size_t offset) -> std::optional<std::uint32_t> {
    const auto value = read_value<std::uint32_t>(kernel, kUserSharedData + offset);
    return value ? std::optional(*value) : std::nullopt;
  };
  const auto major = shared(kSharedMajorVersion);
  const auto minor = shared(kSharedMinorVersion);
  const auto build = shared(kSharedBuildNumber);
  if (major == 10u && build && *build != 0)
    return BuildFound{*build & 0xffff,
                      "KUSER_SHARED_DATA NtBuildNumber at " + hex(kUserSharedData + kSharedBuildNumber)};
  // Before Windows 10 KUSER_SHARED_DATA keeps only the version; 6.1 is Windows 7, of which one
  // build, SP1's, is still in use.
  if (major == 6u && minor == 1u)
    return BuildFound{kWindows7Sp1,
                      "KUSER_SHARED_DATA NtMajorVersion.NtMinorVersion 6.1: Windows 7, SP1's build assumed"};
  return std::nullopt;
}

Expected<RuntimeGlobals> find_runtime_globals(const PhysicalImage& image, const Layer& kernel, const Profile& profile,
                                              Addr base) {
  const KdbgFound kdbg = VMI_TRY(find_kdbg(image, kernel, base));
  const KdbgBlock& block = kdbg.block;
  if (block.kern_base != base) {
    return make_error(Errc::bad_format, "KDBG: KernBase " + hex(block.kern_base) + " of the " + kdbg.found_by +
                                            " is not ntoskrnl's base " + hex(base));
  }
  RuntimeGlobals globals;
  globals.found_by = kdbg.found_by;
  globals.addresses["PsLoadedModuleList"] = block.ps_loaded_module_list;
  globals.addresses["PsActiveProcessHead"] = block.ps_active_process_head;
  globals.addresses["PspCidTable"] = block.psp_cid_table;
  for (const char* head : {"PsActiveProcessHead", "PsLoadedModuleList"}) {
    if (const auto address = crash_dump_fact(image, head); address && *address != 0) globals.addresses[head] = *address;
  }

  // The object type "Type", its Index, and the table holding it there.
  const Addr type_variable = block.obp_type_object_type;
  const auto index_field = bind_offset(profile, "_OBJECT_TYPE", "Index");
  const auto body = bind_offset(profile, "_OBJECT_HEADER", "Body");
  const auto type_index = bind_offset(profile, "_OBJECT_HEADER", "TypeIndex");
  const auto type_object = read_value<std::uint64_t>(kernel, type_variable);
  const auto index = type_object && index_field ? read_value<std::uint8_t>(kernel, *type_object + *index_field)
                                                : Expected<std::uint8_t>(make_error(Errc::not_found, ""));
  if (!type_object || !index || *index < 2) {
    globals.found_by += "; ObTypeIndexTable and ObHeaderCookie not derived (ObpTypeObjectType at " +
                        hex(type_variable) + " names no readable object type)";
    return globals;
  }
  std::optional<Addr> table;
  const Addr slot = Addr{*index} * 8;  // where "Type" lies in the table
  for_each_image_page(kernel, base, [&](Addr page, std::span<const std::byte> bytes) {
    for (std::size_t i = 0; i + 8 <= bytes.size(); i += 8) {
      if (quadword_at(bytes, i) != *type_object || page + i < base + slot) continue;
      const Addr candidate = page + i - slot;
      const auto slot0 = read_value<std::uint64_t>(kernel, candidate);
      const auto slot1 = read_value<std::uint64_t>(kernel, candidate + 8);
      if (slot0 && slot1 && *slot0 == 0 && *slot1 == kTypeTableSlot1) {
        table = candidate;
        return false;
      }
    }
    return true;
  });
  if (table) globals.addresses["ObTypeIndexTable"] = *table;
  if (profile.find_symbol("ObHeaderCookie") != nullptr && body && type_index) {
    // "Type" is its own type: its header's TypeIndex is its Index under the cookie.
    const Addr header = *type_object - *body;
    if (const auto encoded = read_value<std::uint8_t>(kernel, header + *type_index))
      globals.header_cookie = static_cast<std::uint8_t>(*encoded ^ *index ^ ((header >> 8) & 0xff));
  }
  globals.found_by += "; ObTypeIndexTable " + std::string(table ? "" : "not ") + "found and ObHeaderCookie " +
                      (globals.header_cookie ? "derived" : "not needed or not derived") +
                      " from the object type \"Type\" (ObpTypeObjectType)";
  return globals;
}

}  // namespace vmi::os_windows
