// BTF reader: validates a whole BTF blob first, then converts its types into profile types.
//
// Our own parser, not libbpf's btf__new(): the same code will read BTF found in hostile memory
// snapshots, and we need (a) errors that name the origin and byte offset, as values, where libbpf
// returns a bare errno and logs through a process-global print callback; (b) every type reference
// checked before use (Debian 12's libbpf 1.1 checks section bounds and type sizes, but not the
// ids types point at); (c) no C allocator state to audit. The format is small: a 24-byte header,
// 12-byte type records with a kind-dependent tail, and a NUL-separated string section.
#include "vmi/btf.hpp"

#include "symbols/isf_types.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

namespace vmi {
namespace {

// include/uapi/linux/btf.h
constexpr std::uint16_t kBtfMagic = 0xeb9f;
constexpr std::uint16_t kBtfMagicSwapped = 0x9feb;
constexpr std::uint8_t kBtfVersion = 1;
constexpr std::size_t kHeaderSize = 24;           // struct btf_header
constexpr std::size_t kTypeSize = 12;             // struct btf_type
constexpr std::uint32_t kInfoMask = 0x9f00ffffu;  // kflag, 5 kind bits, 16 vlen bits

// clang-format off
enum Kind : std::uint8_t {
  kUnknown, kInt, kPtr, kArray, kStruct, kUnion, kEnum, kFwd, kTypedef, kVolatile, kConst, kRestrict,
  kFunc, kFuncProto, kVar, kDatasec, kFloat, kDeclTag, kTypeTag, kEnum64, kKindEnd
};
// Per kind: what follows the 12-byte btf_type record, and where type ids and names sit in it.
struct KindLayout {
  const char* name;
  std::uint8_t fixed;       // bytes right after the record
  std::uint8_t entry;       // bytes per vlen entry after those
  bool refers;              // size_or_type is a type id
  std::int8_t entry_name;   // offset of a name in each entry, or -1
  std::int8_t entry_type;   // offset of a type id in each entry, or -1
};
constexpr KindLayout kKinds[kKindEnd] = {
    {"UNKN",       0,  0, false, -1, -1},
    {"INT",        4,  0, false, -1, -1},
    {"PTR",        0,  0, true,  -1, -1},
    {"ARRAY",     12,  0, false, -1, -1},  // element and index type ids: checked apart
    {"STRUCT",     0, 12, false,  0,  4},
    {"UNION",      0, 12, false,  0,  4},
    {"ENUM",       0,  8, false,  0, -1},
    {"FWD",        0,  0, false, -1, -1},
    {"TYPEDEF",    0,  0, true,  -1, -1},
    {"VOLATILE",   0,  0, true,  -1, -1},
    {"CONST",      0,  0, true,  -1, -1},
    {"RESTRICT",   0,  0, true,  -1, -1},
    {"FUNC",       0,  0, true,  -1, -1},
    {"FUNC_PROTO", 0,  8, true,   0,  4},  // size_or_type is the return type
    {"VAR",        4,  0, true,  -1, -1},
    {"DATASEC",    0, 12, false, -1,  0},
    {"FLOAT",      0,  0, false, -1, -1},
    {"DECL_TAG",   4,  0, true,  -1, -1},
    {"TYPE_TAG",   0,  0, true,  -1, -1},
    {"ENUM64",     0, 12, false,  0, -1},
};
// clang-format on
constexpr std::uint32_t kIntSigned = 1, kIntChar = 2, kIntBool = 4;  // BTF_INT_ENCODING bits

using isf_types::kUnset;

std::string hex(std::uint64_t value) {
  char buffer[24];
  std::snprintf(buffer, sizeof buffer, "0x%llx", static_cast<unsigned long long>(value));
  return buffer;
}

struct RawType {
  std::uint32_t name_off = 0;
  std::uint32_t size_or_type = 0;
  std::uint32_t at = 0;    // byte offset of the btf_type record in the blob
  std::uint32_t tail = 0;  // byte offset of the kind-specific data that follows it
  std::uint16_t vlen = 0;
  std::uint8_t kind = kUnknown;
  bool kflag = false;
};

// A fully validated blob: after parse() every name offset and type id in it is in range.
struct Btf {
  std::span<const std::byte> bytes;
  std::string origin;
  std::size_t str_begin = 0;
  std::size_t str_size = 0;
  std::vector<RawType> types;  // index = type id; [0] is the implicit void

