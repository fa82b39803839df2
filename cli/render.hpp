// Renders plugin tables as aligned text, JSON or CSV. Rendering belongs to the CLI alone.
#pragma once

#include <ostream>
#include <string_view>

#include "vmi/plugin.hpp"

namespace vmi::cli {

enum class Renderer { table, json, csv };

void render(const Table& table, Renderer renderer, std::ostream& out);

}  // namespace vmi::cli
