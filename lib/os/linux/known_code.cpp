// Where kernel code lives, for the checks that judge a handler by its location: the image's text
// and the core text of every module on the `modules` list, with their symbols.
#include <algorithm>

#include "vmi/kernel_symbols.hpp"
#include "vmi/linux.hpp"

namespace vmi::linux_objects {

Expected<KnownCode> KnownCode::gather(const Kernel& kernel, Diagnostics& diagnostics) {
  KnownCode code;
  code.kernel_ = &kernel;
  const auto start = kernel.symbol("_stext");
  const auto end = kernel.symbol("_etext");
  if (!start || !end || *end <= *start) return make_error(Errc::not_found, "profile has no _stext.._etext range");
  code.kernel_text_.emplace_back(*start, *end);
  // The init text: freed after boot, yet the kernel's own pointers may still lead there (the
  // reserved exception gates keep the early handlers of early_idt_handler_array).
  const auto init_start = kernel.symbol("_sinittext");
  const auto init_end = kernel.symbol("_einittext");
  if (init_start && init_end && *init_end > *init_start) code.kernel_text_.emplace_back(*init_start, *init_end);
  VMI_TRY_VOID(for_each_module(kernel, diagnostics, [&](Module&& module) {
    if (!module.base || !module.code_size) {
      diagnostics.warn("module " + hex(module.address) + " (" + module.name +
                       "): its text cannot be placed; handlers in it count as unknown code");
      return true;
    }
    ModuleText text{*module.base, *module.base + *module.code_size, module.name, {}};
    // Its symbols name handlers in it; a module without readable symbols still owns its text.
    if (auto symbols = read_module_symbols(kernel, module, diagnostics)) {
      for (auto& symbol : *symbols) text.symbols.emplace_back(symbol.address, std::move(symbol.name));
      std::ranges::sort(text.symbols);
    }
    code.modules_.push_back(std::move(text));
    return true;
  }));
  return code;
}

CodeOwner KnownCode::owner_of(Addr address) const {
  if (std::ranges::any_of(kernel_text_,
                          [&](const auto& range) { return address >= range.first && address < range.second; })) {
    CodeOwner owner{"__kernel__", std::nullopt};
    if (auto symbol = kernel_symbol_at(*kernel_, address)) owner.symbol = symbol->text();
    return owner;
  }
  for (const ModuleText& module : modules_) {
    if (address < module.start || address >= module.end) continue;
    CodeOwner owner{module.name, std::nullopt};
    auto after = std::ranges::upper_bound(module.symbols, address, {}, &std::pair<Addr, std::string>::first);
    if (after != module.symbols.begin()) {
      const auto& [at, name] = *std::prev(after);
      owner.symbol = KernelSymbol{name, address - at}.text();
    }
    return owner;
  }
  return {};
}

}  // namespace vmi::linux_objects
