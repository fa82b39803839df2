// Reads a module as it lies in memory (kernel/module/sysfs.c add_sect_attrs, kernel/module/kallsyms.c
// add_kallsyms): the sections the loader placed, the memory regions holding them, and the core
// symbol table /proc/kallsyms lists, at offsets bound once per kernel.
#include <algorithm>
#include <array>
#include <cstring>

#include "os/field_reader.hpp"
#include "vmi/linux.hpp"
#include "vmi/object.hpp"

namespace vmi::linux_objects {

namespace {

constexpr std::size_t kSymbolSize = 24;       // sizeof(Elf64_Sym)
constexpr std::size_t kMaxSectionName = 256;  // longer section names do not occur in modules
constexpr std::size_t kMaxSymbolName = 512;   // KSYM_NAME_LEN
constexpr std::uint64_t kPage = 4096;

// A region of module memory: its extent and what the loader allows there.
struct Region {
  Addr base = 0;
  std::uint64_t size = 0;
  bool executable = false, writable = false;
};

struct ModuleImageLayout {
  std::uint32_t sect_attrs = 0, nsections = 0, attrs = 0, attr_size = 0, attr_name = 0, attr_address = 0;
  std::uint32_t kallsyms = 0, symtab = 0, num_symtab = 0, strtab = 0;
  // 6.4+: mem[MOD_MEM_NUM_TYPES], each {base, size}; before: core_layout and init_layout, each
  // {base, size, text_size, ro_size, ro_after_init_size} with text, rodata, ro_after_init and data
  // in that order.
  bool memory_array = false;
  std::uint32_t mem = 0, memory_size = 0, memory_base = 0, memory_length = 0;
  std::uint32_t core = 0, base = 0, size = 0, text_size = 0, ro_size = 0, ro_after_init_size = 0;

  static Expected<ModuleImageLayout> bind(const Profile& p) {
    ModuleImageLayout l;
    l.sect_attrs = VMI_TRY(bind_offset(p, "module", "sect_attrs"));
    l.nsections = VMI_TRY(bind_offset(p, "module_sect_attrs", "nsections"));
    l.attrs = VMI_TRY(bind_offset(p, "module_sect_attrs", "attrs"));
    const Aggregate* attr = p.find_aggregate("module_sect_attr");
    if (attr == nullptr) return make_error(Errc::not_found, "profile has no type 'module_sect_attr'");
    l.attr_size = attr->size;
    l.attr_name = VMI_TRY(bind_offset(p, "module_sect_attr", "battr")) +
                  VMI_TRY(bind_offset(p, "bin_attribute", "attr")) + VMI_TRY(bind_offset(p, "attribute", "name"));
    l.attr_address = VMI_TRY(bind_offset(p, "module_sect_attr", "address"));
    l.kallsyms = VMI_TRY(bind_offset(p, "module", "kallsyms"));
    l.symtab = VMI_TRY(bind_offset(p, "mod_kallsyms", "symtab"));
    l.num_symtab = VMI_TRY(bind_offset(p, "mod_kallsyms", "num_symtab"));
    l.strtab = VMI_TRY(bind_offset(p, "mod_kallsyms", "strtab"));
    if (const Aggregate* memory = p.find_aggregate("module_memory"); memory != nullptr) {
      l.memory_array = true;
      l.mem = VMI_TRY(bind_offset(p, "module", "mem"));
      l.memory_size = memory->size;
      l.memory_base = VMI_TRY(bind_offset(p, "module_memory", "base"));
      l.memory_length = VMI_TRY(bind_offset(p, "module_memory", "size"));
      return l;
    }
    l.core = VMI_TRY(bind_offset(p, "module", "core_layout"));
    l.base = VMI_TRY(bind_offset(p, "module_layout", "base"));
    l.size = VMI_TRY(bind_offset(p, "module_layout", "size"));
    l.text_size = VMI_TRY(bind_offset(p, "module_layout", "text_size"));
    l.ro_size = VMI_TRY(bind_offset(p, "module_layout", "ro_size"));
    l.ro_after_init_size = VMI_TRY(bind_offset(p, "module_layout", "ro_after_init_size"));
    return l;
  }
};

class ModuleImageReader {
 public:
  ModuleImageReader(const Kernel& kernel, const ModuleImageLayout& layout, const Module& module,
                    Diagnostics& diagnostics)
      : layer_(kernel.kernel_layer()), layout_(layout), module_(module), fields_(layer_, diagnostics, [&module] {
          return "module " + hex(module.address) + " (" + module.name + ")";
        }) {}

  Expected<ModuleImage> read() {
    const std::vector<Region> regions = live_regions();
    VMI_TRY_VOID(read_sections(regions));
    read_symbols();
    bound_sizes(regions);
    read_bytes();
    return std::move(image_);
  }

