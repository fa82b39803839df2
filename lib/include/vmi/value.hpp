// A value that may be missing, and why: shared by kernel objects and plugin rows.
#pragma once

#include <cstdint>
#include <variant>

namespace vmi {

// Why a value is missing: Volatility 3 renders these "-" and "N/A"; JSON has null for both.
enum class Absence : std::uint8_t {
  unreadable,      // the field exists but its memory could not be read (a warning says where)
  not_applicable,  // the field has no meaning here (a pipe's path on disk, a kernel thread's mm)
};

// A value, or why there is none.
template <class T>
using Maybe = std::variant<Absence, T>;

}  // namespace vmi