  std::uint32_t u32(std::size_t off) const {  // callers have checked off + 4 <= bytes.size()
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint32_t>(bytes[off + i]);
    return v;
  }
  // The name at `off` (< str_size); never scans past kMaxBtfNameLength + 1 bytes, so a hostile
  // blob of one long string cannot make every lookup quadratic. check_name() rejects longer ones.
  std::string_view name(std::uint32_t off) const {
    const char* begin = reinterpret_cast<const char*>(bytes.data() + str_begin + off);
    const std::size_t limit = std::min<std::size_t>(str_size - off, kMaxBtfNameLength + 1);
    const void* nul = std::memchr(begin, '\0', limit);
    return {begin, nul != nullptr ? static_cast<std::size_t>(static_cast<const char*>(nul) - begin) : limit};
  }
  Error fail(Errc code, std::size_t at, const std::string& what) const {
    return make_error(code, origin + ": BTF " + what + " at byte " + hex(at));
  }
  Error fail_type(Errc code, std::uint32_t id, const std::string& what) const {
    return fail(code, types[id].at, "type #" + std::to_string(id) + " (" + kKinds[types[id].kind].name + ") " + what);
  }
};

Expected<void> check_name(const Btf& btf, std::uint32_t name_off, std::size_t at) {
  if (name_off >= btf.str_size) {
    return btf.fail(Errc::truncated, at,
                    "name offset " + hex(name_off) + " past end of string section (" + hex(btf.str_size) + " bytes)");
  }
  if (btf.name(name_off).size() > kMaxBtfNameLength) {
    return btf.fail(
        Errc::limit_exceeded, at,
        "name at string offset " + hex(name_off) + " longer than " + std::to_string(kMaxBtfNameLength) + " bytes");
  }
  return {};
}

Expected<void> check_ref(const Btf& btf, std::uint32_t id, std::uint32_t target, std::size_t at) {
  if (target < btf.types.size()) return {};
  return btf.fail(Errc::bad_format, at,
                  "type #" + std::to_string(id) + " refers to type #" + std::to_string(target) + " of " +
                      std::to_string(btf.types.size() - 1));
}

// Checks the names and type ids of one type and of its entries, and what its kind requires.
Expected<void> check_type(const Btf& btf, std::uint32_t id) {
  const RawType& t = btf.types[id];
  const KindLayout& layout = kKinds[t.kind];
  VMI_TRY_VOID(check_name(btf, t.name_off, t.at));
  if (layout.refers) VMI_TRY_VOID(check_ref(btf, id, t.size_or_type, t.at));
  for (std::size_t i = 0, at = t.tail + layout.fixed; i < t.vlen; ++i, at += layout.entry) {
    if (layout.entry_name >= 0) VMI_TRY_VOID(check_name(btf, btf.u32(at + layout.entry_name), at));
    if (layout.entry_type >= 0) VMI_TRY_VOID(check_ref(btf, id, btf.u32(at + layout.entry_type), at));
  }
  const bool named = !btf.name(t.name_off).empty();
  const std::uint32_t size = t.size_or_type;
  if (t.kind == kInt) {
    const std::uint32_t word = btf.u32(t.tail);
    const std::uint32_t bits = word & 0xff;
    const std::uint32_t offset = (word >> 16) & 0xff;
    const bool size_ok = size == 1 || size == 2 || size == 4 || size == 8 || size == 16;
    if (!named || !size_ok || bits == 0 || bits > 128 || offset + bits > size * 8) {
      return btf.fail_type(Errc::bad_format, id,
                           "is not a valid integer (size " + std::to_string(size) + ", " + std::to_string(bits) +
                               " bits at bit " + std::to_string(offset) + ", name '" +
                               std::string(btf.name(t.name_off)) + "')");
    }
  } else if (t.kind == kFloat && (!named || size == 0 || size > 16)) {
    return btf.fail_type(Errc::bad_format, id, "is not a valid float (size " + std::to_string(size) + ")");
  } else if (t.kind == kFwd && !named) {
    return btf.fail_type(Errc::bad_format, id, "declares nothing: it has no name");
  } else if (t.kind == kArray) {
    VMI_TRY_VOID(check_ref(btf, id, btf.u32(t.tail), t.tail));
    VMI_TRY_VOID(check_ref(btf, id, btf.u32(t.tail + 4), t.tail + 4));
  }
  return {};
}

Expected<Btf> parse(std::span<const std::byte> bytes, std::string_view origin) {
  Btf btf;
  btf.bytes = bytes;
  btf.origin = std::string(origin);
  if (bytes.size() < kHeaderSize) {
    return btf.fail(Errc::truncated, 0,
                    "header (24 bytes) runs past end of blob (" + std::to_string(bytes.size()) + " bytes)");
  }
  if (bytes.size() > kMaxBtfBytes) {
    return btf.fail(
        Errc::limit_exceeded, 0,
        "blob of " + std::to_string(bytes.size()) + " bytes exceeds cap of " + std::to_string(kMaxBtfBytes));
  }
  const auto magic = static_cast<std::uint16_t>(btf.u32(0) & 0xffff);
  if (magic == kBtfMagicSwapped) return btf.fail(Errc::unsupported, 0, "blob is big-endian");
  if (magic != kBtfMagic) return btf.fail(Errc::bad_format, 0, "magic " + hex(magic) + " is not 0xeb9f");
  const auto version = std::to_integer<std::uint8_t>(bytes[2]);
  if (version != kBtfVersion) return btf.fail(Errc::unsupported, 2, "version " + std::to_string(version));
  // Offsets in the header count from its end; all are 32-bit, so 64-bit sums cannot overflow.
  const std::uint64_t hdr_len = btf.u32(4);
  const std::uint64_t type_begin = hdr_len + btf.u32(8);
  const std::uint64_t type_end = type_begin + btf.u32(12);
  const std::uint64_t str_begin = hdr_len + btf.u32(16);
  const std::uint64_t str_end = str_begin + btf.u32(20);
  if (hdr_len < kHeaderSize || hdr_len > bytes.size()) {
    return btf.fail(
        Errc::bad_format, 4,
        "header length " + std::to_string(hdr_len) + " outside [24, blob size " + std::to_string(bytes.size()) + "]");
  }
  if (type_end > bytes.size()) {
    return btf.fail(Errc::truncated, 8,
                    "type section [" + hex(type_begin) + ", " + hex(type_end) + ") runs past end of blob (" +
                        hex(bytes.size()) + ")");
  }
  if (str_end > bytes.size()) {
    return btf.fail(Errc::truncated, 16,
                    "string section [" + hex(str_begin) + ", " + hex(str_end) + ") runs past end of blob (" +
                        hex(bytes.size()) + ")");
  }
  if (str_end == str_begin || std::to_integer<char>(bytes[str_begin]) != '\0' ||
      std::to_integer<char>(bytes[str_end - 1]) != '\0') {
    return btf.fail(Errc::bad_format, str_begin, "string section must start and end with NUL");
  }
  btf.str_begin = str_begin;
  btf.str_size = str_end - str_begin;

  btf.types.emplace_back();  // #0: void
  for (std::uint64_t at = type_begin; at < type_end;) {
    if (btf.types.size() > kMaxBtfTypes) {
      return btf.fail(Errc::limit_exceeded, at, "type count exceeds cap of " + std::to_string(kMaxBtfTypes));
    }
    const std::string what = "type #" + std::to_string(btf.types.size());
    if (type_end - at < kTypeSize) return btf.fail(Errc::truncated, at, what + " runs past end of type section");
    RawType t;
    t.at = static_cast<std::uint32_t>(at);
    t.name_off = btf.u32(at);
    const std::uint32_t info = btf.u32(at + 4);
    t.size_or_type = btf.u32(at + 8);
    t.vlen = static_cast<std::uint16_t>(info & 0xffff);
    t.kind = static_cast<std::uint8_t>((info >> 24) & 0x1f);
    t.kflag = (info >> 31) != 0;
    if ((info & ~kInfoMask) != 0 || t.kind == kUnknown || t.kind >= kKindEnd) {
      return btf.fail(Errc::bad_format, at, what + " has invalid info word " + hex(info));
    }
    t.tail = static_cast<std::uint32_t>(at + kTypeSize);
    const std::uint64_t tail = kKinds[t.kind].fixed + std::uint64_t{kKinds[t.kind].entry} * t.vlen;
    if (type_end - t.tail < tail) {
      return btf.fail(Errc::truncated, at,
                      what + " (" + kKinds[t.kind].name + ", vlen " + std::to_string(t.vlen) +
                          ") runs past end of type section (" + hex(type_end) + ")");
    }
    btf.types.push_back(t);
    at = t.tail + tail;
  }
  for (std::uint32_t id = 1; id < btf.types.size(); ++id) VMI_TRY_VOID(check_type(btf, id));
  return btf;
}

using isf_types::Desc;
using isf_types::fnv1a;
using isf_types::PendingMember;
using isf_types::TypeTable;
using isf_types::unnamed;

class Converter {
 public:
  Converter(const Btf& btf, ProfileBuilder& builder, const BtfOptions& options)
      : btf_(btf),
        builder_(builder),
        table_(builder),
        options_(options),
        memo_(btf.types.size(), kUnset),
        busy_(btf.types.size(), 0),
        naming_(btf.types.size(), 0),
        names_(btf.types.size()) {}

