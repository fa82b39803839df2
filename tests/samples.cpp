// Reads the samples cache: sample.env and the tab-separated ground truth.
#include "samples.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace vmi::test {

namespace fs = std::filesystem;

fs::path samples_dir() {
  if (const char* dir = std::getenv("VMI_SAMPLES_DIR"); dir != nullptr && *dir != '\0') return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') return fs::path(xdg) / "vmi-forensics/samples";
  return fs::path(std::getenv("HOME")) / ".cache/vmi-forensics/samples";
}

namespace {

std::vector<std::vector<std::string>> read_tsv(const fs::path& path) {
  std::vector<std::vector<std::string>> rows;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::size_t start = 0;
    for (std::size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1) cells.push_back(line.substr(start, tab - start));
    cells.push_back(line.substr(start));
    rows.push_back(std::move(cells));
  }
  return rows;
}

}  // namespace

std::vector<Sample> load_samples() {
  std::vector<Sample> samples;
  std::ifstream list(samples_dir() / "samples.list");
  std::string name;
  while (std::getline(list, name)) {
    if (name.empty()) continue;
    Sample sample;
    sample.name = name;
    sample.dir = samples_dir() / name;
    std::ifstream env(sample.dir / "sample.env");
    for (std::string line; std::getline(env, line);) {
      const auto eq = line.find('=');
      if (eq != std::string::npos) sample.env[line.substr(0, eq)] = line.substr(eq + 1);
    }
    for (const auto& c : read_tsv(sample.dir / "truth/processes.tsv")) {
      if (c.size() < 9) continue;
      sample.processes.push_back({std::stoi(c[0]), std::stoi(c[1]), std::stoi(c[2]), static_cast<unsigned>(std::stoul(c[3])),
                                  static_cast<unsigned>(std::stoul(c[4])), static_cast<unsigned>(std::stoul(c[5])),
                                  static_cast<unsigned>(std::stoul(c[6])), std::stoll(c[7]), c[8]});
    }
    for (const auto& c : read_tsv(sample.dir / "truth/threads.tsv")) {
      if (c.size() >= 3) sample.threads.push_back({std::stoi(c[0]), std::stoi(c[1]), c[2]});
    }
    std::ifstream release(sample.dir / "truth/release.txt");
    std::getline(release, sample.release);
    samples.push_back(std::move(sample));
  }
  return samples;
}

}  // namespace vmi::test
