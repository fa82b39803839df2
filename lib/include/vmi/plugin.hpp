// Plugins: named analyses that stream typed rows from a session to a sink (a renderer, a table).
// The registry lives here, outside Session: a Session knows nothing of plugins.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "vmi/expected.hpp"
#include "vmi/value.hpp"

namespace vmi {

class Session;
class Kernel;
class Diagnostics;

enum class ColumnType : std::uint8_t {
  integer,      // int64
  address,      // uint64, shown in hex
  text,         // string
  timestamp,    // int64 nanoseconds since the Unix epoch, UTC
  boolean,      // bool
  bytes,        // Code: shown as a hexdump
  disassembly,  // Code: shown as x86-64 instructions at its address
};

// Bytes read from the image and the address they were read at.
struct Code {
  std::uint64_t address = 0;
  std::vector<std::uint8_t> bytes;
  bool operator==(const Code&) const = default;
};

// A cell holds a value of its column's type, or why it has none.
using Cell = std::variant<Absence, std::int64_t, std::uint64_t, std::string, bool, Code>;

struct Column {
  std::string_view name;  // Volatility 3's column name where one exists
  ColumnType type;
};

struct Row {
  std::vector<Cell> cells;  // one per column, in column order
  std::uint32_t depth = 0;  // nesting level in tree-shaped results (pstree)
};

// Where a plugin's rows go, one at a time, as the walk produces them.
class RowSink {
 public:
  virtual ~RowSink() = default;
  // Called once, before the first row.
  virtual void begin(std::span<const Column> columns, bool tree) = 0;
  // Returns false to stop the plugin early (a closed pipe, a row limit).
  virtual bool row(const Row& row) = 0;
  // How far a long plugin (a scan of all physical memory) has come: `done` of `total` units of
  // `activity`, called now and then from the plugin's thread. A renderer may draw it on a terminal.
  virtual void progress(std::string_view /*activity*/, std::uint64_t /*done*/, std::uint64_t /*total*/) {}
};

// Every row kept: for library callers and tests that want the whole result.
struct Table {
  std::span<const Column> columns;
  std::vector<Row> rows;
  bool tree = false;
};

class TableSink final : public RowSink {
 public:
  void begin(std::span<const Column> columns, bool tree) override {
    table_.columns = columns;
    table_.tree = tree;
  }
  bool row(const Row& row) override {
    table_.rows.push_back(row);
    return true;
  }
  Table take() { return std::move(table_); }

 private:
  Table table_;
};

// ---------------------------------------------------------------- options

enum class OptionType : std::uint8_t {
  flag,      // --threads
  integers,  // --pid 1,42: comma-separated integers
  text,      // --name kworker
  path,      // --dump-dir out/: must exist
};

struct PluginOption {
  std::string_view name;  // long option, without dashes
  OptionType type;
  std::string_view help;
};

// Option values by name as given (flags present with an empty value); the typed accessors read
// them after check_args() accepted them.
struct PluginArgs {
  std::map<std::string, std::string, std::less<>> values;

  bool flag(std::string_view name) const { return values.contains(name); }
  // Comma-separated integers, e.g. --pid 1,42; the error names the bad item. Empty when absent.
  Expected<std::vector<std::int64_t>> integers(std::string_view name) const;
  // The option's text, or empty when absent.
  std::string_view text(std::string_view name) const;
};

// "flag", "integer list", "text", "path": for help texts.
std::string_view option_type_name(OptionType type);

// Whether `value` is acceptable for `option`: the error names the option and the bad value.
Expected<void> check_option_value(const PluginOption& option, std::string_view value);

// ---------------------------------------------------------------- plugins

// What a plugin needs before it can run; run_plugin() provides it or fails naming what is missing.
enum class Requirement : std::uint8_t {
  image,   // only the physical image
  kernel,  // a detected kernel of the plugin's OS
  vcpus,   // the vCPU registers saved with the image (and the kernel)
};

// What a running plugin is given.
struct PluginContext {
  Session& session;
  const Kernel* kernel;  // set when the plugin requires a kernel, else null
  const PluginArgs& args;
  Diagnostics& diagnostics;
  RowSink& out;
};

struct Plugin {
  std::string_view name;                      // OS-qualified: "linux.pslist"
  std::string_view short_name;                // "pslist": runs the plugin of the OS found in the image
  std::string_view os;                        // the kernel it needs: "linux"
  std::span<const std::string_view> aliases;  // Volatility 3's names: "linux.pslist.PsList"
  std::string_view description;
  Requirement needs;
  std::span<const Column> columns;
  bool tree;  // rows nest by depth (pstree)
  std::span<const PluginOption> options;
  // Streams rows to context.out; an error only when nothing useful could be produced.
  Expected<void> (*run)(PluginContext& context);
};

// The plugin table (plugins/plugins.cpp): one line per plugin.
std::span<const Plugin* const> plugins();
// The plugin with this OS-qualified name or alias ("linux.pslist", "linux.pslist.PsList").
const Plugin* find_plugin(std::string_view name);
// The plugin a name means for a kernel of `os`: its qualified name or alias, or its short name.
const Plugin* find_plugin(std::string_view name, std::string_view os);
// Whether any plugin, of any OS, answers to this short name.
bool is_short_plugin_name(std::string_view name);

// Every option of `args` is one the plugin declares, with a value of the declared type.
Expected<void> check_args(const Plugin& plugin, const PluginArgs& args);

// Runs a plugin by name (a short name follows the OS found in the image), streaming its rows to
// `out`. The error names an unknown plugin, a bad option, or what the plugin required and lacked.
Expected<void> run_plugin(Session& session, std::string_view name, const PluginArgs& args, RowSink& out);
// The same, every row kept.
Expected<Table> run_plugin(Session& session, std::string_view name, const PluginArgs& args = {});

}  // namespace vmi
