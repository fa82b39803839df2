// Writing a process's memory area to a file, for the plugins that dump areas (maps, malfind).
#pragma once

#include <filesystem>

#include "vmi/linux.hpp"

namespace vmi {

inline constexpr std::uint64_t kDefaultMaxAreaDump = std::uint64_t{1} << 30;

// Writes [map.start, map.end) of `space` to DIR/pid.PID.vma.START-END.dmp: the file name, or why
// not (an area above `max_size`, a failed write). Pages not in the snapshot are written as zeros
// and counted in a warning.
Maybe<std::string> dump_area(const Layer& space, const linux_objects::MemoryMap& map, std::int32_t pid,
                             const std::filesystem::path& directory, std::uint64_t max_size, Diagnostics& diagnostics);

}  // namespace vmi
