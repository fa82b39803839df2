// Reads one kernel object's fields on behalf of its owner ("task 0x... (pid 42) fd 3"), turning
// every failed read into a warning that names the owner, the field and its address, so callers
// never substitute a value that looks like data.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "vmi/diagnostics.hpp"
#include "vmi/layer.hpp"

namespace vmi {

class FieldReader {
 public:
  // `owner` names the object's owner in warnings; it is called only when there is one to write.
  FieldReader(const Layer& layer, Diagnostics& diagnostics, std::function<std::string()> owner)
      : layer_(layer), diagnostics_(diagnostics), owner_(std::move(owner)) {}

  const Layer& layer() const { return layer_; }

  void warn(std::string_view field, Addr at, std::string_view why = "is unreadable") const {
    diagnostics_.warn(owner_() + ": field '" + std::string(field) + "' at " + hex(at) + " " + std::string(why));
  }

  template <typename T>
  std::optional<T> read(std::string_view field, Addr at) const {
    if (auto value = read_value<T>(layer_, at)) return *value;
    warn(field, at);
    return std::nullopt;
  }

  // A pointer that must not be NULL: nothing, with a warning, when it is NULL or unreadable.
  std::optional<Addr> pointer(std::string_view field, Addr at) const {
    auto value = read<std::uint64_t>(field, at);
    if (value && *value == 0) {
      warn(field, at, "is NULL");
      return std::nullopt;
    }
    return value;
  }

  // `size` bytes at `at`, or nothing with a warning.
  std::optional<std::string> bytes(std::string_view field, Addr at, std::size_t size) const {
    std::string text(size, '\0');
    if (read_exact(layer_, at, std::as_writable_bytes(std::span(text)))) return text;
    warn(field, at);
    return std::nullopt;
  }

 private:
  const Layer& layer_;
  Diagnostics& diagnostics_;
  std::function<std::string()> owner_;
};

}  // namespace vmi
