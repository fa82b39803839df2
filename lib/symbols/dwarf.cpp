// DWARF importer on elfutils' libdw: walks every compile unit once and converts the types it
// defines into ISF shape through the same TypeTable as the BTF importer.
//
// A kernel's DWARF repeats each header's types in every unit that includes it (task_struct in
// thousands of units); a named struct is converted the first time it is met and its later copies
// are skipped without looking inside, so the work follows the number of distinct types.
#include "vmi/dwarf.hpp"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "symbols/isf_types.hpp"
#include "vmi/layer.hpp"

namespace vmi {
namespace {

using isf_types::Desc;
using isf_types::kUnset;
using isf_types::PendingMember;
using isf_types::TypeTable;

constexpr int kDwLangRust = 0x1c;

class File {
 public:
  explicit File(const std::filesystem::path& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}
  ~File() {
    if (fd_ >= 0) ::close(fd_);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

struct DwarfHandle {
  Dwarf* dwarf = nullptr;
  ~DwarfHandle() {
    if (dwarf != nullptr) dwarf_end(dwarf);
  }
};

std::optional<std::uint64_t> unsigned_attr(Dwarf_Die* die, unsigned name) {
  Dwarf_Attribute attr;
  Dwarf_Word value;
  if (dwarf_attr(die, name, &attr) == nullptr || dwarf_formudata(&attr, &value) != 0) return std::nullopt;
  return value;
}

// Constant forms are unsigned in DWARF (Go's reader, and so dwarf2json, zero-extend them);
// only sdata and implicit_const carry a sign.
std::optional<std::int64_t> constant_attr(Dwarf_Die* die, unsigned name) {
  Dwarf_Attribute attr;
  if (dwarf_attr(die, name, &attr) == nullptr) return std::nullopt;
  const unsigned form = dwarf_whatform(&attr);
  if (form == DW_FORM_sdata || form == DW_FORM_implicit_const) {
    Dwarf_Sword value;
    if (dwarf_formsdata(&attr, &value) != 0) return std::nullopt;
    return value;
  }
  Dwarf_Word value;
  if (dwarf_formudata(&attr, &value) != 0) return std::nullopt;
  return static_cast<std::int64_t>(value);
}

// Attributes through DW_AT_specification/abstract_origin too: a C global declared extern in a
// header and defined in the same unit gets a definition DIE holding only a location and a
// reference to the declaration, which has the name and type.
std::optional<Dwarf_Die> type_of(Dwarf_Die* die) {
  Dwarf_Attribute attr;
  Dwarf_Die target;
  if (dwarf_attr_integrate(die, DW_AT_type, &attr) == nullptr || dwarf_formref_die(&attr, &target) == nullptr) {
    return std::nullopt;
  }
  return target;
}

std::string_view name_of(Dwarf_Die* die) {
  Dwarf_Attribute attr;
  const char* name = dwarf_attr_integrate(die, DW_AT_name, &attr) != nullptr ? dwarf_formstring(&attr) : nullptr;
  return name != nullptr ? std::string_view(name) : std::string_view();
}

std::uint32_t size_of(Dwarf_Die* die) {
  const int size = dwarf_bytesize(die);
  return size < 0 ? 0 : static_cast<std::uint32_t>(size);
}

bool is_aggregate(int tag) {
  return tag == DW_TAG_structure_type || tag == DW_TAG_union_type || tag == DW_TAG_class_type;
}
bool is_declaration(Dwarf_Die* die) { return dwarf_hasattr(die, DW_AT_declaration) != 0; }

// The member's byte offset: a constant, or (old producers) DW_OP_plus_uconst.
std::uint64_t member_location(Dwarf_Die* member) {
  Dwarf_Attribute attr;
  if (dwarf_attr(member, DW_AT_data_member_location, &attr) == nullptr) return 0;  // union members
  Dwarf_Word value;
  if (dwarf_formudata(&attr, &value) == 0) return value;
  Dwarf_Op* ops;
  std::size_t count;
  if (dwarf_getlocation(&attr, &ops, &count) == 0 && count == 1 && ops[0].atom == DW_OP_plus_uconst)
    return ops[0].number;
  return 0;
}

class Converter {
 public:
  Converter(Dwarf* dwarf, ProfileBuilder& builder, std::string origin)
      : dwarf_(dwarf), builder_(builder), table_(builder), origin_(std::move(origin)) {}

  Expected<DwarfSummary> run() {
    if (table_.add_base("void", 0, BaseKind::void_, false)) summary_.base_types++;
    if (table_.add_base("pointer", 8, BaseKind::integer, false)) summary_.base_types++;
    Dwarf_Off offset = 0;
    Dwarf_Off next = 0;
    std::size_t header_size = 0;
    while (dwarf_next_unit(dwarf_, offset, &next, &header_size, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr) ==
           0) {
      Dwarf_Die unit;
      if (dwarf_offdie(dwarf_, offset + header_size, &unit) != nullptr) {
        summary_.compile_units++;
        if (constant_attr(&unit, DW_AT_language) != kDwLangRust) VMI_TRY_VOID(walk_children(&unit, 0));
      }
      offset = next;
    }
    VMI_TRY_VOID(emit_typedef_copies());
    VMI_TRY_VOID(emit_enums());
    std::sort(summary_.variables.begin(), summary_.variables.end(), [](const DwarfVariable& a, const DwarfVariable& b) {
      return std::tie(a.name, a.address) < std::tie(b.name, b.address);
    });
    return std::move(summary_);
  }

 private:
  Error fail(Dwarf_Die* die, const std::string& what) const {
    return Error{Errc::bad_format, origin_ + ": DWARF DIE at " + hex(dwarf_dieoffset(die)) + " " + what};
  }

  Expected<void> walk_children(Dwarf_Die* parent, std::size_t depth) {
    if (depth > kMaxDwarfDieDepth) return fail(parent, "is nested deeper than " + std::to_string(kMaxDwarfDieDepth));
    Dwarf_Die child;
    if (dwarf_child(parent, &child) != 0) return {};
    do {
      summary_.dies++;
      VMI_TRY_VOID(visit(&child, depth));
    } while (dwarf_siblingof(&child, &child) == 0);
    return {};
  }

  Expected<void> visit(Dwarf_Die* die, std::size_t depth) {
    const int tag = dwarf_tag(die);
    if (is_aggregate(tag)) {
      if (is_declaration(die)) return {};
      const std::string_view name = name_of(die);
      // A named type seen before: this copy (and the types nested in it) were converted already.
      if (!name.empty() && emitted_.contains(std::string(name))) return {};
      VMI_TRY_VOID(emit(VMI_TRY(aggregate_name(die, 0)), die));
      return walk_children(die, depth + 1);
    }
    switch (tag) {
      case DW_TAG_base_type:
        add_base_type(die);
        break;
      case DW_TAG_enumeration_type:
        add_enum(die);
        break;
      case DW_TAG_typedef:
        if (auto target = type_of(die); target && is_aggregate(dwarf_tag(&*target)) && !is_declaration(&*target) &&
                                        !name_of(die).empty() &&
                                        typedef_names_.insert(std::string(name_of(die))).second) {
          typedef_copies_.emplace_back(std::string(name_of(die)), *target);
        }
        break;
      case DW_TAG_variable:
        VMI_TRY_VOID(add_variable(die));
        break;
      default:
        break;
    }
    // Function bodies and lexical blocks hold static locals and local types too.
    if (tag == DW_TAG_subprogram || tag == DW_TAG_lexical_block || tag == DW_TAG_namespace) {
      return walk_children(die, depth + 1);
    }
    return {};
  }

  // Go's DWARF reader (hence dwarf2json): bool and float are signed, char is its own kind.
  void add_base_type(Dwarf_Die* die) {
    const std::string_view name = name_of(die);
    if (name.empty()) return;
    const int size = dwarf_bytesize(die);
    const auto encoding = unsigned_attr(die, DW_AT_encoding).value_or(0);
    BaseKind kind = BaseKind::integer;
    bool is_signed = true;
    switch (encoding) {
      case DW_ATE_boolean:
        kind = BaseKind::boolean;
        break;
      case DW_ATE_float:
        kind = BaseKind::floating;
        break;
      case DW_ATE_signed_char:
        kind = BaseKind::character;
        break;
      case DW_ATE_unsigned_char:
        kind = BaseKind::character;
        is_signed = false;
        break;
      case DW_ATE_unsigned:
        is_signed = false;
        break;
      default:
        break;
    }
    if (table_.add_base(std::string(name), size < 0 ? 0 : static_cast<std::uint32_t>(size), kind, is_signed)) {
      summary_.base_types++;
    }
  }

  Expected<void> add_variable(Dwarf_Die* die) {
    const std::string_view name = name_of(die);
    Dwarf_Attribute attr;
    if (name.empty() || dwarf_attr(die, DW_AT_location, &attr) == nullptr) return {};
    Dwarf_Op* ops;
    std::size_t count;
    if (dwarf_getlocation(&attr, &ops, &count) != 0 || count != 1 || ops[0].atom != DW_OP_addr) return {};
    auto type = type_of(die);
    const std::uint32_t desc = type ? VMI_TRY(reference(&*type, 0)) : void_desc();
    summary_.variables.push_back(DwarfVariable{std::string(name), ops[0].number, table_.id(desc)});
    return {};
  }

  std::uint32_t void_desc() { return table_.intern(Desc{TypeKind::base, "void"}); }

  // The ISF reference for a type DIE, memoised by DIE offset.
  Expected<std::uint32_t> reference(Dwarf_Die* die, int depth) {
    const Dwarf_Off key = dwarf_dieoffset(die);
    if (auto it = memo_.find(key); it != memo_.end()) return it->second;
    if (depth > kMaxDwarfTypeDepth)
      return fail(die, "starts a type chain deeper than " + std::to_string(kMaxDwarfTypeDepth));
    const int tag = dwarf_tag(die);
    const auto aggregate_kind = [](int t) { return t == DW_TAG_union_type ? TypeKind::union_ : TypeKind::struct_; };
    auto subtype = [&](Dwarf_Die* of) -> Expected<std::uint32_t> {
      auto target = type_of(of);
      if (!target) return void_desc();
      return reference(&*target, depth + 1);
    };
    std::uint32_t result = kUnset;
    switch (tag) {
      case DW_TAG_base_type:
        result = table_.intern(Desc{TypeKind::base, std::string(name_of(die))});
        break;
      case DW_TAG_unspecified_type:
        result = void_desc();
        break;
      case DW_TAG_pointer_type:
      case DW_TAG_reference_type:
        result = table_.intern(Desc{TypeKind::pointer, {}, VMI_TRY(subtype(die))});
        break;
      case DW_TAG_const_type:
      case DW_TAG_volatile_type:
      case DW_TAG_restrict_type:
      case DW_TAG_atomic_type:
        result = VMI_TRY(subtype(die));
        break;
      case DW_TAG_typedef: {
        auto target = type_of(die);
        if (target && is_aggregate(dwarf_tag(&*target))) {
          result = table_.intern(Desc{aggregate_kind(dwarf_tag(&*target)), std::string(name_of(die))});
        } else {
          result = VMI_TRY(subtype(die));
        }
        break;
      }
      case DW_TAG_structure_type:
      case DW_TAG_union_type:
      case DW_TAG_class_type:
        result = table_.intern(Desc{aggregate_kind(tag), VMI_TRY(aggregate_name(die, depth + 1))});
        break;
      case DW_TAG_enumeration_type:
        result = table_.intern(Desc{TypeKind::enum_, enum_name(die)});
        break;
      case DW_TAG_subroutine_type:
        result = table_.intern(Desc{TypeKind::function, {}});
        break;
      case DW_TAG_array_type:
        result = VMI_TRY(array(die, depth));
        break;
      default:  // not a C data type (Go's reader gives no type; we say void rather than drop it)
        result = void_desc();
        break;
    }
    memo_.emplace(key, result);
    return result;
  }

  // One array level per subrange, outermost first: int a[2][3] is [2] of [3] of int.
  Expected<std::uint32_t> array(Dwarf_Die* die, int depth) {
    std::vector<std::uint32_t> counts;
    Dwarf_Die child;
    if (dwarf_child(die, &child) == 0) {
      do {
        if (dwarf_tag(&child) != DW_TAG_subrange_type) continue;
        std::uint32_t count = 0;  // no bound: a flexible array, which dwarf2json writes as 0
        if (auto n = constant_attr(&child, DW_AT_count)) {
          count = static_cast<std::uint32_t>(std::max<std::int64_t>(*n, 0));
        } else if (auto upper = constant_attr(&child, DW_AT_upper_bound)) {
          // -1 or 0xffffffff: a zero-length array (`int x[0]`)
          count = *upper < 0 || *upper >= std::int64_t{0xffffffff} ? 0 : static_cast<std::uint32_t>(*upper + 1);
        }
        counts.push_back(count);
      } while (dwarf_siblingof(&child, &child) == 0 && counts.size() < 64);
    }
    if (counts.empty()) counts.push_back(0);
    auto element = type_of(die);
    std::uint32_t result = element ? VMI_TRY(reference(&*element, depth + 1)) : void_desc();
    for (std::size_t i = counts.size(); i-- > 0;) result = table_.intern(Desc{TypeKind::array, {}, result, counts[i]});
    return result;
  }

  Expected<std::vector<PendingMember>> members_of(Dwarf_Die* die, int depth) {
    std::vector<PendingMember> members;
    std::unordered_set<std::string> seen;
    std::uint32_t anonymous = 0;
    Dwarf_Die child;
    if (dwarf_child(die, &child) != 0) return members;
    do {
      if (dwarf_tag(&child) != DW_TAG_member) continue;
      auto type = type_of(&child);
      if (!type) continue;  // dwarf2json skips members whose type it cannot name
      PendingMember m;
      m.desc = VMI_TRY(reference(&*type, depth + 1));
      std::uint64_t offset = member_location(&child);
      if (auto bit_size = unsigned_attr(&child, DW_AT_bit_size); bit_size && *bit_size != 0) {
        std::uint64_t bits;
        if (auto data_bit_offset = unsigned_attr(&child, DW_AT_data_bit_offset)) {
          bits = *data_bit_offset;
        } else {
          // DWARF 2-4: DW_AT_bit_offset counts from the storage unit's most significant bit.
          const int storage = dwarf_bytesize(&child) > 0 ? dwarf_bytesize(&child) : dwarf_bytesize(&*type);
          const std::uint64_t msb_offset = unsigned_attr(&child, DW_AT_bit_offset).value_or(0);
          bits = offset * 8 + std::uint64_t(std::max(storage, 0)) * 8 - msb_offset - *bit_size;
        }
        Desc field{TypeKind::bitfield, {}, m.desc};
        field.bit_position = static_cast<std::uint8_t>(bits % 8);
        field.bit_length = static_cast<std::uint8_t>(std::min<std::uint64_t>(*bit_size, 255));
        m.desc = table_.intern(std::move(field));
        offset = bits / 8;
      }
      m.offset = static_cast<std::uint32_t>(offset);
      m.name = name_of(&child);
      if (m.name.empty()) {
        m.name = TypeTable::unnamed_field(anonymous++);
        m.anonymous = true;
      }
      if (seen.insert(m.name).second) members.push_back(std::move(m));
    } while (dwarf_siblingof(&child, &child) == 0);
    return members;
  }

  Expected<std::string> aggregate_name(Dwarf_Die* die, int depth) {
    if (const std::string_view name = name_of(die); !name.empty()) return std::string(name);
    const Dwarf_Off key = dwarf_dieoffset(die);
    if (auto it = anonymous_names_.find(key); it != anonymous_names_.end()) return it->second;
    if (!naming_.insert(key).second) return fail(die, "contains itself");
    const auto members = VMI_TRY(members_of(die, depth));
    naming_.erase(key);
    std::string name = isf_types::unnamed(table_.signature(dwarf_tag(die) == DW_TAG_union_type, size_of(die), members));
    anonymous_names_.emplace(key, name);
    return name;
  }

  Expected<void> emit(const std::string& name, Dwarf_Die* die) {
    if (!emitted_.insert(name).second) return {};
    const auto members = VMI_TRY(members_of(die, 0));
    members_added_ += members.size();
    if (members_added_ > kMaxDwarfMembers) {
      return fail(die, "as '" + name + "' takes the profile past " + std::to_string(kMaxDwarfMembers) + " members");
    }
    builder_.begin_aggregate(name, dwarf_tag(die) == DW_TAG_union_type ? TypeKind::union_ : TypeKind::struct_,
                             size_of(die));
    for (const PendingMember& m : members) builder_.add_member(m.name, m.offset, table_.id(m.desc), m.anonymous);
    summary_.aggregates++;
    return {};
  }

  // Real definitions come first, so a typedef's copy never displaces a struct of the same name.
  Expected<void> emit_typedef_copies() {
    for (auto& [name, target] : typedef_copies_) VMI_TRY_VOID(emit(name, &target));
    return {};
  }

  std::string enum_signature(Dwarf_Die* die) {
    std::string text = "enum " + std::to_string(size_of(die)) + " {";
    for_each_enumerator(die, [&](std::string_view name, std::int64_t value) {
      text += std::string(name) + "=" + std::to_string(value) + ";";
    });
    return text + "}";
  }

  template <class F>
  void for_each_enumerator(Dwarf_Die* die, F&& f) {
    Dwarf_Die child;
    if (dwarf_child(die, &child) != 0) return;
    do {
      if (dwarf_tag(&child) == DW_TAG_enumerator)
        f(name_of(&child), constant_attr(&child, DW_AT_const_value).value_or(0));
    } while (dwarf_siblingof(&child, &child) == 0);
  }

  std::string enum_name(Dwarf_Die* die) {
    if (const std::string_view name = name_of(die); !name.empty()) return std::string(name);
    const Dwarf_Off key = dwarf_dieoffset(die);
    if (auto it = anonymous_names_.find(key); it != anonymous_names_.end()) return it->second;
    std::string name = isf_types::unnamed(enum_signature(die));
    anonymous_names_.emplace(key, name);
    return name;
  }

  // The first definition of each enum name (a declaration only until a definition appears).
  void add_enum(Dwarf_Die* die) {
    auto [it, inserted] = enum_index_.try_emplace(enum_name(die), enum_dies_.size());
    if (inserted) {
      enum_dies_.push_back(*die);
    } else if (is_declaration(&enum_dies_[it->second]) && !is_declaration(die)) {
      enum_dies_[it->second] = *die;
    }
  }

  // After every base type is known: an enum's base is chosen among them.
  Expected<void> emit_enums() {
    for (Dwarf_Die& die : enum_dies_) {
      const std::uint32_t size = is_declaration(&die) ? 0 : size_of(&die);
      bool is_signed = false;
      for_each_enumerator(&die, [&](std::string_view, std::int64_t value) { is_signed |= value < 0; });
      builder_.begin_enum(enum_name(&die), size, table_.enum_base(size, is_signed));
      for_each_enumerator(&die,
                          [&](std::string_view name, std::int64_t value) { builder_.add_enumerator(name, value); });
      summary_.enums++;
    }
    return {};
  }

  Dwarf* dwarf_;
  ProfileBuilder& builder_;
  TypeTable table_;
  std::string origin_;
  DwarfSummary summary_;
  std::unordered_map<Dwarf_Off, std::uint32_t> memo_;  // type DIE -> table_ index
  std::unordered_map<Dwarf_Off, std::string> anonymous_names_;
  std::unordered_set<Dwarf_Off> naming_;  // anonymous aggregates being named (cycle guard)
  std::unordered_set<std::string> emitted_;
  std::vector<std::pair<std::string, Dwarf_Die>> typedef_copies_;
  std::unordered_set<std::string> typedef_names_;
  std::unordered_map<std::string, std::size_t> enum_index_;  // name -> enum_dies_ index
  std::vector<Dwarf_Die> enum_dies_;
  std::size_t members_added_ = 0;
};

}  // namespace

Expected<DwarfSummary> add_dwarf_types(const std::filesystem::path& elf, ProfileBuilder& builder) {
  File file(elf);
  if (file.fd() < 0) return make_error(Errc::io, elf.string() + ": cannot open");
  DwarfHandle handle{dwarf_begin(file.fd(), DWARF_C_READ)};
  if (handle.dwarf == nullptr) {
    return make_error(Errc::not_found, elf.string() + ": no DWARF debug information (" + dwarf_errmsg(-1) + ")");
  }
  return Converter(handle.dwarf, builder, elf.string()).run();
}

}  // namespace vmi
