// A Windows kernel known only from a triage dump (DumpType 4), which saves no physical pages and
// no kernel image: the header names the build, the page-table root and the list heads; the KDBG
// copy names the kernel base and PspCidTable; the data blocks, the crashing processor's KPRCB,
// thread and process copies and the driver list's entries are the only kernel memory there is.
// The profile is the one of the header's build (profiles/windows/builds.tsv says which build
// each profile file is), its layouts applying while its symbol offsets (another patch level's)
// do not, so the globals found here stand in for them. Every other address reads as a hole.
#include <array>
#include <cstring>

#include "os/windows/windows_kernel.hpp"
#include "vmi/object.hpp"

namespace vmi::os_windows {

namespace {

// The loader-entry copy's fields (wdbgexts.h's KLDR_DATA_TABLE_ENTRY64).
constexpr std::size_t kLdrFlink = 0x0, kLdrBlink = 0x8, kLdrBaseNameBuffer = 0x58 + 0x8;
// One object copy placed at its address, its size the profile's.
void place_copy(const SavedVirtualMemory& saved, const Profile& profile, std::string_view type, Addr address,
                std::vector<SavedBlock>& blocks) {
  const auto copy = saved.objects.find(type);
  const Aggregate* aggregate = profile.find_aggregate("_" + std::string(type));
  if (copy == saved.objects.end() || aggregate == nullptr || address == 0) return;
  blocks.push_back({address, copy->second.first(std::min<std::size_t>(copy->second.size(), aggregate->size))});
}

template <class T>
std::optional<T> copy_field(std::span<const std::byte> copy, std::size_t offset) {
  if (offset + sizeof(T) > copy.size()) return std::nullopt;
  T value;
  std::memcpy(&value, copy.data() + offset, sizeof value);
  return value;
}

// The crashing thread and its process, at the addresses the KPRCB copy and the thread copy name.
void place_current_objects(const SavedVirtualMemory& saved, const Profile& profile, std::vector<SavedBlock>& blocks,
                           Diagnostics& diagnostics) {
  const auto prcb = saved.objects.find("KPRCB");
  const auto thread_copy = saved.objects.find("ETHREAD");
  if (prcb == saved.objects.end() || thread_copy == saved.objects.end()) return;
  const auto current = bind_offset(profile, "_KPRCB", "CurrentThread");
  auto process = bind_offset(profile, "_KTHREAD", "Process");
  if (!process) {  // Windows 7 keeps it in the APC state only
    const auto apc = bind_offset(profile, "_KTHREAD", "ApcState");
    const auto in_apc = bind_offset(profile, "_KAPC_STATE", "Process");
    if (apc && in_apc) process = *apc + *in_apc;
  }
  const auto thread = current ? copy_field<std::uint64_t>(prcb->second, *current) : std::nullopt;
  if (!thread) {
    diagnostics.warn(
        "triage dump: the KPRCB copy's CurrentThread is unreadable; its thread and process copies are "
        "not placed");
    return;
  }
  place_copy(saved, profile, "ETHREAD", *thread, blocks);
  const auto owner = process ? copy_field<std::uint64_t>(thread_copy->second, *process) : std::nullopt;
  if (owner) place_copy(saved, profile, "EPROCESS", *owner, blocks);
}

// Each saved driver entry at the address its neighbours' links give it (the next entry's Blink,
// else the previous one's Flink), with its name copy at the name's own buffer.
std::vector<Addr> place_drivers(const SavedVirtualMemory& saved, std::vector<SavedBlock>& blocks,
                                Diagnostics& diagnostics) {
  std::vector<Addr> placed;
  const auto& drivers = saved.drivers;
  for (std::size_t i = 0; i < drivers.size(); ++i) {
    const auto from_next =
        i + 1 < drivers.size() ? copy_field<std::uint64_t>(drivers[i + 1].loader_entry, kLdrBlink) : std::nullopt;
    const auto from_previous = i > 0 ? copy_field<std::uint64_t>(drivers[i - 1].loader_entry, kLdrFlink) : std::nullopt;
    if (from_next && from_previous && *from_next != *from_previous) {
      diagnostics.warn("triage dump: driver #" + std::to_string(i) + "'s neighbours disagree on its address (" +
                       hex(*from_previous) + " by the previous entry's Flink, " + hex(*from_next) +
                       " by the next one's Blink); it is left out");
      continue;
    }
    const auto address = from_next ? from_next : from_previous;
    if (!address || *address == 0) {
      diagnostics.warn("triage dump: driver #" + std::to_string(i) +
                       "'s address is not known from its neighbours' links; it is left out");
      continue;
    }
    blocks.push_back({*address, drivers[i].loader_entry});
    placed.push_back(*address);
    const auto name = copy_field<std::uint64_t>(drivers[i].loader_entry, kLdrBaseNameBuffer);
    if (name && *name != 0 && !drivers[i].name_utf16.empty()) blocks.push_back({*name, drivers[i].name_utf16});
  }
  return placed;
}

}  // namespace

Expected<std::unique_ptr<Kernel>> detect_triage_kernel(std::shared_ptr<const PhysicalImage> image,
                                                       ProfileCatalog& profiles, Diagnostics& diagnostics) {
  const SavedVirtualMemory& saved = *image->saved_virtual_memory();
  const std::string name(image->name());
  const auto build = crash_dump_fact(*image, "MinorVersion");
  if (!build) return make_error(Errc::bad_format, name + ": triage dump: the header names no build (MinorVersion)");
  const auto candidates = same_build_profiles(profiles, static_cast<std::uint32_t>(*build));
  if (candidates.empty()) {
    return make_error(Errc::profile_mismatch,
                      name +
                          ": profile: a triage dump holds no kernel image, so its profile is found by build, and "
                          "no builds.tsv beside the profiles names build " +
                          std::to_string(*build) + "; import an ISF file of that build and list it there");
  }
  auto profile = VMI_TRY(profiles.load(candidates.front()));

  // The KDBG copy and the header's list heads, read from the data blocks alone.
  const BlockLayer data(name, saved.blocks);
  std::map<std::string, Addr, std::less<>> globals;
  Addr base = 0;
  std::string base_found_by = "no KDBG copy";
  if (const auto kdbg = crash_dump_fact(*image, "KdDebuggerDataBlock")) {
    if (const auto block = read_plain_kdbg(data, *kdbg)) {
      globals["KdDebuggerDataBlock"] = *kdbg;
      base = block->kern_base;
      base_found_by = "KernBase of the KDBG copy at " + hex(*kdbg);
      for (const auto& [global, address] :
           {std::pair<const char*, Addr>{"PsLoadedModuleList", block->ps_loaded_module_list},
            {"PsActiveProcessHead", block->ps_active_process_head},
            {"PspCidTable", block->psp_cid_table}}) {
        if (address != 0) globals[global] = address;
      }
    } else {
      diagnostics.warn(name + ": triage dump: no KDBG copy at KdDebuggerDataBlock " + hex(*kdbg));
    }
  }
  for (const char* head : {"PsActiveProcessHead", "PsLoadedModuleList"}) {  // the header's win
    if (const auto address = crash_dump_fact(*image, head); address && *address != 0) globals[head] = *address;
  }

  std::vector<SavedBlock> blocks = saved.blocks;
  place_current_objects(saved, *profile, blocks, diagnostics);
  SavedKernelMemory memory;
  memory.driver_entries = place_drivers(saved, blocks, diagnostics);
  memory.layer = std::make_unique<BlockLayer>("triage dump '" + name + "' kernel memory", blocks);
  for (const std::string& note : memory.layer->notes()) diagnostics.warn(note);

  KernelPlacement placement;
  placement.page_table_root = crash_dump_fact(*image, "DirectoryTableBase").value_or(0) & 0x000ffffffffff000ull;
  placement.root_found_by = "crash-dump header DirectoryTableBase (the dump holds no physical page to walk)";
  placement.base = base;
  placement.base_found_by = base_found_by;
  placement.globals = std::move(globals);
  placement.globals_found_by = "triage dump header and KDBG copy";
  placement.build = static_cast<std::uint32_t>(*build);
  const std::string source = "build " + std::to_string(*build) + ": " + candidates.front().string();
  return std::unique_ptr<Kernel>(std::make_unique<WindowsKernel>(std::move(image), std::move(profile), source,
                                                                 std::move(placement), std::move(memory)));
}

}  // namespace vmi::os_windows
