// Volatility 3 ISF JSON → Profile, read with simdjson's on-demand parser (no DOM of 38 MB).
#include <simdjson.h>

#include <fstream>

#include "symbols/decompress.hpp"
#include "vmi/image.hpp"
#include "vmi/isf.hpp"

namespace vmi {

namespace {

namespace od = simdjson::ondemand;

constexpr int kMaxTypeDepth = 32;                           // nested pointer/array descriptors
constexpr std::size_t kMaxIsfBytes = std::size_t{1} << 31;  // 2 GiB of JSON; real ones are ~40 MB

// Thrown inside this file only, turned into an Error at parse_isf's boundary.
struct IsfError {
  std::string what;
};

std::string base64_decode(std::string_view text) {
  auto value_of = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  unsigned buffer = 0;
  int bits = 0;
  for (char c : text) {
    int v = value_of(c);
    if (v < 0) continue;  // '=' padding and whitespace
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  return out;
}

TypeKind kind_from_name(std::string_view kind) {
  if (kind == "base") return TypeKind::base;
  if (kind == "pointer") return TypeKind::pointer;
  if (kind == "array") return TypeKind::array;
  if (kind == "struct") return TypeKind::struct_;
  if (kind == "union") return TypeKind::union_;
  if (kind == "class") return TypeKind::class_;
  if (kind == "enum") return TypeKind::enum_;
  if (kind == "bitfield") return TypeKind::bitfield;
  if (kind == "function") return TypeKind::function;
  if (kind == "void") return TypeKind::void_;
  throw IsfError{"unknown type kind '" + std::string(kind) + "'"};
}

class IsfParser {
 public:
  explicit IsfParser(ProfileBuilder& builder) : builder_(builder) {}

  void parse(od::document& doc) {
    for (auto section : doc.get_object()) {
      std::string_view key = section.unescaped_key();
      od::value value = section.value();
      if (key == "metadata") {
        parse_metadata(value);
      } else if (key == "base_types") {
        parse_base_types(value);
      } else if (key == "user_types") {
        parse_user_types(value);
      } else if (key == "enums") {
        parse_enums(value);
      } else if (key == "symbols") {
        parse_symbols(value);
      }
    }
    if (!seen_format_) throw IsfError{"no metadata.format: not an ISF file"};
  }

 private:
  void parse_metadata(od::value value) {
    for (auto field : value.get_object()) {
      std::string_view key = field.unescaped_key();
      if (key == "format") {
        builder_.set_format_version(field.value().get_string().value());
        seen_format_ = true;
      } else if (key == "producer") {
        std::string producer;
        for (auto p : field.value().get_object()) {
          std::string_view pkey = p.unescaped_key();
          std::string text(p.value().get_string().value());
          if (pkey == "name") producer.insert(0, text);
          if (pkey == "version") producer += " " + text;
        }
        builder_.set_producer(producer);
      } else if (key == "linux" || key == "windows" || key == "mac") {
        builder_.set_os(key);
        if (key == "windows") parse_windows_metadata(field.value());
      }
    }
  }

  // metadata.windows.pdb: {"GUID": "...", "age": N, "database": "ntkrnlmp.pdb", ...}
  void parse_windows_metadata(od::value value) {
    for (auto field : value.get_object()) {
      if (field.unescaped_key().value() != "pdb") continue;
      std::string guid, database;
      std::uint64_t age = 0;
      for (auto p : field.value().get_object()) {
        std::string_view pkey = p.unescaped_key();
        if (pkey == "GUID") guid = std::string(p.value().get_string().value());
        if (pkey == "database") database = std::string(p.value().get_string().value());
        if (pkey == "age") age = p.value().get_uint64().value();
      }
      if (age > UINT32_MAX) throw IsfError{"metadata.windows.pdb.age is out of range"};
      builder_.set_pdb(database, guid, static_cast<std::uint32_t>(age));
    }
  }

  void parse_base_types(od::value value) {
    for (auto entry : value.get_object()) {
      std::string name(entry.unescaped_key().value());
      std::uint64_t size = 0;
      bool is_signed = false;
      BaseKind kind = BaseKind::integer;
      for (auto field : entry.value().get_object()) {
        std::string_view key = field.unescaped_key();
        if (key == "size") {
          size = field.value().get_uint64();
        } else if (key == "signed") {
          is_signed = field.value().get_bool();
        } else if (key == "kind") {
          std::string_view k = field.value().get_string();
          kind = k == "char"    ? BaseKind::character
                 : k == "bool"  ? BaseKind::boolean
                 : k == "float" ? BaseKind::floating
                 : k == "void"  ? BaseKind::void_
                                : BaseKind::integer;
        }
      }
      builder_.add_base_type(name, checked_u32(size, name), kind, is_signed);
    }
  }

  void parse_user_types(od::value value) {
    for (auto entry : value.get_object()) {
      std::string name(entry.unescaped_key().value());
      std::uint64_t size = 0;
      TypeKind kind = TypeKind::struct_;
      bool members_pending = false;
      // Fields may precede "kind"/"size" in the object; collect them, then emit.
      pending_.clear();
      for (auto field : entry.value().get_object()) {
        std::string_view key = field.unescaped_key();
        if (key == "size") {
          size = field.value().get_uint64();
        } else if (key == "kind") {
          kind = kind_from_name(field.value().get_string().value());
        } else if (key == "fields") {
          parse_fields(field.value());
          members_pending = true;
        }
      }
      builder_.begin_aggregate(name, kind, checked_u32(size, name));
      if (members_pending) {
        for (const PendingMember& member : pending_) {
          builder_.add_member(member.name, member.offset, member.type, member.anonymous);
        }
      }
    }
  }

  struct PendingMember {
    std::string name;
    std::uint32_t offset;
    TypeId type;
    bool anonymous;
  };

  void parse_fields(od::value value) {
    for (auto entry : value.get_object()) {
      PendingMember member{std::string(entry.unescaped_key().value()), 0, kNoType, false};
      for (auto field : entry.value().get_object()) {
        std::string_view key = field.unescaped_key();
        if (key == "offset") {
          member.offset = checked_u32(field.value().get_uint64(), member.name);
        } else if (key == "type") {
          member.type = parse_type(field.value(), 0);
        } else if (key == "anonymous") {
          member.anonymous = field.value().get_bool();
        }
      }
      if (member.type == kNoType) throw IsfError{"field '" + member.name + "' has no type"};
      pending_.push_back(std::move(member));
    }
  }

  TypeId parse_type(od::value value, int depth) {
    if (depth > kMaxTypeDepth) throw IsfError{"type descriptors nest deeper than " + std::to_string(kMaxTypeDepth)};
    TypeKind kind = TypeKind::void_;
    bool has_kind = false;
    std::string name;
    TypeId subtype = kNoType;
    std::uint64_t count = 0;
    std::uint64_t bit_position = 0;
    std::uint64_t bit_length = 0;
    for (auto field : value.get_object()) {
      std::string_view key = field.unescaped_key();
      if (key == "kind") {
        kind = kind_from_name(field.value().get_string().value());
        has_kind = true;
      } else if (key == "name") {
        name = std::string_view(field.value().get_string());
      } else if (key == "subtype" || key == "type") {
        subtype = parse_type(field.value(), depth + 1);
      } else if (key == "count") {
        count = field.value().get_uint64();
      } else if (key == "bit_position") {
        bit_position = field.value().get_uint64();
      } else if (key == "bit_length") {
        bit_length = field.value().get_uint64();
      }
    }
    if (!has_kind) throw IsfError{"type descriptor without a kind"};
    if (bit_position > 255 || bit_length > 255) throw IsfError{"bitfield position/length out of range"};
    return builder_.add_type(kind, name, subtype, checked_u32(count, name), static_cast<std::uint8_t>(bit_position),
                             static_cast<std::uint8_t>(bit_length));
  }

  void parse_enums(od::value value) {
    for (auto entry : value.get_object()) {
      std::string name(entry.unescaped_key().value());
      std::uint64_t size = 0;
      std::string base;
      std::vector<std::pair<std::string, std::int64_t>> constants;
      for (auto field : entry.value().get_object()) {
        std::string_view key = field.unescaped_key();
        if (key == "size") {
          size = field.value().get_uint64();
        } else if (key == "base") {
          base = std::string_view(field.value().get_string());
        } else if (key == "constants") {
          for (auto constant : field.value().get_object()) {
            std::string cname(constant.unescaped_key().value());
            od::value v = constant.value();
            std::int64_t number = v.get_number_type() == od::number_type::unsigned_integer
                                      ? static_cast<std::int64_t>(v.get_uint64().value())
                                      : v.get_int64().value();
            constants.emplace_back(std::move(cname), number);
          }
        }
      }
      builder_.begin_enum(name, checked_u32(size, name), base);
      for (auto& [cname, number] : constants) builder_.add_enumerator(cname, number);
    }
  }

  void parse_symbols(od::value value) {
    for (auto entry : value.get_object()) {
      std::string name(entry.unescaped_key().value());
      std::uint64_t address = 0;
      TypeId type = kNoType;
      std::string constant;
      for (auto field : entry.value().get_object()) {
        std::string_view key = field.unescaped_key();
        if (key == "address") {
          od::value v = field.value();
          // Some producers write negative numbers for kernel addresses; keep the bit pattern.
          address = v.get_number_type() == od::number_type::signed_integer
                        ? static_cast<std::uint64_t>(v.get_int64().value())
                        : v.get_uint64().value();
        } else if (key == "type") {
          type = parse_type(field.value(), 0);
        } else if (key == "constant_data") {
          constant = base64_decode(field.value().get_string().value());
        }
      }
      builder_.add_symbol(name, address, type, constant);
    }
  }

  static std::uint32_t checked_u32(std::uint64_t value, std::string_view what) {
    if (value > 0xffffffffu)
      throw IsfError{"value " + std::to_string(value) + " for '" + std::string(what) + "' is out of range"};
    return static_cast<std::uint32_t>(value);
  }

  ProfileBuilder& builder_;
  std::vector<PendingMember> pending_;
  bool seen_format_ = false;
};

}  // namespace

namespace {

Expected<Profile> parse_padded(simdjson::padded_string_view json, std::string_view origin) {
  ProfileBuilder builder;
  try {
    od::parser parser;
    od::document doc = parser.iterate(json);
    IsfParser(builder).parse(doc);
  } catch (const simdjson::simdjson_error& e) {
    return make_error(Errc::bad_format, std::string(origin) + ": not valid ISF JSON (" + e.what() + ")");
  } catch (const IsfError& e) {
    return make_error(Errc::bad_format, std::string(origin) + ": " + e.what);
  }
  auto profile = std::move(builder).build();
  if (!profile) return make_error(profile.error().code, std::string(origin) + ": " + profile.error().message);
  return profile;
}

}  // namespace

Expected<Profile> parse_isf(std::string_view json, std::string_view origin) {
  simdjson::padded_string padded(json);
  return parse_padded(padded, origin);
}

Expected<Profile> load_isf_file(const std::filesystem::path& path) {
  auto file = VMI_TRY(FileMapping::open(path));
  const std::string origin = "profile '" + path.string() + "'";
  std::string json;
  VMI_TRY_VOID(decompress(file->bytes(),
                          detect_compression(file->bytes().first(std::min<std::size_t>(8, file->size()))), json,
                          simdjson::SIMDJSON_PADDING, kMaxIsfBytes, origin));
  return parse_padded(simdjson::padded_string_view(json.data(), json.size(), json.capacity()), origin);
}

}  // namespace vmi
