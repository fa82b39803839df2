// Text, JSON and CSV renderers over typed cells. JSON and CSV use Volatility 3's column names.
#include "render.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <ctime>

namespace vmi::cli {

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        // Kernel strings are bytes, not UTF-8: escape everything outside printable ASCII.
        if (c < 0x20 || c >= 0x7f)
          out += fmt::format("\\u{:04x}", c);
        else
          out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string csv_field(std::string text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

namespace {

std::string format_timestamp(std::int64_t unix_ns) {
  const auto seconds = static_cast<std::time_t>(unix_ns / 1'000'000'000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:%Y-%m-%d %H:%M:%S}.{:06d} UTC", utc, static_cast<int>((unix_ns % 1'000'000'000) / 1000));
}

std::string text_of(const Cell& cell, ColumnType type) {
  if (std::holds_alternative<std::monostate>(cell)) return "-";  // unreadable, as Volatility 3 shows it
  if (const auto* text = std::get_if<std::string>(&cell)) return *text;
  if (const auto* address = std::get_if<std::uint64_t>(&cell)) return fmt::format("{:#x}", *address);
  const std::int64_t number = std::get<std::int64_t>(cell);
  return type == ColumnType::timestamp ? format_timestamp(number) : std::to_string(number);
}

std::string json_value(const Cell& cell, ColumnType type) {
  if (std::holds_alternative<std::monostate>(cell)) return "null";
  if (const auto* text = std::get_if<std::string>(&cell)) return json_string(*text);
  if (const auto* address = std::get_if<std::uint64_t>(&cell)) return std::to_string(*address);
  const std::int64_t number = std::get<std::int64_t>(cell);
  return type == ColumnType::timestamp ? json_string(format_timestamp(number)) : std::to_string(number);
}

void render_text(const Table& table, std::ostream& out) {
  std::vector<std::vector<std::string>> cells;
  std::vector<std::size_t> widths;
  for (const Column& column : table.columns) widths.push_back(column.name.size());
  for (const Row& row : table.rows) {
    auto& line = cells.emplace_back();
    for (std::size_t c = 0; c < table.columns.size(); ++c) {
      std::string text = c < row.cells.size() ? text_of(row.cells[c], table.columns[c].type) : "-";
      if (c == 0 && table.tree && row.depth > 0) text.insert(0, std::string(row.depth, '*') + " ");
      widths[c] = std::max(widths[c], text.size());
      line.push_back(std::move(text));
    }
  }
  auto emit = [&](const std::vector<std::string>& line) {
    std::string text;
    for (std::size_t c = 0; c < line.size(); ++c) {
      text += line[c];
      if (c + 1 < line.size()) text += std::string(widths[c] - line[c].size() + 2, ' ');
    }
    out << text << '\n';
  };
  std::vector<std::string> header;
  for (const Column& column : table.columns) header.emplace_back(column.name);
  emit(header);
  for (const auto& line : cells) emit(line);
}

void render_json(const Table& table, std::ostream& out) {
  // Trees nest children under "__children", as Volatility 3's JSON renderer does.
  std::vector<std::uint32_t> open;  // depths of objects whose children list is open
  out << "[";
  bool first_at_level = true;
  for (const Row& row : table.rows) {
    const std::uint32_t depth = table.tree ? row.depth : 0;
    while (!open.empty() && open.back() >= depth) {
      out << "]}";
      open.pop_back();
      first_at_level = false;
    }
    if (!first_at_level) out << ",";
    out << "\n{";
    for (std::size_t c = 0; c < table.columns.size(); ++c) {
      const Cell& cell = c < row.cells.size() ? row.cells[c] : Cell{};
      out << json_string(table.columns[c].name) << ": " << json_value(cell, table.columns[c].type) << ", ";
    }
    out << "\"__children\": [";
    open.push_back(depth);
    first_at_level = true;
  }
  while (!open.empty()) {
    out << "]}";
    open.pop_back();
  }
  out << "\n]\n";
}

void render_csv(const Table& table, std::ostream& out) {
  std::string line = table.tree ? "TreeDepth," : "";
  for (std::size_t c = 0; c < table.columns.size(); ++c) {
    line += csv_field(std::string(table.columns[c].name)) + (c + 1 < table.columns.size() ? "," : "");
  }
  out << line << '\n';
  for (const Row& row : table.rows) {
    line = table.tree ? std::to_string(row.depth) + "," : "";
    for (std::size_t c = 0; c < table.columns.size(); ++c) {
      const Cell& cell = c < row.cells.size() ? row.cells[c] : Cell{};
      line += csv_field(text_of(cell, table.columns[c].type)) + (c + 1 < table.columns.size() ? "," : "");
    }
    out << line << '\n';
  }
}

}  // namespace

void render(const Table& table, Renderer renderer, std::ostream& out) {
  switch (renderer) {
    case Renderer::table:
      return render_text(table, out);
    case Renderer::json:
      return render_json(table, out);
    case Renderer::csv:
      return render_csv(table, out);
  }
}

}  // namespace vmi::cli
