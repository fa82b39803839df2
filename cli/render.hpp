// Renders plugin tables as aligned text, JSON or CSV. Rendering belongs to the CLI alone.
#pragma once

#include <ostream>
#include <string>
#include <string_view>

#include "vmi/plugin.hpp"

namespace vmi::cli {

enum class Renderer { table, json, csv };

void render(const Table& table, Renderer renderer, std::ostream& out);

// A JSON string literal for bytes that need not be UTF-8 (kernel strings are bytes).
std::string json_string(std::string_view text);
// A CSV field, quoted when it holds a comma, quote or line break.
std::string csv_field(std::string text);

}  // namespace vmi::cli
