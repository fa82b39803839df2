// The ISF shape of types, shared by every importer that turns a debug format (BTF, DWARF) into
// profile types the way dwarf2json does: interned type references, layout signatures that name
// anonymous types stably, and dwarf2json's base-type conventions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "vmi/profile.hpp"

namespace vmi::isf_types {

inline constexpr std::uint32_t kUnset = 0xffffffffu;

std::uint64_t fnv1a(std::string_view text);
// "unnamed_<16 hex digits>": an anonymous type's name from its layout, equal across builds and
// across formats (a BTF and a DWARF importer give one struct the same name).
std::string unnamed(std::string_view signature);

// A type reference in ISF form; `subtype` is another reference's index in the TypeTable.
struct Desc {
  TypeKind kind = TypeKind::void_;
  std::string name;
  std::uint32_t subtype = kUnset;
  std::uint32_t count = 0;
  std::uint8_t bit_position = 0, bit_length = 0;
};

struct PendingMember {
  std::string name;
  std::uint32_t offset = 0;
  std::uint32_t desc = 0;
  bool anonymous = false;
};

// Type references interned into a ProfileBuilder (each distinct reference added once), and the
// base types added so far.
class TypeTable {
 public:
  explicit TypeTable(ProfileBuilder& builder) : builder_(builder) {}

  std::uint32_t intern(Desc d);
  TypeId id(std::uint32_t desc) const { return ids_[desc]; }
  // Text of a reference, for hashing layouts: equal text means equal ISF output.
  std::string render(std::uint32_t desc) const;
  // A struct/union layout as text: "struct 16 {next@0 pointer;...}".
  std::string signature(bool is_union, std::uint32_t size, const std::vector<PendingMember>& members) const;
  // "unnamed_field_<hex n>" for the n-th member without a name.
  static std::string unnamed_field(std::uint32_t n);

  // Adds a base type once per name (the first wins). dwarf2json's conventions: bool and float
  // count as signed; char is a kind of its own.
  bool add_base(std::string name, std::uint32_t size, BaseKind kind, bool is_signed);
  // dwarf2json's base for an enum: the first integer base type, by name, of its size and sign.
  std::string enum_base(std::uint32_t size, bool is_signed) const;

 private:
  struct BaseInfo {
    std::string name;
    std::uint32_t size;
    BaseKind kind;
    bool is_signed;
  };
  ProfileBuilder& builder_;
  std::vector<Desc> descs_;
  std::vector<TypeId> ids_;
  std::unordered_map<std::string, std::uint32_t> index_;
  std::unordered_set<std::string> base_names_;
  std::vector<BaseInfo> bases_;
};

}  // namespace vmi::isf_types
