// kallsyms recovery over the input taken as kernel memory from _text (0xffffffff81000000): the
// token table found by shape, then markers, names, count and addresses; every symbol read back.
#include "vmi/kallsyms.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr vmi::Addr kText = 0xffffffff81000000ull;
  const vmi::MemoryLayer kernel("fuzz", vmi_fuzz::bytes_of(data, size), kText);
  auto recovered = vmi::recover_kallsyms(kernel, kText, vmi::KallsymsOptions{size + 1});
  if (!recovered) return 0;
  std::size_t total = 0;
  for (const auto& symbol : recovered->symbols) total += symbol.name.size() + (symbol.address & 1);
  return total == ~std::size_t{0} ? 1 : 0;
}
