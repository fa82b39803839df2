// System.map reader: "ffffffff81000000 T _text" lines into symbol names and addresses.
#include <fstream>
#include <unordered_map>

#include "vmi/vmlinux.hpp"

namespace vmi {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::optional<std::uint64_t> parse_hex(std::string_view text) {
  if (text.empty() || text.size() > 16) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : text) {
    int digit = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
    if (digit < 0) return std::nullopt;
    value = value << 4 | static_cast<std::uint64_t>(digit);
  }
  return value;
}

// One symbol line, or nothing when it does not have the System.map shape.
std::optional<MapSymbol> parse_line(std::string_view line) {
  std::string_view fields[5];
  std::size_t count = 0;
  for (std::size_t i = 0; i < line.size();) {
    if (is_blank(line[i])) {
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < line.size() && !is_blank(line[end])) ++end;
    if (count == 5) return std::nullopt;
    fields[count++] = line.substr(i, end - i);
    i = end;
  }
  // kallsyms lines of modules carry a fourth column, "[module]".
  const bool module_column = count == 4 && fields[3].size() > 2 && fields[3].front() == '[' && fields[3].back() == ']';
  if (count != 3 && !module_column) return std::nullopt;
  const auto address = parse_hex(fields[0]);
  const char type = fields[1].size() == 1 ? fields[1][0] : '\0';
  const bool type_ok = (type >= 'a' && type <= 'z') || (type >= 'A' && type <= 'Z') || type == '?';
  if (!address || !type_ok || fields[2].size() > kMaxSymbolNameLength) return std::nullopt;
  return MapSymbol{std::string(fields[2]), *address, type};
}

}  // namespace

Expected<SystemMap> parse_system_map(std::string_view text, std::string_view origin) {
  SystemMap map;
  std::unordered_map<std::string, std::size_t> index;  // name -> position in map.symbols
  std::size_t first_bad_line = 0;
  std::size_t line_number = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    auto symbol = parse_line(line);
    if (!symbol) {
      if (map.malformed_lines++ == 0) first_bad_line = line_number;
      if (map.malformed_lines > kMaxSystemMapBadLines) {
        return make_error(Errc::bad_format,
                          std::string(origin) + ": not a System.map: " + std::to_string(map.malformed_lines) +
                              " malformed lines, the first at line " + std::to_string(first_bad_line));
      }
      continue;
    }
    auto [it, inserted] = index.try_emplace(symbol->name, map.symbols.size());
    if (!inserted) {
      map.symbols[it->second] = std::move(*symbol);
      map.duplicate_names++;
      continue;
    }
    if (map.symbols.size() == kMaxSystemMapSymbols) {
      return make_error(Errc::limit_exceeded, std::string(origin) + ": more than " +
                                                  std::to_string(kMaxSystemMapSymbols) + " symbols at line " +
                                                  std::to_string(line_number));
    }
    map.symbols.push_back(std::move(*symbol));
  }
  if (map.symbols.empty()) {
    std::string message = std::string(origin) + ": System.map has no symbols";
    if (map.malformed_lines > 0) message += " (" + std::to_string(map.malformed_lines) + " malformed lines)";
    if (text.find("The real System.map is in") != std::string_view::npos) {
      message += "; this is Debian's placeholder, the real map is in the linux-image-<version>-dbg package";
    }
    return make_error(Errc::bad_format, std::move(message));
  }
  return map;
}

Expected<SystemMap> load_system_map(const std::filesystem::path& path) {
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) return make_error(Errc::io, path.string() + ": " + ec.message());
  if (size > kMaxSystemMapBytes) {
    return make_error(Errc::limit_exceeded, path.string() + ": " + std::to_string(size) +
                                                " bytes exceeds the System.map cap of " +
                                                std::to_string(kMaxSystemMapBytes));
  }
  std::ifstream in(path, std::ios::binary);
  std::string text(static_cast<std::size_t>(size), '\0');
  if (!in || !in.read(text.data(), static_cast<std::streamsize>(size))) {
    return make_error(Errc::io, path.string() + ": cannot read " + std::to_string(size) + " bytes");
  }
  return parse_system_map(text, path.string());
}

}  // namespace vmi
