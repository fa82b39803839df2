// The x86-64 kernel stack as the entry code lays it out, for readers of a task's stack.
#pragma once

#include <cstdint>

namespace vmi::linux_objects {

// THREAD_SIZE on x86-64 (PAGE_SIZE << THREAD_SIZE_ORDER, order 2 without KASAN): a task's kernel
// stack is this big and this aligned, task->stack its lowest address.
constexpr std::uint64_t kThreadSize = 16384;

}  // namespace vmi::linux_objects
