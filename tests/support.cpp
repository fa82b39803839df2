// Test helpers that need more than a header: child processes (the CLI, compilers, binutils) with
// their output captured, format fixtures opened through the library, peak RSS measurement, and
// readers of profile sources that do not go through the library (ISF JSON, nm, readelf).
#include "support.hpp"

#include <doctest/doctest.h>
#include <malloc.h>
#include <simdjson.h>
#include <sys/wait.h>

#include <cstdio>
#include <set>
#include <sstream>
#include <string_view>
#include <type_traits>

namespace vmi::test {

CommandResult run_command(const std::vector<std::string>& argv) {
  const auto dir = scratch_dir("command-run-" + std::to_string(::getpid()));
  // Each argument single-quoted for the shell, its own single quotes as '\''.
  auto quoted = [](const std::string& arg) {
    std::string text = "'";
    for (char c : arg) text += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return text + "'";
  };
  std::string command;
  for (const auto& arg : argv) command += (command.empty() ? "" : " ") + quoted(arg);
  command += " >'" + (dir / "out").string() + "' 2>'" + (dir / "err").string() + "' </dev/null";
  const int status = std::system(command.c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_file(dir / "out");
  result.err = read_file(dir / "err");
  return result;
}

std::filesystem::path FormatFixtures::write(const std::string& name, const std::string& bytes) const {
  scratch_dir(format + "-" + name);
  write_file(path(name), bytes);
  return path(name);
}

std::string FormatFixtures::open_error(const std::string& name, const std::string& bytes) const {
  auto image = open_image(write(name, bytes));
  REQUIRE_FALSE(image.has_value());
  return image.error().message;
}

CommandResult run_cli(const std::vector<std::string>& args) {
  std::vector<std::string> argv{cli_path().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

double peak_rss_growth_mib(const std::function<void()>& work) {
  auto resident_kib = [](std::string_view key) {
    std::istringstream status(read_file("/proc/self/status"));
    for (std::string line; std::getline(status, line);) {
      if (line.starts_with(key)) return std::stod(line.substr(key.size()));
    }
    return -1.0;
  };
  malloc_trim(0);  // memory an earlier test freed would otherwise be reused without growing RSS
  write_file("/proc/self/clear_refs", "5");
  const double before = resident_kib("VmRSS:");
  // The reset took: the high-water mark is now about the current RSS, not an earlier test's peak.
  REQUIRE(before > 0);
  REQUIRE(resident_kib("VmHWM:") < before + 1024);
  work();
  const double peak = resident_kib("VmHWM:");
  REQUIRE(peak >= before);
  return (peak - before) / 1024;
}

// ---------------------------------------------------------------------------------------------
// Independent readings of profile sources.

namespace {

namespace dom = simdjson::dom;

std::uint64_t json_u64(dom::element value) {
  if (value.is_int64()) return static_cast<std::uint64_t>(value.get_int64().value());
  return value.get_uint64().value();
}

std::int64_t json_i64(dom::element value) {
  if (value.is_int64()) return value.get_int64().value();
  return static_cast<std::int64_t>(value.get_uint64().value());
}

std::string json_string(dom::element value) { return std::string(value.get_string().value()); }

// By value: an object taken out of a temporary simdjson_result, safe to iterate.
dom::object json_object(dom::element value) { return value.get_object().value(); }

std::string base64_decode(std::string_view text) {
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (const char c : text) {
    int v = -1;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    if (c >= '0' && c <= '9') v = c - '0' + 52;
    if (c == '+') v = 62;
    if (c == '/') v = 63;
    if (v < 0) continue;  // '=' padding
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  return out;
}

// An ISF type descriptor as text (see IsfField).
std::string json_type_text(dom::element type, int depth = 0) {
  REQUIRE(depth < 32);
  const std::string kind = json_string(type["kind"].value());
  auto inner = [&](const char* key) { return "(" + json_type_text(type[key].value(), depth + 1) + ")"; };
  if (kind == "pointer") return "pointer" + inner("subtype");
  if (kind == "array") return "array " + std::to_string(json_u64(type["count"].value())) + inner("subtype");
  if (kind == "bitfield") {
    return "bitfield " + std::to_string(json_u64(type["bit_position"].value())) + ":" +
           std::to_string(json_u64(type["bit_length"].value())) + inner("type");
  }
  if (kind == "function") return "function";
  if (kind == "void") return "base void";
  return kind + " " + json_string(type["name"].value());
}

std::string profile_type_text(const Profile& profile, TypeId id, int depth = 0) {
  if (id == kNoType) return "";
  if (id >= profile.types.size() || depth >= 32) return "?";
  const TypeDesc& t = profile.type(id);
  auto inner = [&] { return "(" + profile_type_text(profile, t.subtype, depth + 1) + ")"; };
  switch (t.kind) {
    case TypeKind::pointer:
      return "pointer" + inner();
    case TypeKind::array:
      return "array " + std::to_string(t.count) + inner();
    case TypeKind::bitfield:
      return "bitfield " + std::to_string(t.bit_position) + ":" + std::to_string(t.bit_length) + inner();
    case TypeKind::function:
      return "function";
    case TypeKind::void_:
      return "base void";
    default:
      return std::string(to_string(t.kind)) + " " + std::string(profile.str(t.name));
  }
}

std::string base_kind_text(BaseKind kind) {
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
  return "?";
}

std::string describe(const IsfField& f) {
  return "offset " + std::to_string(f.offset) + (f.anonymous ? " anonymous " : " ") + f.type;
}

std::string describe(const IsfEnum& e) {
  std::string text = "size " + std::to_string(e.size) + " base " + e.base + " {";
  for (const auto& [name, value] : e.constants) text += " " + name + "=" + std::to_string(value);
  return text + " }";
}

std::string describe(const IsfBaseType& b) {
  return b.kind + " size " + std::to_string(b.size) + (b.is_signed ? " signed" : " unsigned");
}

std::string describe(const IsfSymbol& s) {
  return "address " + std::to_string(s.address) + " type '" + s.type + "' constant_data " +
         std::to_string(s.constant_data.size()) + " bytes";
}

// Appends the differences between two maps of one section.
template <class Map>
void map_differences(const std::string& section, const Map& a, const Map& b, std::vector<std::string>& out,
                     std::size_t& total, std::size_t limit) {
  auto note = [&](std::string text) {
    if (++total <= limit) out.push_back(section + " " + std::move(text));
  };
  for (const auto& [name, value] : a) {
    const auto other = b.find(name);
    if (other == b.end()) {
      note("'" + name + "': only in the first");
    } else if (!(value == other->second)) {
      // User types: name the first differing field rather than printing both whole.
      if constexpr (std::is_same_v<typename Map::mapped_type, IsfUserType>) {
        if (value.kind != other->second.kind || value.size != other->second.size) {
          note("'" + name + "': " + value.kind + " size " + std::to_string(value.size) + " vs " + other->second.kind +
               " size " + std::to_string(other->second.size));
        } else {
          std::string fields;
          for (const auto& [field, info] : value.fields) {
            const auto it = other->second.fields.find(field);
            if (it == other->second.fields.end()) {
              fields += " " + field + " only in the first;";
            } else if (!(info == it->second)) {
              fields += " " + field + ": " + describe(info) + " vs " + describe(it->second) + ";";
            }
          }
          for (const auto& [field, info] : other->second.fields) {
            if (!value.fields.contains(field)) fields += " " + field + " only in the second;";
          }
          note("'" + name + "':" + fields);
        }
      } else {
        note("'" + name + "': " + describe(value) + " vs " + describe(other->second));
      }
    }
  }
  for (const auto& [name, value] : b) {
    if (!a.contains(name)) note("'" + name + "': only in the second");
  }
}

}  // namespace

IsfModel read_isf_model(const std::filesystem::path& path) {
  const std::string name = path.filename().string();
  std::string text;
  if (name.ends_with(".xz") || name.ends_with(".zst")) {
    const auto result = run_command({name.ends_with(".xz") ? "xz" : "zstd", "-dc", path.string()});
    REQUIRE_MESSAGE(result.exit_code == 0, "decompressing " << path << ": " << result.err);
    text = result.out;
  } else {
    text = read_file(path);
  }
  REQUIRE_MESSAGE(!text.empty(), path);
  const simdjson::padded_string padded(text.data(), text.size());
  dom::parser parser;
  dom::element root;
  const auto error = parser.parse(padded).get(root);
  REQUIRE_MESSAGE(error == simdjson::SUCCESS, path << ": " << simdjson::error_message(error));

  IsfModel model;
  for (const auto section : json_object(root)) {
    const std::string_view key = section.key;
    const dom::element value = section.value;
    if (key == "metadata") {
      for (const auto entry : json_object(value)) {
        if (entry.key == "format") {
          model.format = json_string(entry.value);
        } else if (entry.key == "producer") {
          std::string producer_name, version;
          for (const auto p : json_object(entry.value)) {
            if (p.key == "name") producer_name = json_string(p.value);
            if (p.key == "version") version = json_string(p.value);
          }
          model.producer = version.empty() ? producer_name : producer_name + " " + version;
        } else if (entry.key == "linux" || entry.key == "windows" || entry.key == "mac") {
          model.os = std::string(entry.key);
        }
      }
    } else if (key == "base_types") {
      for (const auto entry : json_object(value)) {
        IsfBaseType& b = model.base_types[std::string(entry.key)];
        b.size = json_u64(entry.value["size"].value());
        b.is_signed = entry.value["signed"].get_bool().value();
        b.kind = json_string(entry.value["kind"].value());
      }
    } else if (key == "user_types") {
      for (const auto entry : json_object(value)) {
        IsfUserType& t = model.user_types[std::string(entry.key)];
        t.kind = json_string(entry.value["kind"].value());
        t.size = json_u64(entry.value["size"].value());
        for (const auto field : json_object(entry.value["fields"].value())) {
          IsfField& f = t.fields[std::string(field.key)];
          f.offset = json_u64(field.value["offset"].value());
          f.type = json_type_text(field.value["type"].value());
          auto anonymous = field.value["anonymous"];
          f.anonymous = anonymous.error() == simdjson::SUCCESS && anonymous.value().get_bool().value();
        }
      }
    } else if (key == "enums") {
      for (const auto entry : json_object(value)) {
        IsfEnum& e = model.enums[std::string(entry.key)];
        e.size = json_u64(entry.value["size"].value());
        e.base = json_string(entry.value["base"].value());
        for (const auto constant : json_object(entry.value["constants"].value()))
          e.constants[std::string(constant.key)] = json_i64(constant.value);
      }
    } else if (key == "symbols") {
      for (const auto entry : json_object(value)) {
        IsfSymbol& s = model.symbols[std::string(entry.key)];
        s.address = json_u64(entry.value["address"].value());
        if (auto type = entry.value["type"]; type.error() == simdjson::SUCCESS) s.type = json_type_text(type.value());
        if (auto data = entry.value["constant_data"]; data.error() == simdjson::SUCCESS)
          s.constant_data = base64_decode(json_string(data.value()));
      }
    }
  }
  return model;
}

const IsfModel& shipped_isf_model() {
  static const IsfModel model = read_isf_model(shipped_profile());
  return model;
}

IsfModel isf_model_of(const Profile& profile) {
  IsfModel model;
  model.os = std::string(profile.os());
  model.producer = std::string(profile.producer());
  model.format = std::string(profile.format_version());
  for (const BaseType& b : profile.base_types) {
    model.base_types.try_emplace(std::string(profile.str(b.name)),
                                 IsfBaseType{b.size, b.is_signed != 0, base_kind_text(b.kind)});
  }
  for (const Aggregate& a : profile.aggregates) {
    IsfUserType t{std::string(to_string(a.kind)), a.size, {}};
    for (const Member& m : profile.members(a)) {
      t.fields.try_emplace(std::string(profile.str(m.name)),
                           IsfField{m.offset, m.anonymous != 0, profile_type_text(profile, m.type)});
    }
    model.user_types.try_emplace(std::string(profile.str(a.name)), std::move(t));
  }
  for (const EnumType& e : profile.enums) {
    IsfEnum out{e.size, std::string(profile.str(e.base)), {}};
    for (const Enumerator& v : profile.enumerators(e))
      out.constants.try_emplace(std::string(profile.str(v.name)), v.value);
    model.enums.try_emplace(std::string(profile.str(e.name)), std::move(out));
  }
  for (const Symbol& s : profile.symbols) {
    model.symbols.try_emplace(std::string(profile.str(s.name)), IsfSymbol{s.address, profile_type_text(profile, s.type),
                                                                          std::string(profile.str(s.constant_data))});
  }
  return model;
}

std::vector<std::string> isf_model_differences(const IsfModel& a, const IsfModel& b, std::size_t limit) {
  std::vector<std::string> out;
  std::size_t total = 0;
  auto metadata = [&](const char* what, const std::string& x, const std::string& y) {
    if (x != y && ++total <= limit) out.push_back(std::string("metadata ") + what + ": '" + x + "' vs '" + y + "'");
  };
  metadata("os", a.os, b.os);
  metadata("producer", a.producer, b.producer);
  metadata("format", a.format, b.format);
  map_differences("base_types", a.base_types, b.base_types, out, total, limit);
  map_differences("user_types", a.user_types, b.user_types, out, total, limit);
  map_differences("enums", a.enums, b.enums, out, total, limit);
  map_differences("symbols", a.symbols, b.symbols, out, total, limit);
  if (total > limit) out.push_back("... " + std::to_string(total - limit) + " more differences");
  return out;
}

std::map<std::string, IsfField> isf_named_fields(const IsfModel& isf, const std::string& type) {
  std::map<std::string, IsfField> out;
  const std::function<void(const std::string&, std::uint64_t, int)> add = [&](const std::string& name,
                                                                              std::uint64_t base, int depth) {
    REQUIRE(depth < 8);
    const auto found = isf.user_types.find(name);
    REQUIRE_MESSAGE(found != isf.user_types.end(), "no user type " << name);
    for (const auto& [field, info] : found->second.fields) {
      if (info.anonymous) {
        // "struct unnamed_..." or "union unnamed_...": its fields belong to the parent.
        const auto space = info.type.find(' ');
        REQUIRE(space != std::string::npos);
        add(info.type.substr(space + 1), base + info.offset, depth + 1);
        continue;
      }
      IsfField flat = info;
      flat.offset += base;
      out.emplace(field, std::move(flat));
    }
  };
  add(type, 0, 0);
  return out;
}

std::optional<std::uint64_t> isf_size_of(const IsfModel& isf, std::string_view type) {
  std::uint64_t multiplier = 1;
  for (int depth = 0; depth < 32; ++depth) {
    // "<kind>[ <detail>](<inner>)" or "<kind> <name>".
    const auto open = type.find('(');
    const auto space = type.find(' ');
    const std::string_view kind = type.substr(0, std::min(open, space));
    if (kind == "pointer") {
      const auto pointer = isf.base_types.find("pointer");
      if (pointer == isf.base_types.end()) return std::nullopt;
      return multiplier * pointer->second.size;
    }
    if (kind == "array" || kind == "bitfield") {
      if (open == std::string_view::npos || !type.ends_with(')')) return std::nullopt;
      if (kind == "array") multiplier *= std::stoull(std::string(type.substr(space + 1, open - space - 1)));
      type = type.substr(open + 1, type.size() - open - 2);
      continue;
    }
    if (space == std::string_view::npos) return std::nullopt;  // "function", ""
    const std::string name(type.substr(space + 1));
    if (kind == "base") {
      const auto found = isf.base_types.find(name);
      return found == isf.base_types.end() ? std::nullopt : std::optional(multiplier * found->second.size);
    }
    if (kind == "enum") {
      const auto found = isf.enums.find(name);
      return found == isf.enums.end() ? std::nullopt : std::optional(multiplier * found->second.size);
    }
    const auto found = isf.user_types.find(name);
    return found == isf.user_types.end() ? std::nullopt : std::optional(multiplier * found->second.size);
  }
  return std::nullopt;
}

std::string isf_banner(const IsfModel& isf) {
  const auto banner = isf.symbols.find("linux_banner");
  if (banner == isf.symbols.end()) return {};
  std::string text = banner->second.constant_data;
  while (!text.empty() && (text.back() == '\0' || text.back() == '\n')) text.pop_back();
  return text;
}

std::map<std::string, std::vector<std::uint64_t>> nm_symbols(const std::filesystem::path& elf) {
  const auto result = run_command({"nm", elf.string()});
  REQUIRE_MESSAGE(result.exit_code == 0, "nm " << elf << ": " << result.err);
  std::map<std::string, std::vector<std::uint64_t>> symbols;
  std::istringstream in(result.out);
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string address, type, name;
    if (!(fields >> address >> type >> name)) continue;  // undefined symbols have no address
    symbols[name].push_back(std::stoull(address, nullptr, 16));
  }
  REQUIRE_MESSAGE(!symbols.empty(), "nm listed no symbols in " << elf);
  return symbols;
}

std::map<std::string, ElfSection> readelf_sections(const std::filesystem::path& elf) {
  const auto result = run_command({"readelf", "-S", "-W", elf.string()});
  REQUIRE_MESSAGE(result.exit_code == 0, "readelf -S " << elf << ": " << result.err);
  std::map<std::string, ElfSection> sections;
  std::istringstream in(result.out);
  for (std::string line; std::getline(in, line);) {
    // "  [22] .BTF              PROGBITS        ffffffff824c1b88 16c1b88 42866d 00   A  0   0  1"
    const auto open = line.find('[');
    const auto close = line.find(']');
    if (open == std::string::npos || close == std::string::npos || close < open) continue;
    const std::string index = line.substr(open + 1, close - open - 1);
    if (index.find_first_not_of(' ') == std::string::npos ||
        index.find_first_not_of("0123456789 ") != std::string::npos || std::stoul(index) == 0) {
      continue;  // the header line ("[Nr]") and the null section
    }
    std::istringstream fields(line.substr(close + 1));
    std::string name, type, address, offset, size;
    if (!(fields >> name >> type >> address >> offset >> size)) continue;
    sections[name] =
        ElfSection{std::stoull(address, nullptr, 16), std::stoull(offset, nullptr, 16), std::stoull(size, nullptr, 16)};
  }
  REQUIRE_MESSAGE(!sections.empty(), "readelf listed no sections in " << elf);
  return sections;
}

}  // namespace vmi::test
