// Times info, pslist, pstree, modules and handles on every sample the samples cache lists (samples.list,
// recovery-samples.list, lime-samples.list), in every form the sample has (memory.raw; memory.elf
// or memory.lime; the kdump files and migration stream its sample.env lists; a container
// converted from memory.raw), cold (no profile cache) and warm (cached profile), and reports wall
// time and the child's peak RSS against the stated targets. A listed sample or form that is
// missing, or a command that fails, is a FAILED row and makes the exit status non-zero.
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <system_error>
#include <vector>

#include "measure.hpp"

namespace fs = std::filesystem;

namespace {

using vmi::bench::figure;
using vmi::bench::Verdict;

constexpr std::string_view kUsage =
    "usage: vmi-bench [--check] [runs]\n"
    "  runs     warm runs per command after the cold one (default 5)\n"
    "  --check  exit 3 when a stated target is missed (exit 1 whenever a run failed)\n";

constexpr const char* kCommands[] = {"info", "pslist", "pstree", "modules", "handles"};

// The three lists samples/build-samples.sh writes, and what each kind is read with.
struct SampleList {
  const char* file;
  bool shipped_profile;  // the pinned kernel: the shipped ISF; else a profile recovered from the snapshot
};
constexpr SampleList kSampleLists[] = {
    {"samples.list", true},
    {"recovery-samples.list", false},  // kernels with no shipped profile, by design
    {"lime-samples.list", true},
};

// One memory file of a sample, as the CLI is given it.
struct Form {
  std::string label;  // the file name, or "container (.vmic)"
  fs::path path;
  std::string setup_failure;  // why the file could not be made (the container); empty otherwise
};

// The README's target was stated for raw and ELF images, the forms vmi-bench measured when it
// was set; the other forms decode or index their file at open and are reported, not held to it.
bool held_to_target(const std::string& label) { return label == "memory.raw" || label == "memory.elf"; }

struct Context {
  std::string cli = VMI_BENCH_CLI;
  int runs = 5;
  fs::path cache;        // the profile cache, emptied before each cold run
  fs::path no_profiles;  // an empty --profile directory: the CLI must recover the profile
  fs::path scratch;
};

// One line of the table; every figure already a string, so a failed one can say FAILED.
void print_row(std::string_view sample, std::string_view image, std::string_view profile, std::string_view command,
               std::string_view cold_ms, std::string_view cold_mib, std::string_view warm_ms, std::string_view warm_mib,
               std::string_view target) {
  fmt::print("{:<17} {:<22} {:<9} {:<7} {:>9} {:>9} {:>13} {:>14} {:>7}\n", sample, image, profile, command, cold_ms,
             cold_mib, warm_ms, warm_mib, target);
}

void print_failed_row(std::string_view sample, std::string_view image) {
  print_row(sample, image, "", "", "FAILED", "FAILED", "FAILED", "FAILED", "");
}

// Cold run then warm runs of one command on one form; prints the row, holds pslist to the target.
void measure_command(const Context& context, const std::string& sample, const Form& form, const std::string& profile,
                     const std::string& profile_label, const std::string& command, Verdict& verdict) {
  std::error_code ignored;
  fs::remove_all(context.cache, ignored);  // the first run parses or recovers the profile
  const std::vector<std::string> args = {context.cli, "--profile",       profile, "--cache-dir", context.cache.string(),
                                         command,     form.path.string()};
  const auto measured = vmi::bench::run_repeated(args, context.runs);
  const std::string what = fmt::format("{} {} {}", sample, form.label, command);
  if (!measured.first.ok) verdict.run_failed(what + " (cold run)", measured.first.failure);
  if (measured.first.ok && !measured.repeats_ok) verdict.run_failed(what + " (warm runs)", measured.failure);
  std::string target;
  if (command == "pslist" && held_to_target(form.label) && measured.ok()) {
    const std::string time = verdict.hold(vmi::bench::kPslistCachedWallTime, measured.median_ms);
    const std::string rss = verdict.hold(vmi::bench::kPslistCachedPeakRss, measured.max_rss_mib);
    target = time == "met" && rss == "met" ? "met" : "MISSED";
  }
  print_row(sample, form.label, profile_label, command, figure(measured.first.ok, measured.first.seconds * 1000),
            figure(measured.first.ok, measured.first.peak_rss_mib), figure(measured.ok(), measured.median_ms),
            figure(measured.ok(), measured.max_rss_mib), target);
}

// The forms one sample claims, the container made from its memory.raw last.
std::vector<Form> forms_of(const Context& context, const std::string& sample, const fs::path& dir,
                           const std::map<std::string, std::string>& env) {
  std::vector<Form> forms;
  for (const std::string& file : vmi::bench::claimed_memory_files(env)) forms.push_back({file, dir / file, {}});
  // Made before any timed run and outside it: conversion is vmi-bench-formats' subject, not this one's.
  Form container{"container (.vmic)", context.scratch / (sample + ".vmic"), {}};
  const auto converted =
      vmi::bench::run({context.cli, "convert", (dir / "memory.raw").string(), container.path.string()});
  if (!converted.ok) container.setup_failure = "convert memory.raw: " + converted.failure;
  forms.push_back(std::move(container));
  return forms;
}

void measure_sample(const Context& context, const std::string& sample, bool shipped_profile, Verdict& verdict) {
  const fs::path dir = vmi::bench::samples_dir() / sample;
  if (!fs::is_directory(dir)) {
    print_failed_row(sample, "(sample directory)");
    verdict.run_failed(sample, fmt::format("listed, but {} is not a directory", dir.string()));
    return;
  }
  const auto env = vmi::bench::read_sample_env(dir);
  if (env.empty()) {
    // Without it the forms are only guessed (raw and ELF), and the kdump/savevm files unknown.
    print_failed_row(sample, "sample.env");
    verdict.run_failed(sample, fmt::format("no sample.env in {}", dir.string()));
  }
  // A fallback kernel (PINNED=0) is not the one the shipped ISF describes.
  const auto pinned = env.find("PINNED");
  const bool use_shipped = shipped_profile && pinned != env.end() && pinned->second == "1";
  const std::string profile = use_shipped ? std::string(VMI_BENCH_PROFILE) : context.no_profiles.string();
  const std::string profile_label = use_shipped ? "ISF" : "recovered";
  for (const Form& form : forms_of(context, sample, dir, env)) {
    if (!form.setup_failure.empty() || !fs::is_regular_file(form.path)) {
      print_failed_row(sample, form.label);
      verdict.run_failed(fmt::format("{} {}", sample, form.label),
                         !form.setup_failure.empty()
                             ? form.setup_failure
                             : fmt::format("the sample claims {}, not found", form.path.string()));
      continue;
    }
    for (const char* command : kCommands)
      measure_command(context, sample, form, profile, profile_label, command, verdict);
  }
  std::error_code ignored;
  fs::remove(context.scratch / (sample + ".vmic"), ignored);  // 512 MiB samples: keep one container at a time
}

}  // namespace

