// What list_del() leaves in a removed entry's links (include/linux/poison.h), for the scans that
// judge a carved object by its links: a link is a kernel pointer or its own poison.
#pragma once

#include <cstdint>

namespace vmi::linux_objects {

// LIST_POISON1 and LIST_POISON2 with x86-64's POISON_POINTER_DELTA. list_del() writes both;
// list_del_rcu() writes only prev (next stays, so RCU readers can go on walking).
constexpr std::uint64_t kListPoisonNext = 0xdead000000000100ull;
constexpr std::uint64_t kListPoisonPrev = 0xdead000000000122ull;

}  // namespace vmi::linux_objects