  Expected<BtfSummary> run() {
    summary_.btf_types = static_cast<std::uint32_t>(btf_.types.size() - 1);
    add_base_types();
    VMI_TRY_VOID(add_enums());
    VMI_TRY_VOID(add_aggregates());
    VMI_TRY_VOID(add_variables());
    std::sort(summary_.duplicates.begin(), summary_.duplicates.end());
    summary_.duplicates.erase(std::unique(summary_.duplicates.begin(), summary_.duplicates.end()),
                              summary_.duplicates.end());
    return std::move(summary_);
  }

 private:
  const RawType& raw(std::uint32_t id) const { return btf_.types[id]; }
  std::string_view name_of(std::uint32_t id) const { return btf_.name(raw(id).name_off); }

  void add_base(std::string name, std::uint32_t size, BaseKind kind, bool is_signed) {
    if (table_.add_base(std::move(name), size, kind, is_signed)) summary_.base_types++;
  }

  // dwarf2json's conventions: bool and float count as signed; char is a kind of its own.
  void add_base_types() {
    add_base("void", 0, BaseKind::void_, false);
    add_base("pointer", options_.pointer_size, BaseKind::integer, false);
    for (std::uint32_t id = 1; id < btf_.types.size(); ++id) {
      const RawType& t = raw(id);
      const std::string name(name_of(id));
      if (t.kind == kFloat) add_base(name, t.size_or_type, BaseKind::floating, true);
      if (t.kind != kInt) continue;
      const std::uint32_t encoding = btf_.u32(t.tail) >> 24;
      const bool is_bool = (encoding & kIntBool) != 0 || name == "_Bool";
      const bool is_char =
          (encoding & kIntChar) != 0 || name == "char" || name == "signed char" || name == "unsigned char";
      const BaseKind kind = is_bool ? BaseKind::boolean : is_char ? BaseKind::character : BaseKind::integer;
      add_base(name, t.size_or_type, kind, is_bool || (encoding & kIntSigned) != 0);
    }
  }

