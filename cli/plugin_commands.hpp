// The plugins as subcommands: short names that follow the image's OS, OS-qualified names with
// Volatility 3's names as aliases, `help PLUGIN`, and the per-OS plugin list for --help.
#pragma once

#include <CLI/CLI.hpp>

#include <deque>
#include <functional>
#include <map>
#include <string>

#include "vmi/plugin.hpp"

namespace vmi::cli {

// What one plugin command was asked to do: the name as typed, the image and the plugin's options.
struct PluginInvocation {
  std::string name;
  std::string image;
  PluginArgs args;
};

// Owns what CLI11 parses into for every plugin subcommand; keep it alive while parsing.
class PluginCommands {
 public:
  // One subcommand per short name ("pslist": the plugin of the OS found in the image) and one
  // per OS-qualified name ("linux.pslist", alias "linux.pslist.PsList"), each with its options.
  PluginCommands(CLI::App& app, std::function<void(const PluginInvocation&)> run);

 private:
  struct Parsed {
    std::string image;
    std::map<std::string, std::string> values;
    std::map<std::string, bool> flags;
  };
  void add(CLI::App& app, const std::string& name, const std::string& description,
           const std::vector<const Plugin*>& plugins, const std::string& group);

  std::function<void(const PluginInvocation&)> run_;
  std::deque<Parsed> parsed_;
};

// "Plugins by OS" for --help: one line a plugin, its qualified and short names and what it does.
std::string plugin_list();
// `help PLUGIN`: the plugin's names, OS, columns and options; an error line for an unknown name.
int print_plugin_help(const std::string& name, std::ostream& out, std::ostream& err);

}  // namespace vmi::cli
