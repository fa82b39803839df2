// Profile lookups and the builder that every profile source (ISF, BTF, cache) goes through.
#include "vmi/profile.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <unordered_map>

namespace vmi {

std::string_view to_string(TypeKind kind) {
  switch (kind) {
    case TypeKind::base:
      return "base";
    case TypeKind::pointer:
      return "pointer";
    case TypeKind::array:
      return "array";
    case TypeKind::struct_:
      return "struct";
    case TypeKind::union_:
      return "union";
    case TypeKind::class_:
      return "class";
    case TypeKind::enum_:
      return "enum";
    case TypeKind::bitfield:
      return "bitfield";
    case TypeKind::function:
      return "function";
    case TypeKind::void_:
      return "void";
  }
  return "unknown";
}

namespace {

// Binary search over an array sorted by name.
template <class T>
const T* find_by_name(const Profile& profile, const std::vector<T>& items, std::string_view name) {
  auto it = std::lower_bound(items.begin(), items.end(), name,
                             [&](const T& item, std::string_view key) { return profile.str(item.name) < key; });
  if (it == items.end() || profile.str(it->name) != name) return nullptr;
  return &*it;
}

// Anonymous members nest; a hostile or broken profile could make them recursive.
constexpr int kMaxAnonymousDepth = 8;

}  // namespace

const Aggregate* Profile::find_aggregate(std::string_view name) const { return find_by_name(*this, aggregates, name); }
const BaseType* Profile::find_base_type(std::string_view name) const { return find_by_name(*this, base_types, name); }
const EnumType* Profile::find_enum(std::string_view name) const { return find_by_name(*this, enums, name); }
const Symbol* Profile::find_symbol(std::string_view name) const { return find_by_name(*this, symbols, name); }

std::optional<std::uint64_t> Profile::symbol_address(std::string_view name) const {
  const Symbol* symbol = find_symbol(name);
  if (symbol == nullptr) return std::nullopt;
  return symbol->address;
}

const Aggregate* Profile::aggregate_of(TypeId type_id) const {
  if (type_id >= types.size()) return nullptr;
  const TypeDesc& desc = types[type_id];
  if (desc.kind != TypeKind::struct_ && desc.kind != TypeKind::union_ && desc.kind != TypeKind::class_) return nullptr;
  return find_aggregate(str(desc.name));
}

static std::optional<FieldInfo> find_field_at_depth(const Profile& profile, const Aggregate& aggregate,
                                                    std::string_view field, int depth) {
  auto members = profile.members(aggregate);
  auto it = std::lower_bound(members.begin(), members.end(), field,
                             [&](const Member& m, std::string_view key) { return profile.str(m.name) < key; });
  if (it != members.end() && profile.str(it->name) == field && it->anonymous == 0) {
    return FieldInfo{it->offset, it->type};
  }
  if (depth >= kMaxAnonymousDepth) return std::nullopt;
  for (const Member& member : members) {
    if (member.anonymous == 0) continue;
    const Aggregate* inner = profile.aggregate_of(member.type);
    if (inner == nullptr) continue;
    if (auto found = find_field_at_depth(profile, *inner, field, depth + 1)) {
      found->offset += member.offset;
      return found;
    }
  }
  return std::nullopt;
}

std::optional<FieldInfo> Profile::find_field(const Aggregate& aggregate, std::string_view field) const {
  return find_field_at_depth(*this, aggregate, field, 0);
}

Expected<FieldInfo> Profile::field(std::string_view type_name, std::string_view field_name) const {
  const Aggregate* aggregate = find_aggregate(type_name);
  if (aggregate == nullptr) {
    return make_error(Errc::not_found, "profile has no type '" + std::string(type_name) + "'");
  }
  if (auto found = find_field(*aggregate, field_name)) return *found;
  return make_error(Errc::not_found,
                    "profile type '" + std::string(type_name) + "' has no field '" + std::string(field_name) + "'");
}

std::optional<std::uint64_t> Profile::size_of(TypeId type_id) const {
  // Arrays of arrays nest; bound the descent like every other walk over profile data.
  std::uint64_t multiplier = 1;
  for (int depth = 0; depth < 16 && type_id < types.size(); ++depth) {
    const TypeDesc& desc = types[type_id];
    switch (desc.kind) {
      case TypeKind::pointer:
        return multiplier * pointer_size_;
      case TypeKind::base: {
        const BaseType* base = find_base_type(str(desc.name));
        if (base == nullptr) return std::nullopt;
        return multiplier * base->size;
      }
      case TypeKind::enum_: {
        const EnumType* e = find_enum(str(desc.name));
        if (e == nullptr) return std::nullopt;
        return multiplier * e->size;
      }
      case TypeKind::struct_:
      case TypeKind::union_:
      case TypeKind::class_: {
        const Aggregate* aggregate = find_aggregate(str(desc.name));
        if (aggregate == nullptr) return std::nullopt;
        return multiplier * aggregate->size;
      }
      case TypeKind::array:
        multiplier *= desc.count;
        type_id = desc.subtype;
        continue;
      case TypeKind::bitfield:
        type_id = desc.subtype;
        continue;
      case TypeKind::function:
      case TypeKind::void_:
        return std::nullopt;
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------

struct ProfileBuilder::Impl {
  Profile profile;
  std::unordered_map<std::string, StrRef> interned;
  // Identical type references are shared: ISF repeats {"kind":"base","name":"int"} and
  // "pointer to task_struct" hundreds of thousands of times.
  struct TypeKey {
    TypeKind kind;
    std::uint32_t name_offset, name_size, subtype, count;
    std::uint8_t bit_position, bit_length;
    bool operator==(const TypeKey&) const = default;
  };
  struct TypeKeyHash {
    std::size_t operator()(const TypeKey& k) const {
      std::uint64_t h = static_cast<std::uint64_t>(k.kind) * 0x9E3779B97F4A7C15ull;
      for (std::uint64_t part : {std::uint64_t{k.name_offset}, std::uint64_t{k.name_size}, std::uint64_t{k.subtype},
                                 std::uint64_t{k.count}, std::uint64_t{k.bit_position} << 8 | k.bit_length}) {
        h = (h ^ part) * 0x100000001B3ull;
      }
      return static_cast<std::size_t>(h ^ (h >> 29));
    }
  };
  std::unordered_map<TypeKey, TypeId, TypeKeyHash> type_ids;
  enum class Open { none, aggregate, enumeration } open = Open::none;
  std::string banner, producer, format_version, os, build_id, pdb_name, pdb_guid;
  std::uint32_t pdb_age = 0;

  StrRef intern(std::string_view text) {
    auto [it, inserted] = interned.try_emplace(std::string(text));
    if (inserted) {
      it->second = StrRef{static_cast<std::uint32_t>(profile.strings.size()), static_cast<std::uint32_t>(text.size())};
      profile.strings.append(text);
    }
    return it->second;
  }
};

ProfileBuilder::ProfileBuilder() : impl_(std::make_unique<Impl>()) {}
ProfileBuilder::~ProfileBuilder() = default;
ProfileBuilder::ProfileBuilder(ProfileBuilder&&) noexcept = default;
ProfileBuilder& ProfileBuilder::operator=(ProfileBuilder&&) noexcept = default;

TypeId ProfileBuilder::add_type(TypeKind kind, std::string_view name, TypeId subtype, std::uint32_t count,
                                std::uint8_t bit_position, std::uint8_t bit_length) {
  TypeDesc desc;
  desc.kind = kind;
  desc.name = name.empty() ? StrRef{} : impl_->intern(name);
  desc.subtype = subtype;
  desc.count = count;
  desc.bit_position = bit_position;
  desc.bit_length = bit_length;
  Impl::TypeKey key{kind, desc.name.offset, desc.name.size, subtype, count, bit_position, bit_length};
  auto [it, inserted] = impl_->type_ids.try_emplace(key, static_cast<TypeId>(impl_->profile.types.size()));
  if (inserted) impl_->profile.types.push_back(desc);
  return it->second;
}

void ProfileBuilder::add_base_type(std::string_view name, std::uint32_t size, BaseKind kind, bool is_signed) {
  BaseType base;
  base.name = impl_->intern(name);
  base.size = size;
  base.kind = kind;
  base.is_signed = is_signed ? 1 : 0;
  impl_->profile.base_types.push_back(base);
}

void ProfileBuilder::begin_aggregate(std::string_view name, TypeKind kind, std::uint32_t size) {
  Aggregate aggregate;
  aggregate.name = impl_->intern(name);
  aggregate.kind = kind;
  aggregate.size = size;
  aggregate.first_member = static_cast<std::uint32_t>(impl_->profile.members_.size());
  impl_->profile.aggregates.push_back(aggregate);
  impl_->open = Impl::Open::aggregate;
}

void ProfileBuilder::add_member(std::string_view name, std::uint32_t offset, TypeId type, bool anonymous) {
  if (impl_->open != Impl::Open::aggregate) return;
  Member member;
  member.name = impl_->intern(name);
  member.offset = offset;
  member.type = type;
  member.anonymous = anonymous ? 1 : 0;
  impl_->profile.members_.push_back(member);
  impl_->profile.aggregates.back().member_count++;
}

void ProfileBuilder::begin_enum(std::string_view name, std::uint32_t size, std::string_view base) {
  EnumType e;
  e.name = impl_->intern(name);
  e.base = impl_->intern(base);
  e.size = size;
  e.first_enumerator = static_cast<std::uint32_t>(impl_->profile.enumerators_.size());
  impl_->profile.enums.push_back(e);
  impl_->open = Impl::Open::enumeration;
}

void ProfileBuilder::add_enumerator(std::string_view name, std::int64_t value) {
  if (impl_->open != Impl::Open::enumeration) return;
  impl_->profile.enumerators_.push_back(Enumerator{impl_->intern(name), value});
  impl_->profile.enums.back().enumerator_count++;
}

void ProfileBuilder::add_symbol(std::string_view name, std::uint64_t address, TypeId type,
                                std::string_view constant_data) {
  Symbol symbol;
  symbol.name = impl_->intern(name);
  symbol.address = address;
  symbol.type = type;
  if (!constant_data.empty()) symbol.constant_data = impl_->intern(constant_data);
  impl_->profile.symbols.push_back(symbol);
}

void ProfileBuilder::set_banner(std::string_view banner) { impl_->banner = banner; }
void ProfileBuilder::set_producer(std::string_view producer) { impl_->producer = producer; }
void ProfileBuilder::set_format_version(std::string_view version) { impl_->format_version = version; }
void ProfileBuilder::set_os(std::string_view os) { impl_->os = os; }
void ProfileBuilder::set_build_id(std::string_view build_id) { impl_->build_id = build_id; }
void ProfileBuilder::set_pdb(std::string_view name, std::string_view guid, std::uint32_t age) {
  impl_->pdb_name = name;
  impl_->pdb_guid = guid;
  impl_->pdb_age = age;
}

namespace {

template <class T>
void sort_by_name(const Profile& profile, std::vector<T>& items) {
  std::stable_sort(items.begin(), items.end(),
                   [&](const T& a, const T& b) { return profile.str(a.name) < profile.str(b.name); });
}

template <class T>
std::optional<std::string> first_duplicate(const Profile& profile, const std::vector<T>& items) {
  for (size_t i = 1; i < items.size(); ++i) {
    if (profile.str(items[i].name) == profile.str(items[i - 1].name)) return std::string(profile.str(items[i].name));
  }
  return std::nullopt;
}

}  // namespace

Expected<Profile> ProfileBuilder::build() && {
  Impl& impl = *impl_;
  Profile& profile = impl.profile;

  // Members are sorted inside each aggregate, so aggregates keep their member ranges.
  for (Aggregate& aggregate : profile.aggregates) {
    auto begin = profile.members_.begin() + aggregate.first_member;
    std::stable_sort(begin, begin + aggregate.member_count,
                     [&](const Member& a, const Member& b) { return profile.str(a.name) < profile.str(b.name); });
  }
  sort_by_name(profile, profile.aggregates);
  sort_by_name(profile, profile.base_types);
  sort_by_name(profile, profile.enums);
  sort_by_name(profile, profile.symbols);

  if (auto dup = first_duplicate(profile, profile.aggregates)) {
    return make_error(Errc::bad_format, "profile defines type '" + *dup + "' twice");
  }
  if (auto dup = first_duplicate(profile, profile.symbols)) {
    return make_error(Errc::bad_format, "profile defines symbol '" + *dup + "' twice");
  }
  const auto type_count = profile.types.size();
  for (size_t i = 0; i < type_count; ++i) {
    const TypeDesc& desc = profile.types[i];
    bool needs_subtype =
        desc.kind == TypeKind::pointer || desc.kind == TypeKind::array || desc.kind == TypeKind::bitfield;
    if (needs_subtype && desc.subtype >= type_count) {
      return make_error(Errc::bad_format, "profile type reference #" + std::to_string(i) + " (" +
                                              std::string(to_string(desc.kind)) + ") has no valid subtype");
    }
  }
  for (const Member& member : profile.members_) {
    if (member.type >= type_count) {
      return make_error(Errc::bad_format, "profile member '" + std::string(profile.str(member.name)) + "' has no type");
    }
  }

  if (impl.banner.empty()) {
    if (const Symbol* banner = profile.find_symbol("linux_banner");
        banner != nullptr && banner->constant_data.size > 0) {
      impl.banner = profile.str(banner->constant_data);
    }
  }
  // The kernel's banner ends in "\n\0"; profiles compare against the text only.
  while (!impl.banner.empty() && (impl.banner.back() == '\0' || impl.banner.back() == '\n')) impl.banner.pop_back();
  profile.banner_ = impl.intern(impl.banner);
  profile.producer_ = impl.intern(impl.producer);
  profile.format_version_ = impl.intern(impl.format_version);
  profile.os_ = impl.intern(impl.os);
  profile.build_id_ = impl.intern(impl.build_id);
  profile.pdb_name_ = impl.intern(impl.pdb_name);
  // GUIDs are compared and printed in upper case, as the symbol server names them.
  std::transform(impl.pdb_guid.begin(), impl.pdb_guid.end(), impl.pdb_guid.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  profile.pdb_guid_ = impl.intern(impl.pdb_guid);
  profile.pdb_age_ = impl.pdb_age;
  if (const BaseType* pointer = profile.find_base_type("pointer"); pointer != nullptr && pointer->size != 0) {
    profile.pointer_size_ = pointer->size;
  }
  return std::move(profile);
}

ProfileIdentity Profile::identity() const {
  ProfileIdentity identity;
  identity.os = os();
  identity.banner = banner();
  identity.build_id = build_id();
  identity.pdb_name = str(pdb_name_);
  identity.pdb_guid = str(pdb_guid_);
  identity.pdb_age = pdb_age_;
  if (identity.os.empty() && identity.banner.starts_with("Linux version ")) identity.os = "linux";
  return identity;
}

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

std::string ProfileIdentity::key() const {
  if (os == "windows") {
    char age[9];
    std::snprintf(age, sizeof age, "%X", pdb_age);
    return "windows/" + pdb_name + "/" + pdb_guid + age;
  }
  if (!build_id.empty()) return (os.empty() ? "unknown" : os) + "/" + build_id;
  std::uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a
  for (char c : banner) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  char text[32];
  std::snprintf(text, sizeof text, "banner-%016llx", static_cast<unsigned long long>(hash));
  return (os.empty() ? "unknown" : os) + "/" + text;
}

bool ProfileIdentity::matches(const ProfileIdentity& found) const {
  if (os != found.os) return false;
  if (os == "windows")
    return lower(pdb_name) == lower(found.pdb_name) && lower(pdb_guid) == lower(found.pdb_guid) &&
           pdb_age == found.pdb_age;
  if (banner != found.banner) return false;
  return build_id.empty() || found.build_id.empty() || lower(build_id) == lower(found.build_id);
}

}  // namespace vmi