  std::uint32_t intern(Desc d) { return table_.intern(std::move(d)); }

  // dwarf2json names a struct reached through a typedef after the typedef (spinlock_t), as
  // Go's DWARF reader never names struct types themselves; other typedefs vanish in ISF.
  bool names_aggregate(std::uint32_t id) const {
    const std::uint8_t target = raw(raw(id).size_or_type).kind;
    return raw(id).size_or_type != 0 && !name_of(id).empty() &&
           (target == kStruct || target == kUnion || target == kFwd);
  }
  bool transparent(std::uint32_t id) const {
    const std::uint8_t kind = raw(id).kind;
    return kind == kVolatile || kind == kConst || kind == kRestrict || kind == kTypeTag ||
           (kind == kTypedef && !names_aggregate(id));
  }

  // Follows modifiers and typedefs to the type that decides a member's shape.
  std::uint32_t strip(std::uint32_t id) const {
    for (int depth = 0; depth < kMaxBtfTypeDepth && id != 0 && transparent(id); ++depth) id = raw(id).size_or_type;
    return id;
  }

  // The ISF reference for BTF type `id`, as an index into table_.
  Expected<std::uint32_t> desc(std::uint32_t id, int depth) {
    if (memo_[id] != kUnset) return memo_[id];
    if (depth > kMaxBtfTypeDepth) {
      return btf_.fail_type(Errc::limit_exceeded, id, "is nested deeper than " + std::to_string(kMaxBtfTypeDepth));
    }
    if (busy_[id]) return btf_.fail_type(Errc::bad_format, id, "refers to itself");
    busy_[id] = 1;
    const RawType& t = raw(id);
    const auto aggregate_kind = [](bool is_union) { return is_union ? TypeKind::union_ : TypeKind::struct_; };
    Desc d;
    if (id == 0) {
      d = Desc{TypeKind::base, "void"};
    } else if (transparent(id)) {
      memo_[id] = VMI_TRY(desc(t.size_or_type, depth + 1));
      busy_[id] = 0;
      return memo_[id];
    } else if (t.kind == kInt || t.kind == kFloat) {
      d = Desc{TypeKind::base, std::string(name_of(id))};
    } else if (t.kind == kPtr) {
      d = Desc{TypeKind::pointer, {}, VMI_TRY(desc(t.size_or_type, depth + 1))};
    } else if (t.kind == kArray) {
      d = Desc{TypeKind::array, {}, VMI_TRY(desc(btf_.u32(t.tail), depth + 1)), btf_.u32(t.tail + 8)};
    } else if (t.kind == kStruct || t.kind == kUnion) {
      d = Desc{aggregate_kind(t.kind == kUnion), VMI_TRY(aggregate_name(id, depth + 1))};
    } else if (t.kind == kFwd) {
      d = Desc{aggregate_kind(t.kflag), std::string(name_of(id))};
    } else if (t.kind == kEnum || t.kind == kEnum64) {
      d = Desc{TypeKind::enum_, enum_name(id)};
    } else if (t.kind == kTypedef) {  // of a struct or union: see names_aggregate()
      const RawType& target = raw(t.size_or_type);
      d = Desc{aggregate_kind(target.kind == kUnion || (target.kind == kFwd && target.kflag)),
               std::string(name_of(id))};
    } else if (t.kind == kFunc || t.kind == kFuncProto) {
      d.kind = TypeKind::function;
    } else {
      return btf_.fail_type(Errc::bad_format, id, "is used as a data type");
    }
    busy_[id] = 0;
    memo_[id] = intern(std::move(d));
    return memo_[id];
  }

