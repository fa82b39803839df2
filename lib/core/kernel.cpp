// What every detected kernel shares: the address spaces its page-table roots make.
#include "vmi/kernel.hpp"

namespace vmi {

std::shared_ptr<const PagedLayer> Kernel::address_space(Addr page_table_root) const {
  std::lock_guard lock(address_spaces_mutex_);
  if (auto it = address_spaces_.find(page_table_root); it != address_spaces_.end()) return it->second;
  const PagedLayer& kernel = kernel_layer();
  auto space = std::make_shared<const PagedLayer>(kernel.shared_physical(), page_table_root, kernel.mode());
  if (address_spaces_.size() < kMaxAddressSpaces) address_spaces_.emplace(page_table_root, space);
  return space;
}

}  // namespace vmi
