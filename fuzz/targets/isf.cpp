// The ISF JSON loader, then every lookup and the writer over what it accepted.
#include <sstream>

#include "fuzz_support.hpp"
#include "vmi/isf.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto profile = vmi::parse_isf(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  if (!profile) return 0;
  const vmi::Profile& p = *profile;
  vmi_fuzz::exercise_profile(p);
  std::ostringstream out;
  if (vmi::write_isf(p, out)) (void)vmi::parse_isf(out.str(), "fuzz round trip");
  return 0;
}
