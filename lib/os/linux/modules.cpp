// Walks the kernel's `modules` list and reads each module as /proc/modules and /sys/module show
// it (kernel/module/procfs.c m_show, kernel/params.c), at offsets bound once per kernel.
#include <algorithm>
#include <array>
#include <cstring>

#include "vmi/linux.hpp"
#include "vmi/object.hpp"

namespace vmi::linux_objects {

namespace {

constexpr std::size_t kMaxUsers = 1024;         // modules using one module (/proc lists them all)
constexpr std::uint32_t kMaxParameters = 1024;  // parameters of one module (num_kp)
constexpr std::size_t kMaxParameterText = 1024;
constexpr std::int32_t kModuleRefBase = 1;     // MODULE_REF_BASE: the reference a live module holds on itself
constexpr std::size_t kModuleMemoryTypes = 7;  // MOD_MEM_NUM_TYPES (6.4+); MOD_TEXT is 0

// enum module_state: include/linux/module.h
constexpr std::array<std::string_view, 4> kStates = {"Live", "Loading", "Unloading", "Unformed"};

// The taint flags a module can carry, by bit, with their letters (kernel/panic.c taint_flags,
// entries with .module = true).
struct ModuleTaint {
  unsigned bit;
  char letter;
};
constexpr ModuleTaint kModuleTaints[] = {{0, 'P'},  {1, 'F'},  {10, 'C'}, {12, 'O'}, {13, 'E'},
                                         {15, 'K'}, {16, 'X'}, {17, 'T'}, {18, 'N'}};

// Where a module's text and sizes live: core_layout/init_layout before 6.4, mem[] after.
struct SizeLayout {
  bool memory_array = false;
  std::uint32_t mem = 0, memory_size = 0, memory_base = 0, memory_length = 0;  // 6.4+
  std::uint32_t core = 0, init = 0, layout_base = 0, layout_size = 0, layout_text_size = 0;
  std::optional<std::uint32_t> data;  // data_layout (CONFIG_ARCH_WANTS_MODULES_DATA_IN_VMALLOC)
};

struct ParameterLayout {
  std::uint32_t name = 0, ops = 0, arg = 0, size = 0;
  std::optional<std::uint32_t> string_text;  // kparam_string.string
  // kparam_array: max, elemsize, num (unsigned int *), ops, elem
  std::optional<std::uint32_t> array_max, array_elemsize, array_num, array_ops, array_elem;
};

struct ModuleLayout {
  std::uint32_t list = 0, name = 0, name_size = 0, state = 0;
  std::optional<SizeLayout> sizes;
  std::optional<std::uint32_t> refcnt, taints, args, kp, num_kp, init, exit;
  std::optional<std::uint32_t> source_list, use_source_list, use_source;
  std::optional<ParameterLayout> parameter;

  static Expected<ModuleLayout> bind(const Profile& p) {
    auto optional = [&](std::string_view type, std::string_view field) -> std::optional<std::uint32_t> {
      if (auto offset = bind_offset(p, type, field)) return *offset;
      return std::nullopt;
    };
    ModuleLayout l;
    l.list = VMI_TRY(bind_offset(p, "module", "list"));
    const FieldInfo name = VMI_TRY(p.field("module", "name"));
    l.name = name.offset;
    l.name_size = static_cast<std::uint32_t>(p.size_of(name.type).value_or(56));
    l.state = VMI_TRY(bind_offset(p, "module", "state"));
    l.sizes = bind_sizes(p);
    l.refcnt = optional("module", "refcnt");
    l.taints = optional("module", "taints");
    l.args = optional("module", "args");
    l.kp = optional("module", "kp");
    l.num_kp = optional("module", "num_kp");
    l.init = optional("module", "init");
    l.exit = optional("module", "exit");
    l.source_list = optional("module", "source_list");
    l.use_source_list = optional("module_use", "source_list");
    l.use_source = optional("module_use", "source");
    const Aggregate* kernel_param = p.find_aggregate("kernel_param");
    auto pname = optional("kernel_param", "name"), ops = optional("kernel_param", "ops");
    auto arg = optional("kernel_param", "arg");
    if (kernel_param != nullptr && pname && ops && arg) {
      l.parameter = ParameterLayout{};
      l.parameter->name = *pname;
      l.parameter->ops = *ops;
      l.parameter->arg = *arg;
      l.parameter->size = kernel_param->size;
      l.parameter->string_text = optional("kparam_string", "string");
      l.parameter->array_max = optional("kparam_array", "max");
      l.parameter->array_elemsize = optional("kparam_array", "elemsize");
      l.parameter->array_num = optional("kparam_array", "num");
      l.parameter->array_ops = optional("kparam_array", "ops");
      l.parameter->array_elem = optional("kparam_array", "elem");
    }
    return l;
  }

