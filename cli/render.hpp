// Renders plugin rows as aligned text, JSON, JSON lines or CSV. Rendering belongs to the CLI alone.
#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <string_view>

#include "vmi/plugin.hpp"

namespace vmi::cli {

enum class Renderer { table, json, jsonl, csv };

// A row sink that writes as rows arrive: JSON lines and CSV print each row at once, JSON prints
// each row as soon as its place in the tree is known; the table keeps its rows' text until
// finish(), since column widths need every row.
class RenderSink : public RowSink {
 public:
  void begin(std::span<const Column> columns, bool tree) final {
    started_ = true;
    start(columns, tree);
  }
  // Completes the output (closes JSON, prints the table) if it was begun, also after a plugin
  // failed part-way, so what was printed stays well-formed. Call once.
  void finish() {
    if (started_) end();
  }
  // A bar on stderr while a long plugin runs, when stderr is a terminal; erased when done.
  void progress(std::string_view activity, std::uint64_t done, std::uint64_t total) override;

 protected:
  virtual void start(std::span<const Column> columns, bool tree) = 0;
  virtual void end() = 0;

 private:
  bool started_ = false;
};

std::unique_ptr<RenderSink> make_renderer(Renderer renderer, std::ostream& out);

// Renders a whole table (tests, `info`).
void render(const Table& table, Renderer renderer, std::ostream& out);

// A JSON string literal for bytes that need not be UTF-8 (kernel strings are bytes).
std::string json_string(std::string_view text);
// A CSV field, quoted when it holds a comma, quote or line break.
std::string csv_field(std::string text);

}  // namespace vmi::cli
