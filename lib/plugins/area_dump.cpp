#include "plugins/area_dump.hpp"

#include <algorithm>
#include <fstream>

namespace vmi {

namespace {

constexpr std::size_t kPage = 4096;

}  // namespace

Maybe<std::string> dump_area(const Layer& space, const linux_objects::MemoryMap& map, std::int32_t pid,
                             const std::filesystem::path& directory, std::uint64_t max_size, Diagnostics& diagnostics) {
  const std::string name = "pid." + std::to_string(pid) + ".vma." + hex(map.start) + "-" + hex(map.end) + ".dmp";
  const std::uint64_t size = map.end - map.start;
  if (size > max_size) {
    diagnostics.warn("pid " + std::to_string(pid) + " area " + hex(map.start) + "-" + hex(map.end) + " is " +
                     std::to_string(size) + " bytes, above --maxsize; not dumped");
    return std::string("not dumped: larger than --maxsize");
  }
  std::ofstream file(directory / name, std::ios::binary | std::ios::trunc);
  std::vector<std::byte> page(kPage);
  std::size_t missing = 0;
  for (Addr at = map.start; at < map.end && file; at += kPage) {
    if (!read_exact(space, at, page)) {
      std::ranges::fill(page, std::byte{0});
      ++missing;
    }
    file.write(reinterpret_cast<const char*>(page.data()), static_cast<std::streamsize>(page.size()));
  }
  if (!file) {
    diagnostics.warn("cannot write " + (directory / name).string());
    return Absence::unreadable;
  }
  if (missing != 0) {
    diagnostics.warn(name + ": " + std::to_string(missing) + " of " + std::to_string(size / kPage) +
                     " pages are not in the snapshot and were written as zeros");
  }
  return name;
}

}  // namespace vmi