  static std::optional<SizeLayout> bind_sizes(const Profile& p) {
    SizeLayout s;
    const Aggregate* memory = p.find_aggregate("module_memory");
    auto mem = bind_offset(p, "module", "mem");
    if (memory != nullptr && mem) {
      auto base = bind_offset(p, "module_memory", "base");
      auto size = bind_offset(p, "module_memory", "size");
      if (!base || !size) return std::nullopt;
      s.memory_array = true;
      s.mem = *mem;
      s.memory_size = memory->size;
      s.memory_base = *base;
      s.memory_length = *size;
      return s;
    }
    auto core = bind_offset(p, "module", "core_layout");
    auto init = bind_offset(p, "module", "init_layout");
    auto base = bind_offset(p, "module_layout", "base");
    auto size = bind_offset(p, "module_layout", "size");
    auto text_size = bind_offset(p, "module_layout", "text_size");
    if (!core || !init || !base || !size || !text_size) return std::nullopt;
    s.core = *core;
    s.init = *init;
    s.layout_base = *base;
    s.layout_size = *size;
    s.layout_text_size = *text_size;
    if (auto data = bind_offset(p, "module", "data_layout")) s.data = *data;
    return s;
  }
};

// How a parameter's value is kept and shown, told by its kernel_param_ops (kernel/params.c).
enum class ParameterKind {
  byte,
  short_int,
  ushort_int,
  int32,
  uint32,
  hexint,
  long_int,
  ulong_int,
  ullong_int,
  boolean,
  inverse_boolean,
  charp,
  string,
  array
};

struct ParameterOps {
  std::string_view symbol;
  ParameterKind kind;
};
constexpr ParameterOps kParameterOps[] = {
    {"param_ops_byte", ParameterKind::byte},
    {"param_ops_short", ParameterKind::short_int},
    {"param_ops_ushort", ParameterKind::ushort_int},
    {"param_ops_int", ParameterKind::int32},
    {"param_ops_uint", ParameterKind::uint32},
    {"param_ops_hexint", ParameterKind::hexint},
    {"param_ops_long", ParameterKind::long_int},
    {"param_ops_ulong", ParameterKind::ulong_int},
    {"param_ops_ullong", ParameterKind::ullong_int},
    {"param_ops_bool", ParameterKind::boolean},
    {"param_ops_bool_enable_only", ParameterKind::boolean},
    {"param_ops_bint", ParameterKind::int32},
    {"param_ops_invbool", ParameterKind::inverse_boolean},
    {"param_ops_charp", ParameterKind::charp},
    {"param_ops_string", ParameterKind::string},
    {"param_array_ops", ParameterKind::array},
};
constexpr std::uint32_t kMaxArrayElements = 4096;

class ModuleReader {
 public:
  ModuleReader(const Kernel& kernel, const ModuleLayout& layout, Diagnostics& diagnostics)
      : layer_(kernel.kernel_layer()), layout_(layout), diagnostics_(diagnostics) {
    for (const ParameterOps& ops : kParameterOps) {
      if (auto address = kernel.symbol(ops.symbol)) parameter_ops_.emplace_back(*address, ops.kind);
    }
  }

  Expected<Module> read(Addr address) {
    Module module;
    module.address = address;
    std::vector<char> name(layout_.name_size);
    VMI_TRY_VOID(read_exact(layer_, address + layout_.name, std::as_writable_bytes(std::span(name))));
    module.name.assign(name.data(), strnlen(name.data(), name.size()));
    const auto state = field<std::uint32_t>(module, "state", layout_.state);
    if (state && *state < kStates.size()) {
      module.state = std::string(kStates[*state]);
    } else if (state) {
      unreadable(module, "state", address + layout_.state, "holds " + std::to_string(*state) + ", no module state");
    }
    read_sizes(module);
    if (layout_.refcnt) {
      if (auto count = field<std::int32_t>(module, "refcnt", *layout_.refcnt))
        module.refcount = *count - kModuleRefBase;
    }
    module.used_by = users(module);
    if (layout_.taints) {
      if (auto taints = field<std::uint64_t>(module, "taints", *layout_.taints)) module.taints = taint_letters(*taints);
    }
    module.arguments = parameters(module);
    return module;
  }

