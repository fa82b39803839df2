// The plugin table: one line per plugin.
#include "plugins/plugins.hpp"

#include <algorithm>
#include <charconv>

namespace vmi {

namespace {
constexpr const Plugin* kPlugins[] = {
    &kPslistPlugin,
    &kPstreePlugin,
};
}  // namespace

std::span<const Plugin* const> plugins() { return kPlugins; }

const Plugin* find_plugin(std::string_view name) {
  for (const Plugin* plugin : kPlugins) {
    if (plugin->name == name || std::ranges::find(plugin->aliases, name) != plugin->aliases.end()) return plugin;
  }
  return nullptr;
}

const Plugin* find_plugin(std::string_view name, std::string_view os) {
  if (const Plugin* plugin = find_plugin(name)) return plugin;
  for (const Plugin* plugin : kPlugins) {
    if (plugin->short_name == name && plugin->os == os) return plugin;
  }
  return nullptr;
}

bool is_short_plugin_name(std::string_view name) {
  return std::ranges::any_of(kPlugins, [&](const Plugin* plugin) { return plugin->short_name == name; });
}

Expected<std::vector<std::int64_t>> PluginArgs::integers(std::string_view name) const {
  std::vector<std::int64_t> numbers;
  auto it = values.find(name);
  if (it == values.end()) return numbers;
  std::string_view rest = it->second;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    std::int64_t number = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), number);
    if (ec != std::errc() || end != item.data() + item.size()) {
      return make_error(Errc::invalid_argument,
                        "--" + std::string(name) + ": '" + std::string(item) + "' is not an integer");
    }
    numbers.push_back(number);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return numbers;
}

}  // namespace vmi
