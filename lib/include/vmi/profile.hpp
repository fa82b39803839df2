// Profiles: the structure layouts and symbol addresses of one kernel build, in the shape of
// Volatility 3's ISF (base_types, user_types, enums, symbols, metadata).
//
// Storage is flat and position-independent (arrays of PODs plus one string pool) so a profile
// serialises to the binary cache by copying arrays and loads back with no per-entry work.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vmi/expected.hpp"

namespace vmi {

enum class TypeKind : std::uint8_t { base, pointer, array, struct_, union_, class_, enum_, bitfield, function, void_ };
std::string_view to_string(TypeKind kind);

enum class BaseKind : std::uint8_t { integer, character, boolean, floating, void_ };

using TypeId = std::uint32_t;  // index of a TypeDesc in Profile::types
inline constexpr TypeId kNoType = 0xffffffffu;

struct StrRef {  // a name in Profile::strings
  std::uint32_t offset = 0;
  std::uint32_t size = 0;
};

// A type reference as ISF writes it: {"kind": "pointer", "subtype": {...}} and friends.
struct TypeDesc {
  TypeKind kind = TypeKind::void_;
  std::uint8_t bit_position = 0;  // bitfield only
  std::uint8_t bit_length = 0;    // bitfield only
  std::uint8_t reserved = 0;
  std::uint32_t count = 0;   // array only
  StrRef name;               // base, struct, union, class, enum
  TypeId subtype = kNoType;  // pointer/array target, bitfield storage type
};

struct Member {
  StrRef name;
  std::uint32_t offset = 0;  // bytes from the start of the aggregate
  TypeId type = kNoType;
  std::uint8_t anonymous = 0;  // an unnamed struct/union whose members belong to the parent
  std::uint8_t reserved[3] = {};
};

struct Aggregate {  // struct, union or class
  StrRef name;
  std::uint32_t size = 0;
  std::uint32_t first_member = 0;  // members are sorted by name within an aggregate
  std::uint32_t member_count = 0;
  TypeKind kind = TypeKind::struct_;
  std::uint8_t reserved[3] = {};
};

struct BaseType {
  StrRef name;
  std::uint32_t size = 0;
  BaseKind kind = BaseKind::integer;
  std::uint8_t is_signed = 0;
  std::uint8_t reserved[2] = {};
};

struct Enumerator {
  StrRef name;
  std::int64_t value = 0;
};

struct EnumType {
  StrRef name;
  StrRef base;
  std::uint32_t size = 0;
  std::uint32_t first_enumerator = 0;
  std::uint32_t enumerator_count = 0;
  std::uint32_t reserved = 0;
};

struct Symbol {
  StrRef name;
  std::uint64_t address = 0;  // as linked, before any KASLR shift
  TypeId type = kNoType;
  StrRef constant_data;  // decoded bytes, e.g. linux_banner's text; empty when absent
};

// Where a field lives once anonymous members are flattened.
struct FieldInfo {
  std::uint32_t offset = 0;
  TypeId type = kNoType;
};

// What kernel build a profile describes, per OS: a Linux kernel by its banner and GNU build id,
// a Windows kernel by its PDB's name, GUID and age (the names Volatility 3's Windows ISF files
// and Microsoft's symbol server go by). Catalogs and caches key profiles by it.
struct ProfileIdentity {
  std::string os;        // "linux", "windows"; empty when the profile does not say
  std::string banner;    // Linux: "Linux version ..." without its newline
  std::string build_id;  // Linux: the GNU build id in lower-case hex; empty when unknown
  std::string pdb_name;  // Windows: "ntkrnlmp.pdb"
  std::string pdb_guid;  // Windows: 32 upper-case hex digits
  std::uint32_t pdb_age = 0;

  // A stable name: "linux/<build id>", else "linux/banner-<FNV-1a of the banner>";
  // "windows/<pdb name>/<GUID><age in hex>" (the symbol server's path); "unknown/..." otherwise.
  std::string key() const;
  // Whether this profile's identity fits a kernel identified as `found`: the same OS; for Linux
  // the same banner and, when both build ids are known, the same build id; for Windows the same
  // PDB name (case-insensitive), GUID (case-insensitive) and age.
  bool matches(const ProfileIdentity& found) const;
};

class Profile {
 public:
  // Lookups: binary searches over sorted arrays; all return nothing rather than fail.
  const Aggregate* find_aggregate(std::string_view name) const;
  const BaseType* find_base_type(std::string_view name) const;
  const EnumType* find_enum(std::string_view name) const;
  const Symbol* find_symbol(std::string_view name) const;
  std::optional<std::uint64_t> symbol_address(std::string_view name) const;