 private:
  void unreadable(const Module& module, std::string_view field_name, Addr at, std::string_view why = "is unreadable") {
    diagnostics_.warn("module " + hex(module.address) + " (" + module.name + "): field '" + std::string(field_name) +
                      "' at " + hex(at) + " " + std::string(why));
  }

  template <typename T>
  std::optional<T> read_at(const Module& module, std::string_view name, Addr at) {
    auto value = read_value<T>(layer_, at);
    if (value) return *value;
    unreadable(module, name, at);
    return std::nullopt;
  }

  template <typename T>
  std::optional<T> field(const Module& module, std::string_view name, std::uint32_t offset) {
    return read_at<T>(module, name, module.address + offset);
  }

  // module_total_size() and the text /proc/modules points at.
  void read_sizes(Module& module) {
    if (!layout_.sizes) return;
    const SizeLayout& s = *layout_.sizes;
    if (s.memory_array) {
      std::uint64_t total = 0;
      bool complete = true;
      for (std::size_t type = 0; type < kModuleMemoryTypes; ++type) {
        const Addr memory = module.address + s.mem + type * s.memory_size;
        auto size = read_at<std::uint32_t>(module, "mem[" + std::to_string(type) + "].size", memory + s.memory_length);
        if (!size) {
          complete = false;
          continue;
        }
        total += *size;
        if (type == 0) module.code_size = *size;  // MOD_TEXT
      }
      if (complete) module.size = total;
      module.base = read_at<std::uint64_t>(module, "mem[MOD_TEXT].base", module.address + s.mem + s.memory_base);
      return;
    }
    const auto core = read_at<std::uint32_t>(module, "core_layout.size", module.address + s.core + s.layout_size);
    const auto init = read_at<std::uint32_t>(module, "init_layout.size", module.address + s.init + s.layout_size);
    std::optional<std::uint32_t> data = 0;
    if (s.data) data = read_at<std::uint32_t>(module, "data_layout.size", module.address + *s.data + s.layout_size);
    if (core && init && data) module.size = std::uint64_t{*core} + *init + *data;
    module.code_size =
        read_at<std::uint32_t>(module, "core_layout.text_size", module.address + s.core + s.layout_text_size);
    module.base = read_at<std::uint64_t>(module, "core_layout.base", module.address + s.core + s.layout_base);
  }

  // print_unload_info()'s list: the users' names, then "[permanent]" when the module cannot be
  // unloaded, joined by ","; empty for none (where /proc/modules prints "-", which a table would
  // show as if unreadable).
  std::optional<std::string> users(const Module& module) {
    if (!layout_.source_list || !layout_.use_source_list || !layout_.use_source || !layout_.init || !layout_.exit)
      return std::nullopt;
    std::string text;
    bool complete = true;
    const Addr head = module.address + *layout_.source_list;
    ListWalk walk = walk_list(layer_, head, kMaxUsers, [&](Addr node) {
      const Addr use = node - *layout_.use_source_list;
      auto source = read_at<std::uint64_t>(module, "module_use.source", use + *layout_.use_source);
      auto name = source ? read_c_string(layer_, *source + layout_.name, layout_.name_size) : Expected<std::string>{""};
      if (!source || !name) {
        if (source) unreadable(module, "module_use.source->name", *source + layout_.name);
        complete = false;
        return false;
      }
      text += (text.empty() ? "" : ",") + *name;
      return true;
    });
    if (walk.end != ListEnd::complete) {
      diagnostics_.warn("module " + hex(module.address) + " (" + module.name + "): users: " + walk.problem);
      complete = false;
    }
    const auto init = field<std::uint64_t>(module, "init", *layout_.init);
    const auto exit = field<std::uint64_t>(module, "exit", *layout_.exit);
    if (!complete || !init || !exit) return std::nullopt;
    if (*init != 0 && *exit == 0) text += text.empty() ? "[permanent]" : ",[permanent]";
    return text;
  }

  static std::string taint_letters(std::uint64_t taints) {
    std::string letters;
    for (const ModuleTaint& taint : kModuleTaints) {
      if ((taints >> taint.bit) & 1) letters += taint.letter;
    }
    return letters;
  }

