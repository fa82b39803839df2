// ISF writer: a Profile as Volatility 3 ISF JSON (format 6.2.0), laid out as dwarf2json lays it.
//
// Output is deterministic: objects appear in dwarf2json's key order (Go's sorted map keys,
// declaration order for its structs), names sorted bytewise, two-space indentation.
#include <algorithm>
#include <charconv>
#include <ostream>
#include <string>
#include <vector>

#include "vmi/isf.hpp"

namespace vmi {
namespace {

constexpr std::string_view kFormatVersion = "6.2.0";
constexpr std::string_view kWriterVersion = "0.1.0";  // producer version when the profile has none
constexpr int kMaxTypeNesting = 32;                   // a profile is data too: its type references may loop
constexpr std::size_t kFlushBytes = std::size_t{1} << 20;

// Length of the valid UTF-8 sequence at text[i], or 0.
std::size_t utf8_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  std::size_t length = lead < 0x80             ? 1
                       : (lead & 0xe0) == 0xc0 ? 2
                       : (lead & 0xf0) == 0xe0 ? 3
                       : (lead & 0xf8) == 0xf0 ? 4
                                               : 0;
  if (length == 0 || i + length > text.size()) return 0;
  std::uint32_t code = length == 1 ? lead : lead & (0x7f >> length);
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    code = code << 6 | (byte(i + k) & 0x3f);
  }
  static constexpr std::uint32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code < kMinimum[length] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return 0;
  return length;
}

std::string base64(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    std::uint32_t chunk = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) chunk |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) chunk |= static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[chunk >> 18 & 63];
    out += kAlphabet[chunk >> 12 & 63];
    out += i + 1 < bytes.size() ? kAlphabet[chunk >> 6 & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[chunk & 63] : '=';
  }
  return out;
}

class JsonWriter {
 public:
  explicit JsonWriter(std::ostream& out) : out_(out) {}

  // Opens "{" (or "key": {) at the current nesting; close() ends it.
  void open(std::string_view key = {}, char bracket = '{') {
    item(key);
    buffer_ += bracket;
    closers_.push_back(bracket == '{' ? '}' : ']');
    empty_.push_back(true);
  }
  void close() {
    const bool was_empty = empty_.back();
    empty_.pop_back();
    if (!was_empty) newline();
    buffer_ += closers_.back();
    closers_.pop_back();
    if (buffer_.size() >= kFlushBytes) flush();
  }
  void string(std::string_view key, std::string_view value) {
    item(key);
    quoted(value);
  }
  template <class Integer>
  void number(std::string_view key, Integer value) {
    item(key);
    char digits[24];
    auto result = std::to_chars(digits, digits + sizeof digits, value);
    buffer_.append(digits, result.ptr);
  }
  void boolean(std::string_view key, bool value) {
    item(key);
    buffer_ += value ? "true" : "false";
  }
  bool finish() {  // no final newline: dwarf2json writes none, and the output matches it byte for byte
    flush();
    out_.flush();
    return static_cast<bool>(out_);
  }

