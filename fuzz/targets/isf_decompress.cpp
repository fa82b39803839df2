// xz and zstd decompression of ISF files: the decoder the input's magic selects (as load_isf_file
// picks it) and each decoder forced, then the JSON parser on what the selected one produced.
#include <algorithm>
#include <string>

#include "fuzz_support.hpp"
#include "symbols/decompress.hpp"
#include "vmi/isf.hpp"

namespace {
constexpr std::size_t kPadding = 64;           // simdjson::SIMDJSON_PADDING, what load_isf_file asks for
constexpr std::size_t kMaxOutput = 16u << 20;  // load_isf_file allows 2 GiB; a bomb here fails fast
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto bytes = vmi_fuzz::bytes_of(data, size);
  const vmi::Compression detected = vmi::detect_compression(bytes.first(std::min<std::size_t>(8, size)));
  for (vmi::Compression kind : {vmi::Compression::xz, vmi::Compression::zstd}) {
    std::string out;
    if (!vmi::decompress(bytes, kind, out, kPadding, kMaxOutput, "fuzz")) continue;
    // decompress() promises the cap and the spare padding the JSON parser reads into.
    if (out.size() > kMaxOutput || out.capacity() < out.size() + kPadding) __builtin_trap();
    if (kind == detected) (void)vmi::parse_isf(out, "fuzz");
  }
  return 0;
}
