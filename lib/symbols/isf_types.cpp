// Shared ISF type shaping (see isf_types.hpp).
#include "symbols/isf_types.hpp"

#include <algorithm>
#include <cstdio>

namespace vmi::isf_types {

std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  for (char c : text) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return hash;
}

std::string unnamed(std::string_view signature) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "unnamed_%016llx", static_cast<unsigned long long>(fnv1a(signature)));
  return buffer;
}

std::string TypeTable::unnamed_field(std::uint32_t n) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "unnamed_field_%x", n);
  return buffer;
}

std::uint32_t TypeTable::intern(Desc d) {
  std::string key = std::to_string(static_cast<int>(d.kind)) + '|' + d.name + '|' + std::to_string(d.subtype) + '|' +
                    std::to_string(d.count) + '|' + std::to_string(d.bit_position) + '|' + std::to_string(d.bit_length);
  auto [it, inserted] = index_.try_emplace(std::move(key), static_cast<std::uint32_t>(descs_.size()));
  if (!inserted) return it->second;
  const TypeId subtype = d.subtype == kUnset ? kNoType : ids_[d.subtype];
  ids_.push_back(builder_.add_type(d.kind, d.name, subtype, d.count, d.bit_position, d.bit_length));
  descs_.push_back(std::move(d));
  return it->second;
}

std::string TypeTable::render(std::uint32_t d) const {
  const Desc& desc = descs_[d];
  switch (desc.kind) {
    case TypeKind::pointer:
      return "*" + render(desc.subtype);
    case TypeKind::array:
      return "[" + std::to_string(desc.count) + "]" + render(desc.subtype);
    case TypeKind::bitfield:
      return "bits" + std::to_string(desc.bit_position) + ":" + std::to_string(desc.bit_length) + " " +
             render(desc.subtype);
    default:
      return std::string(to_string(desc.kind)) + " " + desc.name;
  }
}

std::string TypeTable::signature(bool is_union, std::uint32_t size, const std::vector<PendingMember>& members) const {
  std::string text = std::string(is_union ? "union " : "struct ") + std::to_string(size) + " {";
  for (const PendingMember& m : members) text += m.name + "@" + std::to_string(m.offset) + " " + render(m.desc) + ";";
  return text + "}";
}

bool TypeTable::add_base(std::string name, std::uint32_t size, BaseKind kind, bool is_signed) {
  if (!base_names_.insert(name).second) return false;
  builder_.add_base_type(name, size, kind, is_signed);
  BaseInfo info{std::move(name), size, kind, is_signed};
  // Kept sorted by name: enum_base() takes the first match in name order.
  auto at = std::lower_bound(bases_.begin(), bases_.end(), info,
                             [](const BaseInfo& a, const BaseInfo& b) { return a.name < b.name; });
  bases_.insert(at, std::move(info));
  return true;
}

std::string TypeTable::enum_base(std::uint32_t size, bool is_signed) const {
  for (const BaseInfo& b : bases_) {
    if (b.kind == BaseKind::integer && b.size == size && b.is_signed == is_signed) return b.name;
  }
  return "void";
}

}  // namespace vmi::isf_types