  // Each kernel_param as "name=value", values as their param_get_* functions print them.
  std::optional<std::string> parameters(const Module& module) {
    if (!layout_.parameter || !layout_.kp || !layout_.num_kp) return std::nullopt;
    const auto kp = field<std::uint64_t>(module, "kp", *layout_.kp);
    const auto count = field<std::uint32_t>(module, "num_kp", *layout_.num_kp);
    if (!kp || !count) return std::nullopt;
    if (*count > kMaxParameters) {
      unreadable(module, "num_kp", module.address + *layout_.num_kp,
                 "holds " + std::to_string(*count) + ", more than " + std::to_string(kMaxParameters) + " parameters");
      return std::nullopt;
    }
    const ParameterLayout& p = *layout_.parameter;
    std::string text;
    for (std::uint32_t i = 0; i < *count; ++i) {
      const Addr param = *kp + std::uint64_t{i} * p.size;
      const auto name_pointer = read_at<std::uint64_t>(module, "kp[" + std::to_string(i) + "].name", param + p.name);
      if (!name_pointer) return std::nullopt;
      auto name = read_c_string(layer_, *name_pointer, kMaxParameterText);
      if (!name) {
        unreadable(module, "kp[" + std::to_string(i) + "].name string", *name_pointer);
        return std::nullopt;
      }
      auto value = parameter_value(module, *name, param);
      if (!value) return std::nullopt;
      text += (text.empty() ? "" : ", ") + *name + "=" + *value;
    }
    return text;
  }

  std::optional<std::string> parameter_value(const Module& module, const std::string& name, Addr param) {
    const ParameterLayout& p = *layout_.parameter;
    const std::string label = "parameter '" + name + "'";
    const auto ops = read_at<std::uint64_t>(module, label + " ops", param + p.ops);
    const auto arg = read_at<std::uint64_t>(module, label + " arg", param + p.arg);
    if (!ops || !arg) return std::nullopt;
    const auto kind = kind_of(module, label, *ops, param + p.ops);
    if (!kind) return std::nullopt;
    if (*kind == ParameterKind::array) return array_value(module, label, *arg);
    return value_at(module, label, *kind, *arg);
  }

  std::optional<ParameterKind> kind_of(const Module& module, const std::string& label, Addr ops, Addr ops_at) {
    const auto known = std::find_if(parameter_ops_.begin(), parameter_ops_.end(),
                                    [&](const auto& entry) { return entry.first == ops; });
    if (known != parameter_ops_.end()) return known->second;
    // Module-defined ops format their values in code; there is no stored text to read.
    unreadable(module, label, ops_at, "has ops at " + hex(ops) + " that print no stored value");
    return std::nullopt;
  }

  // param_array_get(): the first *num (or max) elements, each as its element ops print it, joined by ",".
  std::optional<std::string> array_value(const Module& module, const std::string& label, Addr array) {
    const ParameterLayout& p = *layout_.parameter;
    if (!p.array_max || !p.array_elemsize || !p.array_num || !p.array_ops || !p.array_elem) return std::nullopt;
    const auto max = read_at<std::uint32_t>(module, label + " array max", array + *p.array_max);
    const auto elemsize = read_at<std::uint32_t>(module, label + " array elemsize", array + *p.array_elemsize);
    const auto num_pointer = read_at<std::uint64_t>(module, label + " array num", array + *p.array_num);
    const auto ops = read_at<std::uint64_t>(module, label + " array ops", array + *p.array_ops);
    const auto elements = read_at<std::uint64_t>(module, label + " array elem", array + *p.array_elem);
    if (!max || !elemsize || !num_pointer || !ops || !elements) return std::nullopt;
    std::optional<std::uint32_t> count = *max;
    if (*num_pointer != 0) count = read_at<std::uint32_t>(module, label + " array count", *num_pointer);
    if (!count) return std::nullopt;
    if (*count > *max || *count > kMaxArrayElements) {
      unreadable(module, label + " array count", *num_pointer,
                 "holds " + std::to_string(*count) + ", above its maximum");
      return std::nullopt;
    }
    const auto kind = kind_of(module, label + " element", *ops, array + *p.array_ops);
    if (!kind || *kind == ParameterKind::array) return std::nullopt;
    std::string text;
    for (std::uint32_t i = 0; i < *count; ++i) {
      auto value = value_at(module, label, *kind, *elements + std::uint64_t{i} * *elemsize);
      if (!value) return std::nullopt;
      text += (i == 0 ? "" : ",") + *value;
    }
    return text;
  }

