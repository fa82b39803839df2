// Warnings collected while a session works: what could not be read, and where.
#pragma once

#include <string>
#include <vector>

namespace vmi {

// Owned by the session; the library never prints. The CLI shows these on stderr.
class Diagnostics {
 public:
  void warn(std::string message) {
    if (warnings_.size() < kMaxWarnings)
      warnings_.push_back(std::move(message));
    else
      ++dropped_;
  }
  const std::vector<std::string>& warnings() const { return warnings_; }
  // Facts worth telling the user that are not problems ("profile recovered from snapshot: ...").
  void note(std::string message) {
    if (notes_.size() < kMaxWarnings) notes_.push_back(std::move(message));
  }
  const std::vector<std::string>& notes() const { return notes_; }
  std::size_t dropped() const { return dropped_; }
  void clear() {
    warnings_.clear();
    notes_.clear();
    dropped_ = 0;
  }

 private:
  static constexpr std::size_t kMaxWarnings = 1000;  // a smeared image can fail every read
  std::vector<std::string> warnings_;
  std::vector<std::string> notes_;
  std::size_t dropped_ = 0;
};

}  // namespace vmi
