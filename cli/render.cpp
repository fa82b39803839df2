// Text, JSON, JSON-lines and CSV renderers over typed cells, shaped like Volatility 3's: column
// names as keys, "__children" for trees in JSON, a first "TreeDepth" column in CSV.
#include "render.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <vector>

#include "vmi/disassembly.hpp"
#include "vmi/text.hpp"

namespace vmi::cli {

void RenderSink::progress(std::string_view activity, std::uint64_t done, std::uint64_t total) {
  static const bool terminal = ::isatty(STDERR_FILENO) == 1;
  if (!terminal || total == 0) return;
  if (done >= total) {
    std::fputs("\r\x1b[K", stderr);  // the rows and warnings that follow start on a clean line
    return;
  }
  constexpr std::uint64_t kWidth = 30;
  fmt::print(stderr, "\r{} [{:<{}}] {:3}% ({} of {} MiB)", activity, std::string(done * kWidth / total, '#'), kWidth,
             done * 100 / total, done >> 20, total >> 20);
  std::fflush(stderr);
}

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (std::size_t at = 0; at < text.size(); ++at) {
    const auto c = static_cast<unsigned char>(text[at]);
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
        // Well-formed UTF-8 passes through; any other byte outside printable ASCII (kernel
        // strings are bytes) is escaped as the code point of its value.
        if (c >= 0x80) {
          const std::size_t length = utf8_sequence_length(text.substr(at));
          if (length != 0) {
            out.append(text.substr(at, length));
            at += length - 1;
            break;
          }
        }
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

std::string hex_bytes(const Code& code, std::string_view separator) {
  std::string text;
  for (std::size_t i = 0; i < code.bytes.size(); ++i) {
    if (i > 0) text += separator;
    text += fmt::format("{:02x}", code.bytes[i]);
  }
  return text;
}

std::string instructions(const Code& code, std::string_view separator) {
  std::string text;
  const auto decoded = disassemble_x86_64(code.bytes, code.address);
  if (!decoded) return "(not disassembled: " + decoded.error().message + ") " + hex_bytes(code, " ");
  std::size_t covered = 0;
  for (const Instruction& instruction : *decoded) {
    if (!text.empty()) text += separator;
    text += fmt::format("{:#x}: {}", instruction.address, instruction.mnemonic);
    if (!instruction.operands.empty()) text += " " + instruction.operands;
    covered += instruction.size;
  }
  // Bytes Capstone could not decode are shown, never dropped.
  if (covered < code.bytes.size()) {
    if (!text.empty()) text += separator;
    text += fmt::format(
        "{:#x}: (bad) {}", code.address + covered,
        hex_bytes(Code{0, {code.bytes.begin() + static_cast<std::ptrdiff_t>(covered), code.bytes.end()}}, " "));
  }
  return text;
}

std::string number_text(const Cell& cell, ColumnType type) {
  if (const auto* unsigned_value = std::get_if<std::uint64_t>(&cell)) {
    return type == ColumnType::address ? fmt::format("{:#x}", *unsigned_value) : std::to_string(*unsigned_value);
  }
  const std::int64_t value = std::get<std::int64_t>(cell);
  if (type == ColumnType::timestamp) return format_timestamp(value);
  if (type == ColumnType::address) return fmt::format("{:#x}", static_cast<std::uint64_t>(value));
  return std::to_string(value);
}

// The text of a cell in the table and CSV; `separator` joins the lines of a multi-line value.
std::string text_of(const Cell& cell, ColumnType type, std::string_view separator) {
  if (const auto* absence = std::get_if<Absence>(&cell)) return *absence == Absence::unreadable ? "-" : "N/A";
  if (const auto* text = std::get_if<std::string>(&cell)) return *text;
  if (const auto* flag = std::get_if<bool>(&cell)) return *flag ? "True" : "False";
  if (const auto* code = std::get_if<Code>(&cell))
    return type == ColumnType::disassembly ? instructions(*code, separator) : hex_bytes(*code, " ");
  return number_text(cell, type);
}

std::string json_value(const Cell& cell, ColumnType type) {
  if (std::holds_alternative<Absence>(cell)) return "null";
  if (const auto* text = std::get_if<std::string>(&cell)) return json_string(*text);
  if (const auto* flag = std::get_if<bool>(&cell)) return *flag ? "true" : "false";
  if (const auto* code = std::get_if<Code>(&cell))
    return json_string(type == ColumnType::disassembly ? instructions(*code, "\n") : hex_bytes(*code, ""));
  if (type == ColumnType::timestamp) return json_string(number_text(cell, type));
  if (const auto* unsigned_value = std::get_if<std::uint64_t>(&cell)) return std::to_string(*unsigned_value);
  return std::to_string(std::get<std::int64_t>(cell));
}

const Cell& cell_at(const Row& row, std::size_t column) {
  static const Cell kMissing = Absence::unreadable;
  return column < row.cells.size() ? row.cells[column] : kMissing;
}

class TextRenderer final : public RenderSink {
 public:
  explicit TextRenderer(std::ostream& out) : out_(out) {}
  void start(std::span<const Column> columns, bool tree) override {
    columns_ = columns;
    tree_ = tree;
    widths_.clear();
    for (const Column& column : columns) widths_.push_back(column.name.size());
  }
  bool row(const Row& row) override {
    auto& line = lines_.emplace_back();
    for (std::size_t c = 0; c < columns_.size(); ++c) {
      std::string text = text_of(cell_at(row, c), columns_[c].type, " ; ");
      if (c == 0 && tree_ && row.depth > 0) text.insert(0, std::string(row.depth, '*') + " ");
      widths_[c] = std::max(widths_[c], text.size());
      line.push_back(std::move(text));
    }
    return true;
  }
  void end() override {
    std::vector<std::string> header;
    for (const Column& column : columns_) header.emplace_back(column.name);
    emit(header);
    for (const auto& line : lines_) emit(line);
    lines_.clear();
  }

 private:
  void emit(const std::vector<std::string>& line) {
    std::string text;
    for (std::size_t c = 0; c < line.size(); ++c) {
      text += line[c];
      if (c + 1 < line.size()) text += std::string(widths_[c] - line[c].size() + 2, ' ');
    }
    out_ << text << '\n';
  }

  std::ostream& out_;
  std::span<const Column> columns_;
  bool tree_ = false;
  std::vector<std::size_t> widths_;
  std::vector<std::vector<std::string>> lines_;
};

// One JSON array; a tree's rows nest under "__children", as Volatility 3's JSON renderer does.
// A row is written when it arrives: only the depths of the objects still open are kept.
class JsonRenderer final : public RenderSink {
 public:
  explicit JsonRenderer(std::ostream& out) : out_(out) {}
  void start(std::span<const Column> columns, bool tree) override {
    columns_ = columns;
    tree_ = tree;
    out_ << "[";
  }
  bool row(const Row& row) override {
    const std::uint32_t depth = tree_ ? row.depth : 0;
    while (!open_.empty() && open_.back() >= depth) {
      out_ << "]}";
      open_.pop_back();
      first_at_level_ = false;
    }
    if (!first_at_level_) out_ << ",";
    out_ << "\n{";
    for (std::size_t c = 0; c < columns_.size(); ++c)
      out_ << json_string(columns_[c].name) << ": " << json_value(cell_at(row, c), columns_[c].type) << ", ";
    out_ << "\"__children\": [";
    open_.push_back(depth);
    first_at_level_ = true;
    return true;
  }
  void end() override {
    while (!open_.empty()) {
      out_ << "]}";
      open_.pop_back();
    }
    out_ << "\n]\n";
  }

 private:
  std::ostream& out_;
  std::span<const Column> columns_;
  bool tree_ = false;
  std::vector<std::uint32_t> open_;  // depths of objects whose children list is open
  bool first_at_level_ = true;
};

// One JSON object per line, flushed as it is written; a tree's rows carry their "TreeDepth".
class JsonLinesRenderer final : public RenderSink {
 public:
  explicit JsonLinesRenderer(std::ostream& out) : out_(out) {}
  void start(std::span<const Column> columns, bool tree) override {
    columns_ = columns;
    tree_ = tree;
  }
  bool row(const Row& row) override {
    std::string line = "{";
    if (tree_) line += "\"TreeDepth\": " + std::to_string(row.depth) + ", ";
    for (std::size_t c = 0; c < columns_.size(); ++c) {
      line += json_string(columns_[c].name) + ": " + json_value(cell_at(row, c), columns_[c].type);
      if (c + 1 < columns_.size()) line += ", ";
    }
    out_ << line << "}\n" << std::flush;
    return static_cast<bool>(out_);
  }
  void end() override {}

 private:
  std::ostream& out_;
  std::span<const Column> columns_;
  bool tree_ = false;
};

class CsvRenderer final : public RenderSink {
 public:
  explicit CsvRenderer(std::ostream& out) : out_(out) {}
  void start(std::span<const Column> columns, bool tree) override {
    columns_ = columns;
    tree_ = tree;
    std::string line = tree ? "TreeDepth," : "";
    for (std::size_t c = 0; c < columns.size(); ++c)
      line += csv_field(std::string(columns[c].name)) + (c + 1 < columns.size() ? "," : "");
    out_ << line << '\n';
  }
  bool row(const Row& row) override {
    std::string line = tree_ ? std::to_string(row.depth) + "," : "";
    for (std::size_t c = 0; c < columns_.size(); ++c)
      line += csv_field(text_of(cell_at(row, c), columns_[c].type, "\n")) + (c + 1 < columns_.size() ? "," : "");
    out_ << line << '\n' << std::flush;
    return static_cast<bool>(out_);
  }
  void end() override {}

 private:
  std::ostream& out_;
  std::span<const Column> columns_;
  bool tree_ = false;
};

}  // namespace

std::unique_ptr<RenderSink> make_renderer(Renderer renderer, std::ostream& out) {
  switch (renderer) {
    case Renderer::json:
      return std::make_unique<JsonRenderer>(out);
    case Renderer::jsonl:
      return std::make_unique<JsonLinesRenderer>(out);
    case Renderer::csv:
      return std::make_unique<CsvRenderer>(out);
    case Renderer::table:
      break;
  }
  return std::make_unique<TextRenderer>(out);
}

void render(const Table& table, Renderer renderer, std::ostream& out) {
  auto sink = make_renderer(renderer, out);
  sink->begin(table.columns, table.tree);
  for (const Row& row : table.rows) sink->row(row);
  sink->finish();
}

}  // namespace vmi::cli
