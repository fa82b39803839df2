// A system call's arguments as strace shows them: descriptors with what they are open as, paths
// and strings from the caller's memory, flags by name, structures by field.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace vmi {

// What decoding reads from the task that made the call. Each returns nothing when it cannot (the
// caller's page is not in the snapshot, the descriptor is not open); the decoder then shows the
// raw value marked <unreadable>, and the reader is where a warning belongs.
struct CallerView {
  std::function<std::optional<std::string>(std::uint64_t address, std::size_t max_size)> string;
  std::function<bool(std::uint64_t address, std::span<std::byte> out)> bytes;
  std::function<std::optional<std::string>(std::int32_t fd)> descriptor;  // "pipe:[10294]", a path
};

// The argument list of system call `name` (the kernel's entry-point name, "openat", "newstat"),
// comma-separated as strace writes it: `AT_FDCWD, "/etc/fstab", O_RDONLY`. A call this decoder
// does not know shows its six registers in hex.
std::string decoded_arguments(std::string_view name, const std::array<std::uint64_t, 6>& arguments,
                              const CallerView& caller);

}  // namespace vmi
