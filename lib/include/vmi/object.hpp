// Typed views of kernel objects through a profile, and the one bounded list walker.
#pragma once

#include <functional>
#include <string>

#include "vmi/diagnostics.hpp"
#include "vmi/layer.hpp"
#include "vmi/profile.hpp"

namespace vmi {

// A small value handle {layer, profile, type, address}: reads fields by name. Convenient for
// one-off reads; hot loops bind offsets once (see StructLayout) and read raw offsets.
class ObjectView {
 public:
  ObjectView(const Layer& layer, const Profile& profile, const Aggregate& type, Addr address)
      : layer_(&layer), profile_(&profile), type_(&type), address_(address) {}
  // Fails with Errc::not_found if the profile has no such type.
  static Expected<ObjectView> make(const Layer& layer, const Profile& profile, std::string_view type, Addr address);

  Addr address() const { return address_; }
  std::string_view type_name() const { return profile_->str(type_->name); }
  std::uint32_t size() const { return type_->size; }

  // Integers, enums, bitfields, booleans and pointers, zero- or sign-extended to 64 bits.
  Expected<std::uint64_t> read_unsigned(std::string_view field) const;
  Expected<std::int64_t> read_signed(std::string_view field) const;
  // A char array or a pointer to char, up to max_size bytes, stopping at NUL.
  Expected<std::string> read_string(std::string_view field, std::size_t max_size = 256) const;
  // The embedded struct/union named by field.
  Expected<ObjectView> member(std::string_view field) const;
  // Follows a pointer field to the struct it points at; a null pointer is Errc::not_found.
  Expected<ObjectView> dereference(std::string_view field) const;
  // Address of a field inside this object.
  Expected<Addr> field_address(std::string_view field) const;

 private:
  Expected<FieldInfo> info(std::string_view field) const;
  Expected<std::uint64_t> read_scalar(std::string_view field, bool sign_extend) const;

  const Layer* layer_;
  const Profile* profile_;
  const Aggregate* type_;
  Addr address_;
};

// Offsets bound once: resolves "type.field" paths and fails naming the first missing one.
Expected<std::uint32_t> bind_offset(const Profile& profile, std::string_view type, std::string_view field);

// How a list walk ended.
enum class ListEnd { complete, cycle, unreadable, limit };

struct ListWalk {
  std::size_t entries = 0;
  ListEnd end = ListEnd::complete;
  std::string problem;  // names the bad link's address when end != complete
};

// Walks a circular kernel list_head from `head` (the address of the list_head itself), calling
// visit(node) for every list_head address other than head. Stops at a node seen before
// (cycle), an unreadable link, or after max_entries; what was visited before stays visited.
ListWalk walk_list(const Layer& layer, Addr head, std::size_t max_entries, const std::function<bool(Addr)>& visit);

}  // namespace vmi
