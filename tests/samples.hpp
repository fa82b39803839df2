// Real snapshots built by samples/build-samples.sh, and the guest's own /proc view beside them.
#pragma once

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace vmi::test {

struct TruthProcess {
  int pid, ppid, threads;
  unsigned uid, gid, euid, egid;
  long long start_ticks;
  std::string comm;
  auto key() const { return std::tie(pid, ppid, threads, uid, gid, euid, egid, comm); }
};

struct TruthThread {
  int tid, tgid;
  std::string comm;
};

struct Sample {
  std::string name;
  std::filesystem::path dir;
  std::map<std::string, std::string> env;  // sample.env
  std::vector<TruthProcess> processes;     // sorted by pid
  std::vector<TruthThread> threads;        // sorted by tid
  std::string release;
};

// $VMI_SAMPLES_DIR, else $XDG_CACHE_HOME or ~/.cache + /vmi-forensics/samples.
std::filesystem::path samples_dir();
// Every sample listed in samples.list; empty when none were built.
std::vector<Sample> load_samples();

}  // namespace vmi::test