  // Finds a field by name, descending into anonymous struct/union members.
  std::optional<FieldInfo> find_field(const Aggregate& aggregate, std::string_view field) const;
  // Same, by type name; the error names the missing type or field.
  Expected<FieldInfo> field(std::string_view type_name, std::string_view field) const;
  // Size in bytes of a type reference (pointer width for pointers); nothing for functions/void.
  std::optional<std::uint64_t> size_of(TypeId type) const;
  // The aggregate a struct/union/class reference names.
  const Aggregate* aggregate_of(TypeId type) const;

  std::string_view str(StrRef ref) const { return std::string_view(strings).substr(ref.offset, ref.size); }
  const TypeDesc& type(TypeId id) const { return types[id]; }
  std::span<const Member> members(const Aggregate& aggregate) const {
    return std::span<const Member>(members_).subspan(aggregate.first_member, aggregate.member_count);
  }
  std::span<const Enumerator> enumerators(const EnumType& e) const {
    return std::span<const Enumerator>(enumerators_).subspan(e.first_enumerator, e.enumerator_count);
  }

  // The "Linux version ..." banner this profile was built for (from linux_banner's constant
  // data or metadata); empty when unknown.
  std::string_view banner() const { return str(banner_); }
  std::string_view producer() const { return str(producer_); }
  std::string_view format_version() const { return str(format_version_); }
  std::string_view os() const { return str(os_); }  // "linux" or "windows"
  std::string_view build_id() const { return str(build_id_); }
  // The kernel build this profile is for (banner and build id, or the PDB).
  ProfileIdentity identity() const;
  std::uint32_t pointer_size() const { return pointer_size_; }

  // Raw arrays, for serialisation and whole-profile iteration. Sorted by name.
  std::string strings;
  std::vector<TypeDesc> types;
  std::vector<Member> members_;
  std::vector<Aggregate> aggregates;
  std::vector<BaseType> base_types;
  std::vector<EnumType> enums;
  std::vector<Enumerator> enumerators_;
  std::vector<Symbol> symbols;
  StrRef banner_, producer_, format_version_, os_;
  StrRef build_id_, pdb_name_, pdb_guid_;
  std::uint32_t pdb_age_ = 0;
  std::uint32_t pointer_size_ = 8;
};

// Builds a Profile from any source (ISF JSON, BTF, DWARF, the binary cache's inverse).
// Names are interned; arrays are sorted by build().
class ProfileBuilder {
 public:
  ProfileBuilder();
  ~ProfileBuilder();
  ProfileBuilder(ProfileBuilder&& other) noexcept;
  ProfileBuilder& operator=(ProfileBuilder&& other) noexcept;
  ProfileBuilder(const ProfileBuilder&) = delete;
  ProfileBuilder& operator=(const ProfileBuilder&) = delete;

  TypeId add_type(TypeKind kind, std::string_view name = {}, TypeId subtype = kNoType, std::uint32_t count = 0,
                  std::uint8_t bit_position = 0, std::uint8_t bit_length = 0);
  void add_base_type(std::string_view name, std::uint32_t size, BaseKind kind, bool is_signed);
  // Members added after begin_aggregate() belong to it until the next begin_*.
  void begin_aggregate(std::string_view name, TypeKind kind, std::uint32_t size);
  void add_member(std::string_view name, std::uint32_t offset, TypeId type, bool anonymous);
  void begin_enum(std::string_view name, std::uint32_t size, std::string_view base);
  void add_enumerator(std::string_view name, std::int64_t value);
  void add_symbol(std::string_view name, std::uint64_t address, TypeId type = kNoType,
                  std::string_view constant_data = {});
  void set_banner(std::string_view banner);
  void set_producer(std::string_view producer);
  void set_format_version(std::string_view version);
  void set_os(std::string_view os);
  // A Linux kernel's GNU build id (hex), when the source records it (vmlinux notes, memory).
  void set_build_id(std::string_view build_id);
  // A Windows kernel's PDB: name ("ntkrnlmp.pdb"), GUID (hex) and age.
  void set_pdb(std::string_view name, std::string_view guid, std::uint32_t age);

  // Sorts and validates (type ids in range, no duplicate names); the error names the culprit.
  Expected<Profile> build() &&;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vmi
