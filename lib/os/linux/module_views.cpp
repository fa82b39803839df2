// Two more views of the loaded modules than the `modules` list a rootkit unlinks itself from: a
// scan of the module area for struct module (kernel/module/main.c keeps mod_tree's bounds), and
// the kobjects of /sys/module (module_kset, kernel/params.c), at offsets bound once per kernel.
#include <algorithm>
#include <array>
#include <cstring>

#include "os/field_reader.hpp"
#include "os/linux/list_poison.hpp"
#include "vmi/linux.hpp"
#include "vmi/object.hpp"

namespace vmi::linux_objects {

namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kAlignment = 8;  // struct module is cache-line aligned; 8 finds it anywhere a pointer can be
constexpr std::uint32_t kMaxState = 3;   // MODULE_STATE_UNFORMED

struct ModuleViewLayout {
  std::uint32_t addr_min = 0, addr_max = 0;         // mod_tree_root
  std::uint32_t mkobj_mod = 0;                      // module.mkobj.mod
  std::uint32_t kobject_kobj = 0, kobject_mod = 0;  // module_kobject.kobj and .mod
  std::uint32_t state = 0, name = 0, name_size = 0, list = 0;
  std::uint32_t kset_list = 0, kobject_entry = 0;

  static Expected<ModuleViewLayout> bind(const Profile& p) {
    ModuleViewLayout l;
    l.addr_min = VMI_TRY(bind_offset(p, "mod_tree_root", "addr_min"));
    l.addr_max = VMI_TRY(bind_offset(p, "mod_tree_root", "addr_max"));
    const std::uint32_t mkobj = VMI_TRY(bind_offset(p, "module", "mkobj"));
    const std::uint32_t mod = VMI_TRY(bind_offset(p, "module_kobject", "mod"));
    const std::uint32_t kobj = VMI_TRY(bind_offset(p, "module_kobject", "kobj"));
    l.mkobj_mod = mkobj + mod;
    l.kobject_kobj = kobj;
    l.kobject_mod = mod;
    l.state = VMI_TRY(bind_offset(p, "module", "state"));
    const FieldInfo name = VMI_TRY(p.field("module", "name"));
    l.name = name.offset;
    l.name_size = static_cast<std::uint32_t>(p.size_of(name.type).value_or(56));
    l.list = VMI_TRY(bind_offset(p, "module", "list"));
    l.kset_list = VMI_TRY(bind_offset(p, "kset", "list"));
    l.kobject_entry = VMI_TRY(bind_offset(p, "kobject", "entry"));
    return l;
  }
};

// A struct module at `at`, judged by itself: mkobj.mod points back, a known state, a printable
// NUL-terminated name, list links into kernel space or poisoned (a module that took itself off
// the list with list_del() is exactly what the scan is for).
bool plausible_module(const Layer& layer, const ModuleViewLayout& l, const KernelHalf& kernel_half, Addr at) {
  const auto state = read_value<std::uint32_t>(layer, at + l.state);
  if (!state || *state > kMaxState) return false;
  const auto next = read_value<std::uint64_t>(layer, at + l.list);
  const auto prev = read_value<std::uint64_t>(layer, at + l.list + 8);
  if (!next || !prev) return false;
  if (!kernel_half.plausible_link(*next, kListPoisonNext) || !kernel_half.plausible_link(*prev, kListPoisonPrev))
    return false;
  std::vector<char> name(l.name_size);
  if (!read_exact(layer, at + l.name, std::as_writable_bytes(std::span(name)))) return false;
  const auto end = std::ranges::find(name, '\0');
  if (end == name.begin() || end == name.end()) return false;
  return std::all_of(name.begin(), end, [](char c) { return c > ' ' && c < 0x7f; });
}

}  // namespace

Expected<std::vector<Addr>> scan_for_modules(const Kernel& kernel, Diagnostics& diagnostics) {
  const auto& bound = kernel.layout<ModuleViewLayout>();
  if (!bound) return bound.error();
  const ModuleViewLayout& l = *bound;
  const auto tree = kernel.symbol("mod_tree");
  if (!tree) return make_error(Errc::not_found, "profile has no symbol 'mod_tree'");
  const Layer& layer = kernel.kernel_layer();
  const KernelHalf kernel_half(kernel.kernel_layer().mode().virtual_bits);
  const FieldReader fields(layer, diagnostics, [] { return std::string("mod_tree"); });
  const auto low = fields.read<std::uint64_t>("addr_min", *tree + l.addr_min);
  const auto high = fields.read<std::uint64_t>("addr_max", *tree + l.addr_max);
  if (!low || !high) return make_error(Errc::unmapped, "mod_tree's bounds are unreadable");
  std::vector<Addr> found;
  if (*high <= *low) return found;  // no module loaded
  Addr end = *high;
  if (end - *low > kMaxModuleScanBytes) {
    fields.warn("addr_max", *tree + l.addr_max,
                "leaves " + std::to_string(end - *low) + " bytes to scan; only the first " +
                    std::to_string(kMaxModuleScanBytes) + " are");
    end = *low + kMaxModuleScanBytes;
  }
  std::array<std::byte, kPage> page{};
  for (Addr base = *low & ~(kPage - 1); base < end; base += kPage) {
    if (!read_exact(layer, base, page)) continue;  // a hole between modules' allocations
    for (std::uint64_t offset = 0; offset < kPage; offset += kAlignment) {
      const Addr candidate = base + offset;
      if (candidate < *low || candidate >= end) continue;
      // mkobj.mod is the cheap test: read from this page when it lies in it.
      Addr back = 0;
      if (offset + l.mkobj_mod + 8 <= kPage) {
        std::memcpy(&back, page.data() + offset + l.mkobj_mod, 8);
      } else if (auto value = read_value<std::uint64_t>(layer, candidate + l.mkobj_mod)) {
        back = *value;
      }
      if (back == candidate && plausible_module(layer, l, kernel_half, candidate)) found.push_back(candidate);
    }
  }
  return found;
}

Expected<std::vector<Addr>> sysfs_modules(const Kernel& kernel, Diagnostics& diagnostics) {
  const auto& bound = kernel.layout<ModuleViewLayout>();
  if (!bound) return bound.error();
  const ModuleViewLayout& l = *bound;
  const auto pointer = kernel.symbol("module_kset");
  if (!pointer) return make_error(Errc::not_found, "profile has no symbol 'module_kset'");
  const Layer& layer = kernel.kernel_layer();
  const FieldReader fields(layer, diagnostics, [] { return std::string("module_kset"); });
  const auto kset = fields.pointer("module_kset", *pointer);
  if (!kset) return make_error(Errc::unmapped, "module_kset is unreadable or NULL");
  std::vector<Addr> found;
  const ListWalk walk = walk_list(layer, *kset + l.kset_list, kMaxModules, [&](Addr node) {
    const Addr module_kobject = node - l.kobject_entry - l.kobject_kobj;
    const auto module = fields.read<std::uint64_t>("module_kobject.mod", module_kobject + l.kobject_mod);
    if (module && *module != 0) found.push_back(*module);  // 0: a built-in module's parameters
    return true;
  });
  if (walk.end != ListEnd::complete) diagnostics.warn("module_kset: " + walk.problem);
  std::ranges::sort(found);
  found.erase(std::unique(found.begin(), found.end()), found.end());
  return found;
}

}  // namespace vmi::linux_objects