  // Members of struct/union `id` with ISF names, offsets and references.
  Expected<std::vector<PendingMember>> members_of(std::uint32_t id, int depth) {
    const RawType& t = raw(id);
    std::vector<PendingMember> members;
    std::unordered_set<std::string> seen;
    std::uint32_t anonymous = 0;
    for (std::size_t i = 0, at = t.tail; i < t.vlen; ++i, at += 12) {
      const std::uint32_t type = btf_.u32(at + 4);
      const std::uint32_t offset = btf_.u32(at + 8);
      std::uint32_t bits = t.kflag ? offset & 0xffffff : offset;
      std::uint32_t bit_size = t.kflag ? offset >> 24 : 0;
      PendingMember m;
      m.desc = VMI_TRY(desc(type, depth + 1));
      const RawType& shape = raw(strip(type));
      if (!t.kflag && shape.kind == kInt) {  // pre-kflag encoding: the INT itself carries the bits
        const std::uint32_t word = btf_.u32(shape.tail);
        if ((word & 0xff) != shape.size_or_type * 8 || ((word >> 16) & 0xff) != 0) {
          bits += (word >> 16) & 0xff;
          bit_size = word & 0xff;
        }
      }
      if (bit_size != 0) {
        Desc field{TypeKind::bitfield, {}, m.desc};
        field.bit_position = static_cast<std::uint8_t>(bits % 8);
        field.bit_length = static_cast<std::uint8_t>(bit_size);  // at most 255 (kflag) or 128 (INT)
        m.desc = intern(std::move(field));
      } else if (bits % 8 != 0) {
        return btf_.fail(Errc::bad_format, at,
                         "member " + std::to_string(i) + " of type #" + std::to_string(id) +
                             " is not byte-aligned (bit " + std::to_string(bits) + ")");
      }
      m.offset = bits / 8;
      m.name = btf_.name(btf_.u32(at));
      if (m.name.empty()) {
        m.name = TypeTable::unnamed_field(anonymous++);
        m.anonymous = true;
      }
      if (seen.insert(m.name).second) members.push_back(std::move(m));
    }
    return members;
  }

