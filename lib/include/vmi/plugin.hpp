// Plugins: named analyses that turn a session into a table of typed cells.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "vmi/expected.hpp"

namespace vmi {

class Session;

enum class ColumnType : std::uint8_t {
  integer,    // int64
  address,    // uint64, shown in hex
  text,       // string
  timestamp,  // int64 nanoseconds since the Unix epoch, UTC
};

struct Column {
  std::string_view name;  // Volatility 3's column name where one exists
  ColumnType type;
};

// A cell holds a value of its column's type, or nothing when the value could not be read.
using Cell = std::variant<std::monostate, std::int64_t, std::uint64_t, std::string>;

struct Row {
  std::vector<Cell> cells;
  std::uint32_t depth = 0;  // nesting level in tree-shaped results (pstree)
};

struct Table {
  std::span<const Column> columns;
  std::vector<Row> rows;
  bool tree = false;
};

struct PluginOption {
  std::string_view name;  // long option, without dashes
  std::string_view help;
  bool takes_value;  // false: a flag
};

// Option values by name; flags are present with an empty value.
struct PluginArgs {
  std::map<std::string, std::string, std::less<>> values;
  bool has(std::string_view name) const { return values.contains(name); }
  // Comma-separated integers, e.g. --pid 1,42; the error names the bad item.
  Expected<std::vector<std::int64_t>> integers(std::string_view name) const;
};

struct Plugin {
  std::string_view name;                      // OS-qualified: "linux.pslist"
  std::string_view short_name;                // "pslist": runs the plugin of the OS found in the image
  std::string_view os;                        // the kernel it needs: "linux"
  std::span<const std::string_view> aliases;  // Volatility 3's names: "linux.pslist.PsList"
  std::string_view description;
  std::span<const Column> columns;
  std::span<const PluginOption> options;
  Expected<Table> (*run)(Session& session, const PluginArgs& args);
};

// The plugin table (plugins/plugins.cpp): one line per plugin.
std::span<const Plugin* const> plugins();
// The plugin with this OS-qualified name or alias ("linux.pslist", "linux.pslist.PsList").
const Plugin* find_plugin(std::string_view name);
// The plugin a name means for a kernel of `os`: its qualified name or alias, or its short name.
const Plugin* find_plugin(std::string_view name, std::string_view os);
// Whether any plugin, of any OS, answers to this short name.
bool is_short_plugin_name(std::string_view name);

}  // namespace vmi
