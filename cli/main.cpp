// vmi-forensics: the command line. Parses options, opens a session, runs, renders. Thin.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <optional>

#include "info.hpp"
#include "plugin_commands.hpp"
#include "render.hpp"
#include "vmi/convert.hpp"
#include "vmi/isf.hpp"
#include "vmi/plugin.hpp"
#include "vmi/profile_store.hpp"
#include "vmi/session.hpp"
#include "vmi/snapshot_diff.hpp"
#include "vmi/vmlinux.hpp"

namespace {

namespace fs = std::filesystem;
using vmi::Errc;

// Exit codes (documented in README.md and --help).
enum Exit : int {
  kOk = 0,
  kUsage = 1,     // bad command line
  kBadImage = 2,  // the image cannot be opened or is not a memory image
  kNoKernel = 3,  // no supported kernel, or no profile matches it
  kFailed = 4,    // the analysis itself failed (unreadable structures, bad profile)
};

constexpr const char* kExitCodes =
    "Exit codes: 0 success (warnings may be printed), 1 bad command line, 2 image unreadable or not a memory image,\n"
    "3 no supported kernel or no matching profile, 4 analysis or profile build failed.";

int exit_code_for(const vmi::Error& error) {
  switch (error.code) {
    case Errc::io:
    case Errc::bad_format:
    case Errc::truncated:
      return kBadImage;
    case Errc::not_found:
    case Errc::profile_mismatch:
      return kNoKernel;
    case Errc::invalid_argument:
      return kUsage;
    default:
      return kFailed;
  }
}

struct GlobalOptions {
  std::string image;
  std::vector<std::string> profiles;
  std::string renderer = "table";
  bool no_cache = false;
  bool no_recover = false;
  std::string cache_dir;
};

// `source` names the image when a command reads more than one ("first snapshot: ").
void print_warnings(vmi::Session& session, std::string_view source = "") {
  for (const auto& note : session.diagnostics().notes()) std::cerr << source << note << '\n';
  for (const auto& warning : session.diagnostics().warnings()) std::cerr << "warning: " << source << warning << '\n';
  if (session.diagnostics().dropped() > 0)
    std::cerr << "warning: " << source << session.diagnostics().dropped() << " more warnings not shown\n";
}

int fail(const vmi::Error& error, int code) {
  std::cerr << "vmi-forensics: " << error.message << '\n';
  return code;
}

vmi::Expected<vmi::Session> open_session(const GlobalOptions& options, const std::string& image) {
  const std::string path = image.empty() ? options.image : image;
  if (path.empty())
    return vmi::make_error(Errc::invalid_argument, "no image given (vmi-forensics PLUGIN IMAGE, or -f IMAGE)");
  vmi::SessionOptions session_options;
  for (const auto& profile : options.profiles) session_options.profile_paths.emplace_back(profile);
  session_options.cache.enabled = !options.no_cache;
  if (!options.cache_dir.empty()) session_options.cache.directory = options.cache_dir;
  session_options.recover_profile = !options.no_recover;
  return vmi::Session::open(path, std::move(session_options));
}

vmi::cli::Renderer renderer_of(const GlobalOptions& options) {
  return options.renderer == "json"    ? vmi::cli::Renderer::json
         : options.renderer == "jsonl" ? vmi::cli::Renderer::jsonl
         : options.renderer == "csv"   ? vmi::cli::Renderer::csv
                                       : vmi::cli::Renderer::table;
}

int run_info(const GlobalOptions& options, const std::string& image) {
  auto session = open_session(options, image);
  if (!session) return fail(session.error(), exit_code_for(session.error()) == kUsage ? kUsage : kBadImage);
  vmi::cli::InfoReport report = vmi::cli::image_report(session->image());
  auto kernel = session->kernel();
  if (kernel) {
    for (auto& fact : (*kernel)->facts()) report.kernel_facts.push_back(std::move(fact));
  }
  // The image's side is worth printing even when no kernel was found.
  vmi::cli::render_info(report, renderer_of(options), std::cout);
  print_warnings(*session);
  if (!kernel) return fail(kernel.error(), kNoKernel);
  return kOk;
}

int run_plugin(const GlobalOptions& options, const std::string& plugin, const std::string& image,
               const vmi::PluginArgs& args) {
  const vmi::cli::Renderer renderer = renderer_of(options);
  auto session = open_session(options, image);
  if (!session) return fail(session.error(), exit_code_for(session.error()) == kUsage ? kUsage : kBadImage);
  // Rows are rendered as the plugin produces them; warnings follow on stderr.
  auto output = vmi::cli::make_renderer(renderer, std::cout);
  auto ran = vmi::run_plugin(*session, plugin, args, *output);
  output->finish();
  print_warnings(*session);
  if (!ran) return fail(ran.error(), exit_code_for(ran.error()) == kBadImage ? kFailed : exit_code_for(ran.error()));
  return kOk;
}

int run_diff(const GlobalOptions& options, const std::string& first, const std::string& second) {
  auto before = open_session(options, first);
  if (!before) return fail(before.error(), exit_code_for(before.error()) == kUsage ? kUsage : kBadImage);
  auto after = open_session(options, second);
  if (!after) return fail(after.error(), exit_code_for(after.error()) == kUsage ? kUsage : kBadImage);
  auto output = vmi::cli::make_renderer(renderer_of(options), std::cout);
  auto ran = vmi::diff_snapshots(*before, *after, *output);
  output->finish();
  print_warnings(*before, "first snapshot: ");
  print_warnings(*after, "second snapshot: ");
  if (!ran) return fail(ran.error(), exit_code_for(ran.error()) == kBadImage ? kFailed : exit_code_for(ran.error()));
  return kOk;
}

int run_profile_build(const std::string& vmlinux, const std::string& system_map, const std::string& types,
                      const std::string& output) {
  std::optional<fs::path> map;
  if (!system_map.empty()) map = system_map;
  const auto source = types == "btf"     ? vmi::VmlinuxTypes::btf
                      : types == "dwarf" ? vmi::VmlinuxTypes::dwarf
                                         : vmi::VmlinuxTypes::automatic;
  vmi::VmlinuxProfileNotes notes;
  auto profile = vmi::build_profile_from_vmlinux(vmlinux, map, &notes, source);
  if (!profile) return fail(profile.error(), kFailed);
  auto written = vmi::save_isf_file(*profile, output);
  if (!written) return fail(written.error(), kFailed);
  std::cerr << fmt::format("wrote {}: {} types from {}, {} symbols from {} ({} typed), banner '{}'\n", output,
                           profile->aggregates.size(), notes.type_source, profile->symbols.size(), notes.symbol_source,
                           notes.typed_symbols, profile->banner());
  return kOk;
}

int run_profile_import(const std::string& source, const std::string& store) {
  const std::filesystem::path destination = store.empty() ? vmi::user_profile_store() : std::filesystem::path(store);
  auto imports = vmi::import_profiles(source, destination);
  if (!imports) return fail(imports.error(), exit_code_for(imports.error()) == kBadImage ? kFailed : kUsage);
  std::size_t copied = 0;
  std::size_t present = 0;
  for (const auto& done : *imports) {
    if (done.copied) {
      ++copied;
      std::cout << fmt::format("imported {} -> {}\n", done.source.string(), done.stored->string());
    } else if (done.stored) {
      ++present;
      std::cout << fmt::format("present  {} ({}: {})\n", done.source.string(), done.note, done.stored->string());
    } else {
      std::cout << fmt::format("skipped  {}: {}\n", done.source.string(), done.note);
    }
  }
  std::cerr << fmt::format("{} imported, {} already in {}, {} skipped\n", copied, present, destination.string(),
                           imports->size() - copied - present);
  return kOk;
}

int run_convert(const std::string& input, const std::string& output, const vmi::ConvertOptions& convert_options) {
  auto stats = vmi::convert_to_container(input, output, convert_options);
  if (!stats) return fail(stats.error(), exit_code_for(stats.error()));
  std::cerr << fmt::format(
      "wrote {}: {} ({} MiB of guest memory) in {} chunks, {} MiB ({:.1f}% of the guest bytes)\n", output,
      stats->source_format, stats->guest_bytes >> 20, stats->chunks, stats->output_bytes >> 20,
      stats->guest_bytes == 0
          ? 0.0
          : 100.0 * static_cast<double>(stats->output_bytes) / static_cast<double>(stats->guest_bytes));
  return kOk;
}

// The first word that is neither an option nor an option's value, when it names no command.
// CLI11 would report it as "A subcommand is required" or as an unexpected argument.
std::optional<std::string> unknown_command(CLI::App& app, int argc, char** argv) {
  constexpr std::string_view kValueOptions[] = {"-f", "--file", "--profile", "-r", "--renderer", "--cache-dir"};
  for (int i = 1; i < argc; ++i) {
    const std::string_view word = argv[i];
    if (word == "--") return std::nullopt;
    if (word.starts_with("-")) {
      if (std::ranges::find(kValueOptions, word) != std::end(kValueOptions)) ++i;
      continue;
    }
    try {
      app.get_subcommand(std::string(word));
      return std::nullopt;
    } catch (const CLI::OptionNotFound&) {
      return std::string(word);
    }
  }
  return std::nullopt;
}

int run(int argc, char** argv) {
  CLI::App app{"vmi-forensics: memory forensics for virtual-machine snapshots"};
  app.require_subcommand(1);
  GlobalOptions options;
  app.add_option("-f,--file", options.image, "memory image (raw, ELF core); format detected from content");
  // One path per --profile, so that an image after it is not taken for a second profile.
  app.add_option("--profile", options.profiles, "ISF profile file or directory (repeatable); default: shipped profiles")
      ->allow_extra_args(false);
  app.add_option("-r,--renderer", options.renderer, "output format")
      ->check(CLI::IsMember({"table", "json", "jsonl", "csv"}));
  app.add_flag("--no-cache", options.no_cache, "do not read or write the binary profile cache");
  app.add_option("--cache-dir", options.cache_dir, "profile cache directory (default ~/.cache/vmi-forensics)");
  app.add_flag("--no-recover", options.no_recover,
               "never rebuild a profile from the snapshot (kallsyms + BTF) when no profile file matches");

  // Global options may follow the command and the image too: `pslist dump.raw -r json`.
  app.fallthrough();

  int status = kOk;
  std::string info_image;
  auto* info = app.add_subcommand("info", "Image format, physical ranges, vCPU state, detected kernel and KASLR");
  info->add_option("image", info_image, "memory image");
  info->callback([&] { status = run_info(options, info_image); });

  // Plugin commands from the library's table: short names, qualified names and their aliases.
  const vmi::cli::PluginCommands plugin_commands(app, [&](const vmi::cli::PluginInvocation& invocation) {
    status = run_plugin(options, invocation.name, invocation.image, invocation.args);
  });
  app.footer(vmi::cli::plugin_list() + "\n" + kExitCodes);
  std::string help_topic;
  auto* help = app.add_subcommand("help", "Show a plugin's names, columns and options");
  help->add_option("plugin", help_topic, "plugin name (short, OS-qualified or Volatility 3's)")->required();
  help->callback([&] { status = vmi::cli::print_plugin_help(help_topic, std::cout, std::cerr); });

  std::string diff_first;
  std::string diff_second;
  auto* diff = app.add_subcommand(
      "diff", "What changed between two snapshots of one guest: processes, command lines, fds, sockets, modules");
  diff->add_option("first", diff_first, "the earlier snapshot")->required();
  diff->add_option("second", diff_second, "the later snapshot")->required();
  diff->callback([&] { status = run_diff(options, diff_first, diff_second); });

  std::string vmlinux;
  std::string system_map;
  std::string output;
  std::string types = "auto";
  auto* profile = app.add_subcommand("profile", "Profile tools")->require_subcommand(1);
  auto* build = profile->add_subcommand("build", "Build an ISF profile from a vmlinux's DWARF or BTF (+ System.map)");
  build->add_option("--vmlinux", vmlinux, "vmlinux ELF with DWARF (a -dbg vmlinux) or a .BTF section")
      ->required()
      ->check(CLI::ExistingFile);
  build->add_option("--types", types, "where types come from: auto (DWARF if present, else BTF), dwarf, btf")
      ->check(CLI::IsMember({"auto", "dwarf", "btf"}));
  build->add_option("--system-map", system_map, "System.map for symbol addresses")->check(CLI::ExistingFile);
  build->add_option("-o,--output", output, "output ISF file (.json, .json.xz or .json.zst)")->required();
  build->callback([&] { status = run_profile_build(vmlinux, system_map, types, output); });
  std::string import_source;
  std::string import_store;
  auto* import = profile->add_subcommand(
      "import",
      "Add ISF profiles (a Volatility 3 symbol cache, JPCERT's tables; compressed or not) to the profile store");
  import->add_option("source", import_source, "an ISF file, or a directory searched for them")->required();
  import->add_option("--store", import_store,
                     "the profile store (default $VMI_PROFILE_STORE, else ~/.local/share/vmi-forensics/profiles)");
  import->callback([&] { status = run_profile_import(import_source, import_store);
});

std::string convert_input;
std::string convert_output;
vmi::ConvertOptions convert_options;
std::uint32_t chunk_kib = convert_options.chunk_size >> 10;
auto* convert = app.add_subcommand(
    "convert", "Convert any readable image (or a raw .gz/.zst) into a seekable compressed container");
convert
    ->add_option("input", convert_input, "memory image in any supported format, or a raw image as one .gz/.zst stream")
    ->required();
convert->add_option("output", convert_output, "container to create (must not exist)")->required();
convert->add_option("--chunk-kib", chunk_kib, "chunk size in KiB (power of two, 4..65536)")->capture_default_str();
convert->add_option("--level", convert_options.level, "zstd level (1..19)")->capture_default_str();
convert->callback([&] {
  convert_options.chunk_size = chunk_kib << 10;
  status = run_convert(convert_input, convert_output, convert_options);
});

if (auto unknown = unknown_command(app, argc, argv)) {
  std::string commands;
  for (const CLI::App* command : app.get_subcommands([](const CLI::App*) { return true; }))
    commands += (commands.empty() ? "" : ", ") + command->get_name();
  std::cerr << "vmi-forensics: unknown command '" << *unknown << "'; commands: " << commands << '\n';
  return kUsage;
}
try {
  app.parse(argc, argv);
} catch (const CLI::ParseError& error) {
  const int code = app.exit(error);
  return code == 0 ? kOk : kUsage;
}
return status;
}  // namespace

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& error) {  // the library reports errors as values: this is bad_alloc and kin
    std::cerr << "vmi-forensics: " << error.what() << '\n';
  } catch (...) {
    std::cerr << "vmi-forensics: unexpected failure\n";
  }
  return kFailed;
}
