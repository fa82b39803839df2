// Saving ISF files, compressed according to their name.
#include <fstream>
#include <sstream>

#include "symbols/decompress.hpp"
#include "vmi/isf.hpp"

namespace vmi {

Expected<void> save_isf_file(const Profile& profile, const std::filesystem::path& path) {
  std::ostringstream json;
  VMI_TRY_VOID(write_isf(profile, json));
  const std::string name = path.filename().string();
  const Compression kind = name.ends_with(".xz")    ? Compression::xz
                           : name.ends_with(".zst") ? Compression::zstd
                                                    : Compression::none;
  std::string bytes;
  VMI_TRY_VOID(compress(json.str(), kind, bytes));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) return make_error(Errc::io, "cannot write '" + path.string() + "'");
  return {};
}

}  // namespace vmi
