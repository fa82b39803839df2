// The binary profile cache reader: read_cached_info and read_cached_profile on the input as a
// .vmiprof entry, then every lookup over the profile it accepted. Both take a path, so the input is
// written to the memfd each run (no temp file on disk).
#include "fuzz_support.hpp"
#include "vmi/profile_store.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static vmi_fuzz::InputFile input;
  const std::string& path = input.write(data, size);
  if (auto info = vmi::read_cached_info(path)) {
    (void)info->banner.size();
    (void)info->banner_offset;
  }
  auto profile = vmi::read_cached_profile(path);
  if (!profile) return 0;
  const vmi::Profile& p = *profile;
  vmi_fuzz::exercise_profile(p);
  return 0;
}
