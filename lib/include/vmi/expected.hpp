// Errors as values: the only way failures cross the library boundary.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace vmi {

enum class Errc : std::uint8_t {
  io,                // the operating system refused a file operation
  bad_format,        // bytes do not follow the format they claim
  truncated,         // a structure runs past the end of its container
  unmapped,          // an address has no backing in this layer
  not_found,         // a symbol, type, field or object is absent
  profile_mismatch,  // the profile does not describe this kernel
  limit_exceeded,    // a count read from untrusted data passed its cap
  unsupported,       // valid input that this build cannot handle
  invalid_argument,  // the caller asked for something meaningless
};

std::string_view to_string(Errc code);

struct Error {
  Errc code;
  std::string message;  // names the file/layer, the offset/address and the numbers involved
};

// A value or the Error explaining its absence. Deliberately small: C++20 has no std::expected.
template <class T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : state_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Expected(Error error) : state_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool has_value() const { return state_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(state_); }
  Error&& error() && { return std::get<1>(std::move(state_)); }

 private:
  std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Expected<void> {
 public:
  Expected() = default;
  Expected(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT(google-explicit-constructor)

  bool has_value() const { return !failed_; }
  explicit operator bool() const { return !failed_; }
  const Error& error() const& { return error_; }
  Error&& error() && { return std::move(error_); }

 private:
  Error error_{Errc::invalid_argument, {}};
  bool failed_ = false;
};

inline Error make_error(Errc code, std::string message) { return Error{code, std::move(message)}; }

}  // namespace vmi

// Propagates an error from an Expected-returning expression, otherwise yields its value.
// GNU statement expressions keep call sites flat; GCC and Clang both support them.
#define VMI_TRY(expr)                                                \
  ({                                                                 \
    auto vmi_try_result_ = (expr);                                   \
    if (!vmi_try_result_) return std::move(vmi_try_result_).error(); \
    std::move(vmi_try_result_).value();                              \
  })

#define VMI_TRY_VOID(expr)                                           \
  do {                                                               \
    auto vmi_try_result_ = (expr);                                   \
    if (!vmi_try_result_) return std::move(vmi_try_result_).error(); \
  } while (false)