  std::string signature(const RawType& t, const std::vector<PendingMember>& members) const {
    return table_.signature(t.kind == kUnion, t.size_or_type, members);
  }

  Expected<std::string> aggregate_name(std::uint32_t id, int depth) {
    if (!name_of(id).empty()) return std::string(name_of(id));
    if (!names_[id].empty()) return names_[id];
    if (naming_[id]) return btf_.fail_type(Errc::bad_format, id, "contains itself");
    naming_[id] = 1;
    const auto members = VMI_TRY(members_of(id, depth));
    names_[id] = unnamed(signature(raw(id), members));
    naming_[id] = 0;
    return names_[id];
  }

  std::int64_t enumerator_value(const RawType& t, std::size_t at) const {
    if (t.kind == kEnum64) return static_cast<std::int64_t>(btf_.u32(at + 4) | std::uint64_t{btf_.u32(at + 8)} << 32);
    const std::uint32_t raw_value = btf_.u32(at + 4);
    // kflag marks a signed enum (pahole >= 1.24); unsigned values are zero-extended as DWARF's are.
    return t.kflag ? std::int64_t{static_cast<std::int32_t>(raw_value)} : std::int64_t{raw_value};
  }

  std::string enum_signature(std::uint32_t id) const {
    const RawType& t = raw(id);
    std::string text = "enum " + std::to_string(t.size_or_type) + " {";
    for (std::size_t i = 0, at = t.tail; i < t.vlen; ++i, at += kKinds[t.kind].entry) {
      text += std::string(btf_.name(btf_.u32(at))) + "=" + std::to_string(enumerator_value(t, at)) + ";";
    }
    return text + "}";
  }

  std::string enum_name(std::uint32_t id) {
    if (!name_of(id).empty()) return std::string(name_of(id));
    if (names_[id].empty()) names_[id] = unnamed(enum_signature(id));
    return names_[id];
  }

  // Records a same-named definition whose layout differs from the one kept.
  void note_duplicate(const std::string& name) { summary_.duplicates.push_back(name); }

  Expected<void> add_enums() {
    struct Chosen {
      std::uint32_t id;
      std::uint64_t layout;  // hash of its signature, so each enum is rendered once
    };
    std::unordered_map<std::string, Chosen> chosen;
    std::vector<std::uint32_t> order;
    for (std::uint32_t id = 1; id < btf_.types.size(); ++id) {
      if (raw(id).kind != kEnum && raw(id).kind != kEnum64) continue;
      const std::uint64_t layout = fnv1a(enum_signature(id));
      auto [it, inserted] = chosen.try_emplace(enum_name(id), Chosen{id, layout});
      if (inserted) {
        order.push_back(id);
      } else if (raw(it->second.id).vlen == 0 && raw(id).vlen != 0) {  // prefer a definition to a declaration
        std::replace(order.begin(), order.end(), it->second.id, id);
        it->second = Chosen{id, layout};
      } else if (raw(id).vlen != 0 && layout != it->second.layout) {
        note_duplicate(it->first);
      }
    }
    for (std::uint32_t id : order) {
      const RawType& t = raw(id);
      bool is_signed = false;
      const std::size_t stride = kKinds[t.kind].entry;
      for (std::size_t i = 0, at = t.tail; i < t.vlen; ++i, at += stride) is_signed |= enumerator_value(t, at) < 0;
      // A declaration-only enum has no size in DWARF: dwarf2json writes size 0, base void.
      const std::uint32_t size = t.vlen == 0 ? 0 : t.size_or_type;
      builder_.begin_enum(enum_name(id), size, table_.enum_base(size, is_signed));
      for (std::size_t i = 0, at = t.tail; i < t.vlen; ++i, at += stride) {
        builder_.add_enumerator(btf_.name(btf_.u32(at)), enumerator_value(t, at));
      }
      summary_.enums++;
    }
    return {};
  }

