// How check plugins show a handler (a function pointer the kernel calls through): its address, the
// module and symbol of the code that owns it, and Hooked, true exactly when no known code does.
#pragma once

#include <optional>
#include <string>

#include "vmi/linux.hpp"
#include "vmi/value.hpp"

namespace vmi {

struct HandlerVerdict {
  Maybe<std::uint64_t> address = Absence::unreadable;
  Maybe<std::string> module = Absence::unreadable;
  Maybe<std::string> symbol = Absence::unreadable;
  bool hooked = false;
};

// An unreadable pointer accuses nothing (a warning already says why); NULL has no code to judge.
inline HandlerVerdict judge_handler(const linux_objects::KnownCode& code, const std::optional<Addr>& handler) {
  HandlerVerdict verdict;
  if (!handler) return verdict;
  if (*handler == 0) {
    verdict.address = Absence::not_applicable;
    verdict.module = verdict.symbol = Absence::not_applicable;
    return verdict;
  }
  verdict.address = *handler;
  const linux_objects::CodeOwner owner = code.owner_of(*handler);
  verdict.hooked = owner.module.empty();
  if (!verdict.hooked) verdict.module = owner.module;
  if (owner.symbol) verdict.symbol = *owner.symbol;
  return verdict;
}

}  // namespace vmi