  std::vector<ModuleSymbol> symbols() {
    read_symbols();
    return std::move(image_.symbols);
  }

 private:
  // The core regions; the init ones are freed (base NULL, size 0) once the module's init ran.
  std::vector<Region> live_regions() {
    std::vector<Region> regions;
    auto add = [&](std::string_view what, Addr base_at, Addr size_at, bool executable, bool writable) {
      const auto base = fields_.read<std::uint64_t>(std::string(what) + ".base", base_at);
      const auto size = fields_.read<std::uint32_t>(std::string(what) + ".size", size_at);
      if (base && size && *base != 0 && *size != 0) regions.push_back({*base, *size, executable, writable});
    };
    if (layout_.memory_array) {
      // enum mod_mem_type: text, data, rodata, ro_after_init, init_text, init_data, init_rodata.
      constexpr std::array<std::pair<bool, bool>, 7> kAccess = {
          {{true, false}, {false, true}, {false, false}, {false, true}, {true, false}, {false, true}, {false, false}}};
      for (std::size_t type = 0; type < kAccess.size(); ++type) {
        const Addr memory = module_.address + layout_.mem + type * layout_.memory_size;
        const std::string what = "mem[" + std::to_string(type) + "]";
        add(what, memory + layout_.memory_base, memory + layout_.memory_length, kAccess[type].first,
            kAccess[type].second);
      }
      return regions;
    }
    const Addr core = module_.address + layout_.core;
    const auto base = fields_.read<std::uint64_t>("core_layout.base", core + layout_.base);
    std::array<std::optional<std::uint32_t>, 4> ends = {
        fields_.read<std::uint32_t>("core_layout.text_size", core + layout_.text_size),
        fields_.read<std::uint32_t>("core_layout.ro_size", core + layout_.ro_size),
        fields_.read<std::uint32_t>("core_layout.ro_after_init_size", core + layout_.ro_after_init_size),
        fields_.read<std::uint32_t>("core_layout.size", core + layout_.size)};
    if (!base || *base == 0) return regions;
    constexpr std::array<std::pair<bool, bool>, 4> kAccess = {
        {{true, false}, {false, false}, {false, true}, {false, true}}};
    std::uint32_t start = 0;
    for (std::size_t i = 0; i < ends.size(); ++i) {
      if (!ends[i]) return regions;  // the rest cannot be placed
      if (*ends[i] > start) regions.push_back({*base + start, *ends[i] - start, kAccess[i].first, kAccess[i].second});
      start = std::max(start, *ends[i]);
    }
    return regions;
  }

  Expected<void> read_sections(const std::vector<Region>& regions) {
    const Addr field = module_.address + layout_.sect_attrs;
    const auto attrs = fields_.pointer("sect_attrs", field);
    if (!attrs) return make_error(Errc::unmapped, "module " + module_.name + ": no section table at " + hex(field));
    const auto count = fields_.read<std::uint32_t>("sect_attrs->nsections", *attrs + layout_.nsections);
    if (!count) return make_error(Errc::unmapped, "module " + module_.name + ": section count unreadable");
    if (*count > kMaxModuleSections)
      return make_error(Errc::invalid_argument, "module " + module_.name + ": " + std::to_string(*count) +
                                                    " sections, more than " + std::to_string(kMaxModuleSections));
    for (std::uint32_t i = 0; i < *count; ++i) {
      const Addr attr = *attrs + layout_.attrs + std::uint64_t{i} * layout_.attr_size;
      const auto name_at =
          fields_.pointer("sect_attrs->attrs[" + std::to_string(i) + "].name", attr + layout_.attr_name);
      const auto address = fields_.read<std::uint64_t>("sect_attrs->attrs[" + std::to_string(i) + "].address",
                                                       attr + layout_.attr_address);
      if (!name_at || !address) continue;
      auto name = read_c_string(layer_, *name_at, kMaxSectionName);
      if (!name) {
        fields_.warn("section name", *name_at);
        continue;
      }
      const auto region = std::ranges::find_if(
          regions, [&](const Region& r) { return *address >= r.base && *address - r.base < r.size; });
      if (region == regions.end()) continue;  // an init section, freed with its region
      ModuleSection section;
      section.name = std::move(*name);
      section.address = *address;
      section.executable = region->executable;
      section.writable = region->writable;
      image_.sections.push_back(std::move(section));
    }
    std::ranges::sort(image_.sections, {}, &ModuleSection::address);
    return {};
  }