 private:
  void newline() {
    buffer_ += '\n';
    buffer_.append(2 * empty_.size(), ' ');
  }
  void item(std::string_view key) {
    if (!empty_.empty()) {
      if (!empty_.back()) buffer_ += ',';
      empty_.back() = false;
      newline();
    }
    if (!closers_.empty() && closers_.back() == '}') {  // array elements and the root have no key
      quoted(key);
      buffer_ += ": ";
    }
  }
  // JSON string; bytes that are not UTF-8 are written as \u00XX (their Latin-1 reading).
  void quoted(std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    buffer_ += '"';
    for (std::size_t i = 0; i < text.size();) {
      const auto c = static_cast<unsigned char>(text[i]);
      const std::size_t length = utf8_length(text, i);
      if (c == '"' || c == '\\') {
        buffer_ += '\\';
        buffer_ += static_cast<char>(c);
      } else if (c == '\n') {
        buffer_ += "\\n";
      } else if (c == '\t') {
        buffer_ += "\\t";
      } else if (c < 0x20 || length == 0) {
        buffer_ += "\\u00";
        buffer_ += kHex[c >> 4];
        buffer_ += kHex[c & 15];
      } else {
        buffer_.append(text.substr(i, length));
        i += length;
        continue;
      }
      ++i;
    }
    buffer_ += '"';
  }
  void flush() {
    out_.write(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
    buffer_.clear();
  }

  std::ostream& out_;
  std::string buffer_;
  std::vector<char> closers_;
  std::vector<bool> empty_;
};

std::string_view base_kind_name(BaseKind kind) {
  switch (kind) {
    case BaseKind::integer:
      return "int";
    case BaseKind::character:
      return "char";
    case BaseKind::boolean:
      return "bool";
    case BaseKind::floating:
      return "float";
    case BaseKind::void_:
      return "void";
  }
  return "int";
}

// A type reference, e.g. {"kind": "pointer", "subtype": {...}}, keys in sorted order.
Expected<void> write_type(JsonWriter& json, const Profile& profile, std::string_view key, TypeId id, int depth) {
  if (id >= profile.types.size() || depth > kMaxTypeNesting) {
    return make_error(Errc::bad_format, "ISF writer: type reference #" + std::to_string(id) +
                                            (depth > kMaxTypeNesting ? " nests too deeply" : " is out of range"));
  }
  const TypeDesc& desc = profile.types[id];
  json.open(key);
  switch (desc.kind) {
    case TypeKind::base:
    case TypeKind::void_:
      json.string("kind", "base");
      json.string("name", desc.kind == TypeKind::void_ ? std::string_view("void") : profile.str(desc.name));
      break;
    case TypeKind::pointer:
      json.string("kind", "pointer");
      VMI_TRY_VOID(write_type(json, profile, "subtype", desc.subtype, depth + 1));
      break;
    case TypeKind::array:
      json.number("count", desc.count);
      json.string("kind", "array");
      VMI_TRY_VOID(write_type(json, profile, "subtype", desc.subtype, depth + 1));
      break;
    case TypeKind::bitfield:
      json.number("bit_length", desc.bit_length);
      json.number("bit_position", desc.bit_position);
      json.string("kind", "bitfield");
      VMI_TRY_VOID(write_type(json, profile, "type", desc.subtype, depth + 1));
      break;
    case TypeKind::struct_:
    case TypeKind::union_:
    case TypeKind::class_:
    case TypeKind::enum_:
      json.string("kind", to_string(desc.kind));
      json.string("name", profile.str(desc.name));
      break;
    case TypeKind::function:
      json.string("kind", "function");
      break;
  }
  json.close();
  return {};
}

// "Linux version 6.1.0-56-amd64 (...)" -> "6.1.0-56-amd64".
std::string_view kernel_release(std::string_view banner) {
  constexpr std::string_view kPrefix = "Linux version ";
  if (banner.substr(0, kPrefix.size()) != kPrefix) return {};
  banner.remove_prefix(kPrefix.size());
  return banner.substr(0, banner.find(' '));
}

void write_metadata(JsonWriter& json, const Profile& profile) {
  json.open("metadata");
  // The profile does not record its source files; name the kernel so the entry identifies it.
  if (profile.os() == "linux") {
    json.open("linux");
    json.open("symbols", '[');
    json.open();
    json.string("kind", "symtab");
    const std::string_view release = kernel_release(profile.banner());
    json.string("name", release.empty() ? std::string("vmlinux") : "vmlinux-" + std::string(release));
    json.close();
    json.close();
    json.close();
  } else if (const ProfileIdentity identity = profile.identity();
             profile.os() == "windows" && !identity.pdb_name.empty()) {
    // Volatility 3's Windows ISF names its kernel by the PDB, as the symbol server does.
    json.open("windows");
    json.open("pdb");
    json.string("GUID", identity.pdb_guid);
    json.number("age", identity.pdb_age);
    json.string("database", identity.pdb_name);
    json.number("machine_type", 34404);  // IMAGE_FILE_MACHINE_AMD64
    json.close();
    json.close();
  }
  // Producer strings read back from ISF are "<name> <version>"; split the version off again.
  std::string_view producer = profile.producer();
  std::string_view version = kWriterVersion;
  if (const auto space = producer.rfind(' '); space != std::string_view::npos && space + 1 < producer.size() &&
                                              producer[space + 1] >= '0' && producer[space + 1] <= '9') {
    version = producer.substr(space + 1);
    producer = producer.substr(0, space);
  }
  json.open("producer");
  json.string("name", producer.empty() ? std::string_view("vmi-forensics") : producer);
  json.string("version", version);
  json.close();
  json.string("format", kFormatVersion);
  json.close();
}

}  // namespace

