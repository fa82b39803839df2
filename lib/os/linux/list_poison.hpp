// What list_del() leaves in a removed entry's links (include/linux/poison.h), for the scans that
// judge a carved object by its links: a link is a kernel pointer or its own poison.
#pragma once

#include <cstdint>

namespace vmi::linux_objects {

// LIST_POISON1 and LIST_POISON2 with x86-64's POISON_POINTER_DELTA. list_del() writes both;
// list_del_rcu() writes only prev (next stays, so RCU readers can go on walking).
constexpr std::uint64_t kListPoisonNext = 0xdead000000000100ull;
constexpr std::uint64_t kListPoisonPrev = 0xdead000000000122ull;

// Whether a value is a canonical kernel-half address under the kernel's paging (48 or 57 virtual
// bits): every bit from the top one of the address width up is set.
class KernelHalf {
 public:
  explicit constexpr KernelHalf(unsigned virtual_bits)
      : shift_(virtual_bits - 1), top_((std::uint64_t{1} << (65 - virtual_bits)) - 1) {}
  constexpr bool contains(std::uint64_t value) const { return (value >> shift_) == top_; }

  // A list_head link as a live or removed entry holds it: a kernel pointer or its own poison.
  constexpr bool plausible_link(std::uint64_t value, std::uint64_t poison) const {
    return value == poison || contains(value);
  }

 private:
  unsigned shift_;
  std::uint64_t top_;
};

}  // namespace vmi::linux_objects
