// Plugin subcommands built from the plugin table's declarations, and the help that lists them.
#include "plugin_commands.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ostream>
#include <set>

namespace vmi::cli {

namespace {

constexpr std::string_view kColumnTypeNames[] = {"integer", "address", "text",       "timestamp",
                                                 "boolean", "bytes",   "disassembly"};
constexpr std::string_view kRequirementNames[] = {"the image only", "a kernel", "vCPU registers and a kernel"};

// CLI11 validation from the library's own check, so both accept exactly the same values.
CLI::Validator option_check(const PluginOption& option) {
  return CLI::Validator(
      [option](std::string& value) -> std::string {
        auto checked = check_option_value(option, value);
        if (checked) return {};
        // CLI11 names the option itself.
        std::string message = checked.error().message;
        const std::string prefix = "--" + std::string(option.name) + ": ";
        if (message.starts_with(prefix)) message.erase(0, prefix.size());
        return message;
      },
      std::string(option_type_name(option.type)));
}

// Plugins grouped by short name, in table order.
std::vector<std::pair<std::string, std::vector<const Plugin*>>> by_short_name() {
  std::vector<std::pair<std::string, std::vector<const Plugin*>>> groups;
  for (const Plugin* plugin : plugins()) {
    const std::string name(plugin->short_name);
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& group) { return group.first == name; });
    if (it == groups.end()) it = groups.insert(groups.end(), {name, {}});
    it->second.push_back(plugin);
  }
  return groups;
}

}  // namespace

PluginCommands::PluginCommands(CLI::App& app, std::function<void(const PluginInvocation&)> run) : run_(std::move(run)) {
  for (const auto& [short_name, group] : by_short_name()) {
    std::string oses;
    for (const Plugin* plugin : group) oses += (oses.empty() ? "" : ", ") + std::string(plugin->name);
    add(app, short_name, std::string(group.front()->description) + " (" + oses + ")", group, "Plugins");
  }
  // The qualified names stay out of CLI11's list: plugin_list() shows them per OS.
  for (const Plugin* plugin : plugins())
    add(app, std::string(plugin->name), std::string(plugin->description), {plugin}, "");
}

void PluginCommands::add(CLI::App& app, const std::string& name, const std::string& description,
                         const std::vector<const Plugin*>& plugins, const std::string& group) {
  auto* command = app.add_subcommand(name, description)->group(group);
  if (plugins.size() == 1 && plugins.front()->name == name) {
    for (std::string_view alias : plugins.front()->aliases) command->alias(std::string(alias));
  }
  Parsed& parsed = parsed_.emplace_back();
  command->add_option("image", parsed.image, "memory image");
  std::set<std::string> added;  // a short name shared by several OSes offers each option once
  for (const Plugin* plugin : plugins) {
    for (const PluginOption& option : plugin->options) {
      const std::string option_name(option.name);
      if (!added.insert(option_name).second) continue;
      if (option.type == OptionType::flag) {
        command->add_flag("--" + option_name, parsed.flags[option_name], std::string(option.help));
      } else {
        command->add_option("--" + option_name, parsed.values[option_name], std::string(option.help))
            ->check(option_check(option));
      }
    }
  }
  command->callback([this, name, command, &parsed] {
    PluginInvocation invocation{name, parsed.image, {}};
    for (const auto& [option, value] : parsed.values) {
      if (command->count("--" + option) > 0) invocation.args.values[option] = value;
    }
    for (const auto& [option, set] : parsed.flags) {
      if (set) invocation.args.values[option] = "";
    }
    run_(invocation);
  });
}

std::string plugin_list() {
  std::set<std::string_view> oses;
  for (const Plugin* plugin : plugins()) oses.insert(plugin->os);
  std::string text =
      "Plugins by OS (a short name runs the plugin of the OS found in the image;\n"
      "`vmi-forensics help PLUGIN` shows its columns and options):\n";
  for (std::string_view os : oses) {
    text += fmt::format("  {}:\n", os);
    for (const Plugin* plugin : plugins()) {
      if (plugin->os == os)
        text += fmt::format("    {:<16}{:<10}{}\n", plugin->name, plugin->short_name, plugin->description);
    }
  }
  return text;
}

int print_plugin_help(const std::string& name, std::ostream& out, std::ostream& err) {
  std::vector<const Plugin*> matches;
  for (const Plugin* plugin : plugins()) {
    if (plugin->short_name == name || find_plugin(name) == plugin) matches.push_back(plugin);
  }
  if (matches.empty()) {
    std::string names;
    for (const Plugin* plugin : plugins()) names += (names.empty() ? "" : ", ") + std::string(plugin->name);
    err << "vmi-forensics: no plugin named '" << name << "'; plugins: " << names << '\n';
    return 1;
  }
  for (const Plugin* plugin : matches) {
    out << fmt::format("{} ({}): {}\n", plugin->name, plugin->os, plugin->description);
    out << fmt::format("  short name: {}\n", plugin->short_name);
    out << fmt::format("  needs: {}\n", kRequirementNames[static_cast<std::size_t>(plugin->needs)]);
    if (plugin->tree) out << "  rows form a tree (JSON: __children, CSV: TreeDepth)\n";
    for (std::string_view alias : plugin->aliases) out << fmt::format("  alias: {}\n", alias);
    out << "  columns:\n";
    for (const Column& column : plugin->columns)
      out << fmt::format("    {:<24}{}\n", column.name, kColumnTypeNames[static_cast<std::size_t>(column.type)]);
    out << "  options:\n";
    if (plugin->options.empty()) out << "    (none)\n";
    for (const PluginOption& option : plugin->options) {
      const std::string_view value = option.type == OptionType::flag       ? ""
                                     : option.type == OptionType::integers ? " N[,N...]"
                                     : option.type == OptionType::path     ? " PATH"
                                                                           : " TEXT";
      out << fmt::format("    --{:<20}{}\n", std::string(option.name) + std::string(value), option.help);
    }
  }
  return 0;
}

}  // namespace vmi::cli