int main(int argc, char** argv) {
  const auto parsed = vmi::bench::parse_run_options(argc, argv, kUsage);
  if (const int* exit_status = std::get_if<int>(&parsed)) return *exit_status;
  const auto& options = *std::get_if<vmi::bench::RunOptions>(&parsed);
  Context context;
  context.runs = options.runs;
  context.scratch = fs::temp_directory_path() / fmt::format("vmi-bench-{}", ::getpid());
  context.cache = context.scratch / "cache";
  context.no_profiles = context.scratch / "no-profiles";
  fs::create_directories(context.no_profiles);

  Verdict verdict({&vmi::bench::kPslistCachedWallTime, &vmi::bench::kPslistCachedPeakRss});
  fmt::print("one cold run, then {} warm runs per command; samples in {}\n", context.runs,
             vmi::bench::samples_dir().string());
  print_row("sample", "image", "profile", "command", "cold ms", "cold MiB", "warm ms (med)", "warm MiB (max)",
            "target");
  int listed = 0;
  for (const SampleList& list : kSampleLists) {
    const auto names = vmi::bench::read_sample_list(list.file);
    if (!names) {
      // samples/build-samples.sh writes every list, empty when a kind could not be built.
      print_failed_row(list.file, "(sample list)");
      verdict.run_failed(list.file, "absent: run samples/build-samples.sh");
      continue;
    }
    if (names->empty()) fmt::print("{:<17} (no samples listed)\n", list.file);
    for (const std::string& sample : *names) measure_sample(context, sample, list.shipped_profile, verdict);
    listed += static_cast<int>(names->size());
  }
  std::error_code ignored;
  fs::remove_all(context.scratch, ignored);
  if (listed == 0) verdict.run_failed("samples", "no samples listed: run samples/build-samples.sh");
  fmt::print("\ntarget column: pslist warm runs on raw and ELF images, the forms the README's target was stated for\n");
  return verdict.finish(options.check);
}