  // A scalar or string parameter whose storage is at `at`, as its param_get_* prints it.
  std::optional<std::string> value_at(const Module& module, const std::string& label, ParameterKind kind, Addr at) {
    auto number = [&]<typename T>(T /*type*/) -> std::optional<T> { return read_at<T>(module, label + " value", at); };
    switch (kind) {
      case ParameterKind::byte:
        if (auto v = number(std::uint8_t{})) return std::to_string(*v);
        break;
      case ParameterKind::short_int:
        if (auto v = number(std::int16_t{})) return std::to_string(*v);
        break;
      case ParameterKind::ushort_int:
        if (auto v = number(std::uint16_t{})) return std::to_string(*v);
        break;
      case ParameterKind::int32:
        if (auto v = number(std::int32_t{})) return std::to_string(*v);
        break;
      case ParameterKind::uint32:
        if (auto v = number(std::uint32_t{})) return std::to_string(*v);
        break;
      case ParameterKind::hexint:
        if (auto v = number(std::uint32_t{})) return hex(*v);
        break;
      case ParameterKind::long_int:
        if (auto v = number(std::int64_t{})) return std::to_string(*v);
        break;
      case ParameterKind::ulong_int:
      case ParameterKind::ullong_int:
        if (auto v = number(std::uint64_t{})) return std::to_string(*v);
        break;
      case ParameterKind::boolean:
      case ParameterKind::inverse_boolean:
        if (auto v = number(std::uint8_t{})) {
          const bool set = (*v != 0) != (kind == ParameterKind::inverse_boolean);
          return std::string(set ? "Y" : "N");
        }
        break;
      case ParameterKind::charp:
        if (auto pointer = number(std::uint64_t{})) return text_at(module, label, *pointer);
        break;
      case ParameterKind::string: {
        const auto& string_text = layout_.parameter->string_text;
        if (!string_text) return std::nullopt;
        if (auto pointer = read_at<std::uint64_t>(module, label + " string", at + *string_text))
          return text_at(module, label, *pointer);
        break;
      }
      case ParameterKind::array:
        break;
    }
    return std::nullopt;
  }

  std::optional<std::string> text_at(const Module& module, const std::string& label, Addr pointer) {
    if (pointer == 0) return std::string("(null)");  // param_get_charp prints a NULL pointer so
    auto text = read_c_string(layer_, pointer, kMaxParameterText);
    if (text) return *text;
    unreadable(module, label + " text", pointer);
    return std::nullopt;
  }

  const Layer& layer_;
  const ModuleLayout& layout_;
  Diagnostics& diagnostics_;
  std::vector<std::pair<Addr, ParameterKind>> parameter_ops_;
};

}  // namespace

Expected<Module> read_module(const Kernel& kernel, Addr address, Diagnostics& diagnostics) {
  if (kernel.os() != "linux") return make_error(Errc::invalid_argument, "not a Linux kernel");
  const auto& bound = kernel.layout<ModuleLayout>();
  if (!bound) return bound.error();
  return ModuleReader(kernel, *bound, diagnostics).read(address);
}

Expected<void> for_each_module(const Kernel& kernel, Diagnostics& diagnostics,
                               const std::function<bool(Module&&)>& visit) {
  if (kernel.os() != "linux") return make_error(Errc::invalid_argument, "not a Linux kernel");
  const auto& bound = kernel.layout<ModuleLayout>();
  if (!bound) return bound.error();
  const ModuleLayout& layout = *bound;
  const auto head = kernel.symbol("modules");
  if (!head) return make_error(Errc::not_found, "profile has no symbol 'modules'");
  // A column the profile cannot place is unreadable for every module: said once, here.
  auto lacks = [&](bool missing, std::string_view what, std::string_view columns) {
    if (missing)
      diagnostics.warn("modules: the profile lacks " + std::string(what) + "; " + std::string(columns) +
                       " cannot be read");
  };
  lacks(!layout.sizes, "module.mem and module.core_layout", "Size, Base and Code Size");
  lacks(!layout.refcnt, "module.refcnt", "Refcount");
  lacks(!layout.taints, "module.taints", "Taints");
  lacks(!layout.parameter || !layout.kp || !layout.num_kp, "module.kp/num_kp or kernel_param", "Load Arguments");
  lacks(!layout.source_list || !layout.use_source_list || !layout.use_source || !layout.init || !layout.exit,
        "module.source_list/init/exit or module_use", "Used By");

  ModuleReader reader(kernel, layout, diagnostics);
  ListWalk walk = walk_list(kernel.kernel_layer(), *head, kMaxModules, [&](Addr node) {
    const Addr address = node - layout.list;
    auto module = reader.read(address);
    if (!module) {
      diagnostics.warn("module " + hex(address) + ": name unreadable (" + module.error().message + "); skipped");
      return true;
    }
    return visit(std::move(*module));
  });
  if (walk.end == ListEnd::unreadable && walk.entries == 0)
    return make_error(Errc::unmapped, "modules: " + walk.problem);
  if (walk.end != ListEnd::complete) diagnostics.warn("modules: " + walk.problem);
  return {};
}

}  // namespace vmi::linux_objects
