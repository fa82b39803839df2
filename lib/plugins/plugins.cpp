// The plugin table (one line per plugin), name lookup, option checks and running a plugin.
#include "plugins/plugins.hpp"

#include <algorithm>
#include <charconv>
#include <filesystem>

#include "vmi/kernel.hpp"
#include "vmi/session.hpp"

namespace vmi {

namespace {
constexpr const Plugin* kPlugins[] = {
    &kPslistPlugin,             // linux.pslist
    &kPstreePlugin,             // linux.pstree
    &kLsmodPlugin,              // linux.lsmod
    &kLsofPlugin,               // linux.lsof
    &kSockstatPlugin,           // linux.sockstat
    &kPsauxPlugin,              // linux.psaux
    &kEnvarsPlugin,             // linux.envars
    &kCpusPlugin,               // linux.cpus
    &kSyscallsPlugin,           // linux.syscalls
    &kSyscallLogPlugin,         // linux.syscall_log
    &kTimelinePlugin,           // linux.timeline
    &kTimelineBodyPlugin,       // linux.timeline_body
    &kMapsPlugin,               // linux.proc.maps
    &kCapabilitiesPlugin,       // linux.capabilities
    &kKmsgPlugin,               // linux.kmsg
    &kMountinfoPlugin,          // linux.mountinfo
    &kElfsPlugin,               // linux.elfs
    &kMalfindPlugin,            // linux.malfind
    &kCheckSyscallPlugin,       // linux.check_syscall
    &kCheckIdtPlugin,           // linux.check_idt
    &kHiddenModulesPlugin,      // linux.hidden_modules
    &kModxviewPlugin,           // linux.modxview
    &kCheckCredsPlugin,         // linux.check_creds
    &kPsscanPlugin,             // linux.psscan
    &kPidhashtablePlugin,       // linux.pidhashtable
    &kCheckAfinfoPlugin,        // linux.check_afinfo
    &kTtyCheckPlugin,           // linux.tty_check
    &kKeyboardNotifiersPlugin,  // linux.keyboard_notifiers
    &kWindowsPslistPlugin,      // windows.pslist
    &kWindowsPstreePlugin,      // windows.pstree
    &kWindowsModulesPlugin,     // windows.modules
    &kWindowsDlllistPlugin,     // windows.dlllist
    &kWindowsCmdlinePlugin,     // windows.cmdline
    &kWindowsPsscanPlugin,      // windows.psscan
    &kWindowsHandlesPlugin,     // windows.handles
};

constexpr std::string_view kOptionTypeNames[] = {"flag", "integer list", "text", "path"};

Expected<std::vector<std::int64_t>> parse_integers(std::string_view name, std::string_view list) {
  std::vector<std::int64_t> numbers;
  std::string_view rest = list;
  while (true) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    // Decimal, or hexadecimal after 0x (addresses).
    const bool hexadecimal = item.starts_with("0x") || item.starts_with("0X");
    const std::string_view digits = hexadecimal ? item.substr(2) : item;
    std::int64_t number = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), number, hexadecimal ? 16 : 10);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
      return make_error(Errc::invalid_argument, "--" + std::string(name) + ": '" + std::string(item) +
                                                    "' is not an integer (expected a comma-separated list)");
    }
    numbers.push_back(number);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return numbers;
}

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

std::string_view option_type_name(OptionType type) { return kOptionTypeNames[static_cast<std::size_t>(type)]; }

Expected<void> check_option_value(const PluginOption& option, std::string_view value) {
  switch (option.type) {
    case OptionType::flag:
      if (!value.empty())
        return make_error(Errc::invalid_argument, "--" + std::string(option.name) + " is a flag and takes no value");
      return {};
    case OptionType::integers:
      VMI_TRY_VOID(parse_integers(option.name, value));
      return {};
    case OptionType::text:
      return {};
    case OptionType::path: {
      std::error_code error;
      if (!std::filesystem::exists(std::filesystem::path(value), error)) {
        return make_error(Errc::not_found,
                          "--" + std::string(option.name) + ": '" + std::string(value) + "' does not exist");
      }
      return {};
    }
  }
  return {};
}

Expected<std::vector<std::int64_t>> PluginArgs::integers(std::string_view name) const {
  auto it = values.find(name);
  if (it == values.end()) return std::vector<std::int64_t>{};
  return parse_integers(name, it->second);
}

std::string_view PluginArgs::text(std::string_view name) const {
  auto it = values.find(name);
  return it == values.end() ? std::string_view{} : std::string_view(it->second);
}

Expected<void> check_args(const Plugin& plugin, const PluginArgs& args) {
  for (const auto& [name, value] : args.values) {
    auto option = std::ranges::find(plugin.options, name, &PluginOption::name);
    if (option == plugin.options.end()) {
      return make_error(Errc::invalid_argument,
                        "plugin '" + std::string(plugin.name) + "' has no option --" + std::string(name));
    }
    VMI_TRY_VOID(check_option_value(*option, value));
  }
  return {};
}

Expected<void> run_plugin(Session& session, std::string_view name, const PluginArgs& args, RowSink& out) {
  const Plugin* plugin = find_plugin(name);
  if (plugin == nullptr && !is_short_plugin_name(name))
    return make_error(Errc::invalid_argument, "no plugin named '" + std::string(name) + "'");
  const Kernel* kernel = nullptr;
  if (plugin == nullptr || plugin->needs != Requirement::image) {
    kernel = VMI_TRY(session.kernel());
    // A short name means the plugin of the OS found in the image.
    if (plugin == nullptr) plugin = find_plugin(name, kernel->os());
    if (plugin == nullptr) {
      return make_error(Errc::unsupported, "no " + std::string(kernel->os()) + " plugin named '" + std::string(name) +
                                               "' (the image holds a " + std::string(kernel->os()) + " kernel)");
    }
    if (kernel->os() != plugin->os) {
      return make_error(Errc::unsupported, "plugin '" + std::string(plugin->name) + "' needs a " +
                                               std::string(plugin->os) + " kernel, the image holds " +
                                               std::string(kernel->os()));
    }
  }
  if (plugin->needs == Requirement::vcpus && session.image().cpu_states().empty()) {
    return make_error(Errc::unsupported, "plugin '" + std::string(plugin->name) + "' needs vCPU registers, and " +
                                             std::string(session.image().name()) + " holds none");
  }
  VMI_TRY_VOID(check_args(*plugin, args));
  out.begin(plugin->columns, plugin->tree);
  PluginContext context{session, plugin->needs == Requirement::image ? nullptr : kernel, args, session.diagnostics(),
                        out};
  return plugin->run(context);
}

Expected<std::size_t> scan_jobs(const PluginArgs& args) {
  const auto jobs = VMI_TRY(args.integers("jobs"));
  if (jobs.empty()) return std::size_t{0};
  if (jobs.size() != 1 || jobs.front() < 1 || jobs.front() > 1024)
    return make_error(Errc::invalid_argument, "--jobs takes one number from 1 to 1024");
  return static_cast<std::size_t>(jobs.front());
}

Expected<Table> run_plugin(Session& session, std::string_view name, const PluginArgs& args) {
  TableSink sink;
  VMI_TRY_VOID(run_plugin(session, name, args, sink));
  return sink.take();
}

}  // namespace vmi
