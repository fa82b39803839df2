// Loader lists: PsLoadedModuleList's drivers and a process's DLLs, both _LDR_DATA_TABLE_ENTRY-
// shaped (the kernel's is _KLDR_DATA_TABLE_ENTRY from Windows 8 on, the same fields first).
#include "os/windows/windows_fields.hpp"
#include "os/windows/windows_kernel.hpp"
#include "vmi/object.hpp"
#include "vmi/windows.hpp"

namespace vmi::windows_objects {

namespace {

constexpr Addr kPageMask = 0x000ffffffffff000ull;  // a DirectoryTableBase's frame

struct LoaderEntryLayout {
  std::uint32_t links = 0, base = 0, size = 0, full_name = 0, base_name = 0;
  std::optional<std::uint32_t> load_time;
  UnicodeStringLayout unicode;

  static Expected<LoaderEntryLayout> bind_type(const Profile& p, std::string_view type) {
    LoaderEntryLayout l;
    l.links = VMI_TRY(bind_offset(p, type, "InLoadOrderLinks"));
    l.base = VMI_TRY(bind_offset(p, type, "DllBase"));
    l.size = VMI_TRY(bind_offset(p, type, "SizeOfImage"));
    l.full_name = VMI_TRY(bind_offset(p, type, "FullDllName"));
    l.base_name = VMI_TRY(bind_offset(p, type, "BaseDllName"));
    if (auto load_time = bind_offset(p, type, "LoadTime")) l.load_time = *load_time;
    l.unicode = VMI_TRY(UnicodeStringLayout::bind(p));
    return l;
  }
};

// The kernel's entries: _KLDR_DATA_TABLE_ENTRY where the build has it, else (Windows 7) the
// _LDR_DATA_TABLE_ENTRY both lists used then.
struct KernelModuleLayout : LoaderEntryLayout {
  static Expected<KernelModuleLayout> bind(const Profile& p) {
    const bool kldr = p.find_aggregate("_KLDR_DATA_TABLE_ENTRY") != nullptr;
    auto l = bind_type(p, kldr ? "_KLDR_DATA_TABLE_ENTRY" : "_LDR_DATA_TABLE_ENTRY");
    if (!l) return l.error();
    KernelModuleLayout k;
    static_cast<LoaderEntryLayout&>(k) = *l;
    if (kldr) k.load_time.reset();  // drivers keep no load time
    return k;
  }
};

struct DllLayout : LoaderEntryLayout {
  std::uint32_t peb_ldr = 0, ldr_load_order = 0;
  static Expected<DllLayout> bind(const Profile& p) {
    auto l = bind_type(p, "_LDR_DATA_TABLE_ENTRY");
    if (!l) return l.error();
    DllLayout d;
    static_cast<LoaderEntryLayout&>(d) = *l;
    d.peb_ldr = VMI_TRY(bind_offset(p, "_PEB", "Ldr"));
    d.ldr_load_order = VMI_TRY(bind_offset(p, "_PEB_LDR_DATA", "InLoadOrderModuleList"));
    return d;
  }
};

LoadedImage read_entry(const Layer& layer, const LoaderEntryLayout& l, Addr entry, const std::string& list,
                       Diagnostics& diagnostics) {
  const FieldReader f(layer, diagnostics, [&] { return list + " entry " + hex(entry); });
  LoadedImage image;
  image.address = entry;
  auto read_u64 = [&](std::string_view field, Addr at) -> Maybe<std::uint64_t> {
    if (auto value = f.read<std::uint64_t>(field, at)) return *value;
    return Absence::unreadable;
  };
  image.base = read_u64("DllBase", entry + l.base);
  if (auto size = f.read<std::uint32_t>("SizeOfImage", entry + l.size))
    image.size = std::uint64_t{*size};
  else
    image.size = Absence::unreadable;
  image.name = read_unicode_string(f, l.unicode, "BaseDllName", entry + l.base_name);
  image.path = read_unicode_string(f, l.unicode, "FullDllName", entry + l.full_name);
  image.load_time = l.load_time ? read_filetime(f, "LoadTime", entry + *l.load_time) : Absence::not_applicable;
  return image;
}

// Walks one loader list from its head; `list` names it in warnings.
Expected<void> walk_loader_list(const Layer& layer, const LoaderEntryLayout& l, Addr head, const std::string& list,
                                Diagnostics& diagnostics, const std::function<bool(LoadedImage&&)>& visit) {
  bool stopped = false;
  const ListWalk walk = walk_list(layer, head, kMaxLoadedImages, [&](Addr node) {
    stopped = !visit(read_entry(layer, l, node - l.links, list, diagnostics));
    return !stopped;
  });
  if (walk.end != ListEnd::complete && !stopped) {
    if (walk.entries == 0 && walk.end == ListEnd::unreadable)
      return make_error(Errc::unmapped, list + ": " + walk.problem);
    diagnostics.warn(list + ": " + walk.problem + "; the list may be incomplete");
  }
  return {};
}

}  // namespace

Expected<void> for_each_kernel_module(const Kernel& kernel, Diagnostics& diagnostics,
                                      const std::function<bool(LoadedImage&&)>& visit) {
  if (kernel.os() != "windows") return make_error(Errc::invalid_argument, "not a Windows kernel");
  const auto& bound = kernel.layout<KernelModuleLayout>();
  if (!bound) return bound.error();
  // A triage dump saves the drivers' entries but not the list's head: read the entries saved.
  if (const auto* windows = dynamic_cast<const os_windows::WindowsKernel*>(&kernel)) {
    if (const auto* entries = windows->saved_driver_entries()) {
      for (const Addr entry : *entries) {
        if (!visit(read_entry(kernel.kernel_memory(), *bound, entry - bound->links, "saved driver list", diagnostics)))
          break;
      }
      return {};
    }
  }
  const auto head = kernel.symbol("PsLoadedModuleList");
  if (!head) return make_error(Errc::not_found, "the profile has no PsLoadedModuleList");
  return walk_loader_list(kernel.kernel_memory(), *bound, *head, "PsLoadedModuleList", diagnostics, visit);
}

Expected<void> for_each_dll(const Kernel& kernel, const Process& process, Diagnostics& diagnostics,
                            const std::function<bool(LoadedImage&&)>& visit) {
  if (kernel.os() != "windows") return make_error(Errc::invalid_argument, "not a Windows kernel");
  const auto& bound = kernel.layout<DllLayout>();
  if (!bound) return bound.error();
  const std::string owner = process_owner(process.address, process.pid);
  const auto* peb = std::get_if<std::uint64_t>(&process.peb);
  const auto* root = std::get_if<std::uint64_t>(&process.page_table_root);
  if (peb == nullptr) return make_error(Errc::not_found, owner + " has no readable PEB");
  if (root == nullptr) return make_error(Errc::unmapped, owner + ": its page-table root is unreadable");
  const auto space = kernel.address_space(*root & kPageMask);
  const Addr ldr_at = *peb + bound->peb_ldr;
  const auto ldr = read_value<std::uint64_t>(*space, ldr_at);
  if (!ldr || *ldr == 0)
    return make_error(Errc::unmapped, owner + ": PEB.Ldr at " + hex(ldr_at) + (ldr ? " is NULL" : " is unreadable"));
  return walk_loader_list(*space, *bound, *ldr + bound->ldr_load_order, owner + " InLoadOrderModuleList", diagnostics,
                          visit);
}

}  // namespace vmi::windows_objects