  void read_symbols() {
    const auto kallsyms = fields_.pointer("kallsyms", module_.address + layout_.kallsyms);
    if (!kallsyms) return;
    const auto symtab = fields_.pointer("kallsyms->symtab", *kallsyms + layout_.symtab);
    const auto count = fields_.read<std::uint32_t>("kallsyms->num_symtab", *kallsyms + layout_.num_symtab);
    strtab_ = fields_.pointer("kallsyms->strtab", *kallsyms + layout_.strtab).value_or(0);
    if (!symtab || !count || strtab_ == 0) return;
    if (*count > kMaxModuleSymbols) {
      fields_.warn("kallsyms->num_symtab", *kallsyms + layout_.num_symtab,
                   "is " + std::to_string(*count) + "; only the first " + std::to_string(kMaxModuleSymbols) +
                       " symbols are read");
    }
    symtab_ = *symtab;
    symtab_size_ = std::uint64_t{std::min(*count, kMaxModuleSymbols)} * kSymbolSize;
    std::array<std::byte, kSymbolSize> raw{};
    for (std::uint64_t at = *symtab; at < *symtab + symtab_size_; at += kSymbolSize) {
      if (!read_exact(layer_, at, raw)) {
        fields_.warn("kallsyms->symtab entry", at);
        continue;
      }
      const auto st_name = load<std::uint32_t>(raw, 0);
      ModuleSymbol symbol;
      symbol.info = static_cast<std::uint8_t>(raw[4]);
      symbol.other = static_cast<std::uint8_t>(raw[5]);
      symbol.address = load<std::uint64_t>(raw, 8);
      symbol.size = load<std::uint64_t>(raw, 16);
      if (auto name = read_c_string(layer_, strtab_ + st_name, kMaxSymbolName)) {
        symbol.name = std::move(*name);
      } else {
        fields_.warn("kallsyms->strtab name", strtab_ + st_name);
        continue;
      }
      // The table starts with the null symbol; /proc/kallsyms leaves out every unnamed one.
      if (!symbol.name.empty()) image_.symbols.push_back(std::move(symbol));
    }
  }

  // Each section runs to the next section, the end of its region or the symbol tables the loader
  // appended to the core data (layout_symtab), whichever comes first.
  void bound_sizes(const std::vector<Region>& regions) {
    for (std::size_t i = 0; i < image_.sections.size(); ++i) {
      ModuleSection& section = image_.sections[i];
      const Region& region = *std::ranges::find_if(
          regions, [&](const Region& r) { return section.address >= r.base && section.address - r.base < r.size; });
      Addr end = region.base + region.size;
      if (i + 1 < image_.sections.size()) end = std::min(end, image_.sections[i + 1].address);
      for (Addr table : {symtab_, strtab_}) {
        if (table > section.address && table < end) end = table;
      }
      section.size = end - section.address;
    }
  }

  void read_bytes() {
    std::uint64_t total = 0;
    for (ModuleSection& section : image_.sections) {
      if (total + section.size > kMaxModuleImageBytes) {
        fields_.warn("section " + section.name, section.address,
                     "and those after it are left out: the module's sections exceed " +
                         std::to_string(kMaxModuleImageBytes) + " bytes");
        image_.sections.erase(image_.sections.begin() + (&section - image_.sections.data()), image_.sections.end());
        return;
      }
      total += section.size;
      section.bytes.resize(section.size);
      for (std::uint64_t done = 0; done < section.size;) {
        const Addr at = section.address + done;
        const std::uint64_t n = std::min(kPage - (at & (kPage - 1)), section.size - done);
        const std::span<std::byte> into(section.bytes.data() + done, n);
        if (!read_exact(layer_, at, into)) {
          std::ranges::fill(into, std::byte{0});
          const Addr page = at & ~(kPage - 1);
          if (image_.missing_pages.empty() || image_.missing_pages.back() != page) image_.missing_pages.push_back(page);
        }
        done += n;
      }
    }
  }

  template <class T, std::size_t N>
  static T load(const std::array<std::byte, N>& raw, std::size_t offset) {
    T value{};
    std::memcpy(&value, raw.data() + offset, sizeof value);
    return value;
  }

  const PagedLayer& layer_;
  const ModuleImageLayout& layout_;
  const Module& module_;
  FieldReader fields_;
  ModuleImage image_;
  Addr symtab_ = 0, strtab_ = 0;
  std::uint64_t symtab_size_ = 0;
};

}  // namespace

Expected<ModuleImage> read_module_image(const Kernel& kernel, const Module& module, Diagnostics& diagnostics) {
  const auto& bound = kernel.layout<ModuleImageLayout>();
  if (!bound) return bound.error();
  return ModuleImageReader(kernel, *bound, module, diagnostics).read();
}

Expected<std::vector<ModuleSymbol>> read_module_symbols(const Kernel& kernel, const Module& module,
                                                        Diagnostics& diagnostics) {
  const auto& bound = kernel.layout<ModuleImageLayout>();
  if (!bound) return bound.error();
  return ModuleImageReader(kernel, *bound, module, diagnostics).symbols();
}

}  // namespace vmi::linux_objects