  // Adds struct/union `id` as user type `name` unless that name exists. Layouts are hashed once
  // per id, and members added in total are capped: many typedefs of one huge struct would
  // otherwise multiply a small blob into a huge profile.
  Expected<void> emit(const std::string& name, std::uint32_t id) {
    const RawType& t = raw(id);
    std::vector<PendingMember> members;
    auto layout = layouts_.find(id);
    if (layout == layouts_.end()) {
      members = VMI_TRY(members_of(id, 0));
      layout = layouts_.emplace(id, fnv1a(signature(t, members))).first;
    }
    auto [it, inserted] = emitted_.try_emplace(name, layout->second);
    if (!inserted) {
      if (it->second != layout->second) note_duplicate(name);
      return {};
    }
    if (members.empty()) members = VMI_TRY(members_of(id, 0));  // a second name for one layout
    members_added_ += members.size();
    if (members_added_ > kMaxBtfMembers) {
      return btf_.fail_type(Errc::limit_exceeded, id,
                            "as '" + name + "' takes the profile past " + std::to_string(kMaxBtfMembers) + " members");
    }
    builder_.begin_aggregate(name, t.kind == kStruct ? TypeKind::struct_ : TypeKind::union_, t.size_or_type);
    for (const PendingMember& m : members) builder_.add_member(m.name, m.offset, table_.id(m.desc), m.anonymous);
    summary_.aggregates++;
    return {};
  }

  // Real struct/union definitions first, so a typedef copy never displaces one.
  Expected<void> add_aggregates() {
    for (std::uint32_t id = 1; id < btf_.types.size(); ++id) {
      if (raw(id).kind == kStruct || raw(id).kind == kUnion) VMI_TRY_VOID(emit(VMI_TRY(aggregate_name(id, 0)), id));
    }
    for (std::uint32_t id = 1; id < btf_.types.size(); ++id) {
      const std::uint32_t target = raw(id).size_or_type;
      if (raw(id).kind == kTypedef && names_aggregate(id) && raw(target).kind != kFwd) {
        VMI_TRY_VOID(emit(std::string(name_of(id)), target));
      }
    }
    return {};
  }

  // Variables with their place, from the DATASEC records that list them.
  Expected<void> add_variables() {
    for (std::uint32_t id = 1; id < btf_.types.size(); ++id) {
      const RawType& section = raw(id);
      if (section.kind != kDatasec) continue;
      for (std::size_t i = 0, at = section.tail; i < section.vlen; ++i, at += 12) {
        const std::uint32_t var = btf_.u32(at);
        if (raw(var).kind != kVar) continue;
        const std::uint32_t d = VMI_TRY(desc(raw(var).size_or_type, 0));
        summary_.variables.push_back(
            BtfVariable{std::string(name_of(var)), std::string(name_of(id)), btf_.u32(at + 4), table_.id(d)});
      }
    }
    std::sort(summary_.variables.begin(), summary_.variables.end(), [](const BtfVariable& a, const BtfVariable& b) {
      return std::tie(a.name, a.section, a.offset) < std::tie(b.name, b.section, b.offset);
    });
    return {};
  }

  const Btf& btf_;
  ProfileBuilder& builder_;
  TypeTable table_;
  BtfOptions options_;
  BtfSummary summary_;
  std::vector<std::uint32_t> memo_;   // BTF id -> table_ index
  std::vector<std::uint8_t> busy_;    // BTF id whose reference is being resolved (cycle guard)
  std::vector<std::uint8_t> naming_;  // BTF id whose anonymous name is being computed (cycle guard)
  std::vector<std::string> names_;    // generated names of anonymous structs/unions/enums
  std::unordered_map<std::string, std::uint64_t> emitted_;    // user type name -> layout hash
  std::unordered_map<std::uint32_t, std::uint64_t> layouts_;  // struct/union BTF id -> layout hash
  std::size_t members_added_ = 0;
};

}  // namespace

Expected<BtfSummary> add_btf_types(std::span<const std::byte> bytes, ProfileBuilder& builder, std::string_view origin,
                                   const BtfOptions& options) {
  const Btf btf = VMI_TRY(parse(bytes, origin));
  return Converter(btf, builder, options).run();
}

}  // namespace vmi
