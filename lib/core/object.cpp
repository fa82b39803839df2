// Field reads through a profile, and the cycle-safe, capped list walker.
#include "vmi/object.hpp"

#include <unordered_set>

namespace vmi {

Expected<ObjectView> ObjectView::make(const Layer& layer, const Profile& profile, std::string_view type, Addr address) {
  const Aggregate* aggregate = profile.find_aggregate(type);
  if (aggregate == nullptr) return make_error(Errc::not_found, "profile has no type '" + std::string(type) + "'");
  return ObjectView(layer, profile, *aggregate, address);
}

Expected<FieldInfo> ObjectView::info(std::string_view field) const {
  if (auto found = profile_->find_field(*type_, field)) return *found;
  return make_error(Errc::not_found,
                    "profile type '" + std::string(type_name()) + "' has no field '" + std::string(field) + "'");
}

Expected<Addr> ObjectView::field_address(std::string_view field) const {
  const FieldInfo f = VMI_TRY(info(field));
  return address_ + f.offset;
}

Expected<std::uint64_t> ObjectView::read_scalar(std::string_view field, bool sign_extend) const {
  const FieldInfo f = VMI_TRY(info(field));
  const TypeDesc& desc = profile_->type(f.type);
  const TypeDesc& storage = desc.kind == TypeKind::bitfield ? profile_->type(desc.subtype) : desc;
  bool is_signed = false;
  if (storage.kind == TypeKind::base) {
    const BaseType* base = profile_->find_base_type(profile_->str(storage.name));
    is_signed = base != nullptr && base->is_signed != 0;
  }
  const auto size = profile_->size_of(desc.kind == TypeKind::bitfield ? desc.subtype : f.type);
  if (!size || *size == 0 || *size > 8) {
    return make_error(Errc::invalid_argument,
                      "field '" + std::string(type_name()) + "." + std::string(field) + "' is not a scalar");
  }
  std::uint64_t value = 0;
  VMI_TRY_VOID(read_exact(*layer_, address_ + f.offset, std::as_writable_bytes(std::span(&value, 1)).first(*size)));
  auto bits = static_cast<unsigned>(*size * 8);
  if (desc.kind == TypeKind::bitfield) {
    value >>= desc.bit_position;
    bits = desc.bit_length;
    if (bits < 64) value &= (std::uint64_t{1} << bits) - 1;
  }
  if (sign_extend && is_signed && bits < 64 && ((value >> (bits - 1)) & 1) != 0) value |= ~std::uint64_t{0} << bits;
  return value;
}

Expected<std::uint64_t> ObjectView::read_unsigned(std::string_view field) const { return read_scalar(field, false); }

Expected<std::int64_t> ObjectView::read_signed(std::string_view field) const {
  return static_cast<std::int64_t>(VMI_TRY(read_scalar(field, true)));
}

Expected<std::string> ObjectView::read_string(std::string_view field, std::size_t max_size) const {
  const FieldInfo f = VMI_TRY(info(field));
  const TypeDesc& desc = profile_->type(f.type);
  if (desc.kind == TypeKind::array) {
    return read_c_string(*layer_, address_ + f.offset, std::min<std::size_t>(max_size, desc.count));
  }
  if (desc.kind == TypeKind::pointer) {
    const Addr target = VMI_TRY(read_value<std::uint64_t>(*layer_, address_ + f.offset));
    return read_c_string(*layer_, target, max_size);
  }
  return make_error(Errc::invalid_argument,
                    "field '" + std::string(type_name()) + "." + std::string(field) + "' is not a string");
}

Expected<ObjectView> ObjectView::member(std::string_view field) const {
  const FieldInfo f = VMI_TRY(info(field));
  const Aggregate* inner = profile_->aggregate_of(f.type);
  if (inner == nullptr)
    return make_error(Errc::invalid_argument, "field '" + std::string(field) + "' is not a struct or union");
  return ObjectView(*layer_, *profile_, *inner, address_ + f.offset);
}

Expected<ObjectView> ObjectView::dereference(std::string_view field) const {
  const FieldInfo f = VMI_TRY(info(field));
  const TypeDesc& desc = profile_->type(f.type);
  const Aggregate* target_type = desc.kind == TypeKind::pointer ? profile_->aggregate_of(desc.subtype) : nullptr;
  if (target_type == nullptr) {
    return make_error(Errc::invalid_argument, "field '" + std::string(field) + "' is not a pointer to a struct");
  }
  const Addr target = VMI_TRY(read_value<std::uint64_t>(*layer_, address_ + f.offset));
  if (target == 0)
    return make_error(Errc::not_found,
                      std::string(type_name()) + "." + std::string(field) + " at " + hex(address_) + " is NULL");
  return ObjectView(*layer_, *profile_, *target_type, target);
}

Expected<std::uint32_t> bind_offset(const Profile& profile, std::string_view type, std::string_view field) {
  return VMI_TRY(profile.field(type, field)).offset;
}

ListWalk walk_list(const Layer& layer, Addr head, std::size_t max_entries, const std::function<bool(Addr)>& visit) {
  ListWalk walk;
  std::unordered_set<Addr> seen;
  Addr node = head;
  for (;;) {
    auto next = read_value<std::uint64_t>(layer, node);  // list_head.next is at offset 0
    if (!next) {
      walk.end = ListEnd::unreadable;
      walk.problem =
          "list at " + hex(head) + ": link at " + hex(node) + " is unreadable (" + next.error().message + ")";
      return walk;
    }
    if (*next == head) return walk;
    if (!seen.insert(*next).second) {
      walk.end = ListEnd::cycle;
      walk.problem = "list at " + hex(head) + ": link at " + hex(node) + " points back to " + hex(*next) + ", a cycle";
      return walk;
    }
    if (walk.entries >= max_entries) {
      walk.end = ListEnd::limit;
      walk.problem = "list at " + hex(head) + " has more than " + std::to_string(max_entries) + " entries; stopped";
      return walk;
    }
    ++walk.entries;
    node = *next;
    if (!visit(node)) return walk;
  }
}

}  // namespace vmi