Expected<void> write_isf(const Profile& profile, std::ostream& out) {
  JsonWriter json(out);
  json.open();
  write_metadata(json, profile);

  json.open("base_types");
  std::string_view previous;
  for (std::size_t i = 0; i < profile.base_types.size(); ++i) {
    const BaseType& base = profile.base_types[i];
    if (i > 0 && profile.str(base.name) == previous) continue;  // names are JSON keys: keep the first
    previous = profile.str(base.name);
    json.open(previous);
    json.number("size", base.size);
    json.boolean("signed", base.is_signed != 0);
    json.string("kind", base_kind_name(base.kind));
    json.string("endian", "little");
    json.close();
  }
  json.close();

  json.open("user_types");
  for (const Aggregate& aggregate : profile.aggregates) {
    json.open(profile.str(aggregate.name));
    json.number("size", aggregate.size);
    json.open("fields");
    const auto members = profile.members(aggregate);
    for (std::size_t i = 0; i < members.size(); ++i) {
      const Member& member = members[i];
      if (i > 0 && profile.str(member.name) == profile.str(members[i - 1].name)) continue;
      json.open(profile.str(member.name));
      VMI_TRY_VOID(write_type(json, profile, "type", member.type, 0));
      json.number("offset", member.offset);
      if (member.anonymous != 0) json.boolean("anonymous", true);
      json.close();
    }
    json.close();
    json.string("kind", to_string(aggregate.kind));
    json.close();
  }
  json.close();

  json.open("enums");
  for (std::size_t i = 0; i < profile.enums.size(); ++i) {
    const EnumType& e = profile.enums[i];
    if (i > 0 && profile.str(e.name) == profile.str(profile.enums[i - 1].name)) continue;
    json.open(profile.str(e.name));
    json.number("size", e.size);
    json.string("base", profile.str(e.base));
    json.open("constants");
    std::vector<Enumerator> constants(profile.enumerators(e).begin(), profile.enumerators(e).end());
    std::stable_sort(constants.begin(), constants.end(), [&](const Enumerator& a, const Enumerator& b) {
      return profile.str(a.name) < profile.str(b.name);
    });
    for (std::size_t k = 0; k < constants.size(); ++k) {
      if (k > 0 && profile.str(constants[k].name) == profile.str(constants[k - 1].name)) continue;
      json.number(profile.str(constants[k].name), constants[k].value);
    }
    json.close();
    json.close();
  }
  json.close();

  json.open("symbols");
  for (const Symbol& symbol : profile.symbols) {
    json.open(profile.str(symbol.name));
    if (symbol.type != kNoType) VMI_TRY_VOID(write_type(json, profile, "type", symbol.type, 0));
    json.number("address", symbol.address);
    if (symbol.constant_data.size > 0) json.string("constant_data", base64(profile.str(symbol.constant_data)));
    json.close();
  }
  json.close();

  json.close();
  if (!json.finish()) return make_error(Errc::io, "ISF writer: the output stream failed");
  return {};
}

}  // namespace vmi
