// Real snapshots built by samples/build-samples.sh, and the guest's own /proc view beside them.
#pragma once

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "vmi/session.hpp"

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
  std::map<std::string, std::string> env;    // sample.env
  std::map<std::string, std::string> guest;  // truth/guest.env, shell quoting removed
  std::vector<TruthProcess> processes;       // sorted by pid
  std::vector<TruthThread> threads;          // sorted by tid
  std::string release;
};

// $VMI_SAMPLES_DIR, else $XDG_CACHE_HOME or ~/.cache + /vmi-forensics/samples.
std::filesystem::path samples_dir();
// Every sample listed in samples.list; empty when none were built.
std::vector<Sample> load_samples();
// Every recovery sample listed in recovery-samples.list (kernels without a shipped profile,
// sample.env has PROFILE_SHIPPED=0 and KERNEL_FLAVOUR); empty when none were built.
std::vector<Sample> load_recovery_samples();
// Every LiME sample listed in lime-samples.list (memory.lime by lime.ko in the pinned kernel and
// memory.raw of the same boot, saved after the dump); empty when none were built.
std::vector<Sample> load_lime_samples();

// The profile a sample is read with: the shipped ISF for the pinned build, else one built from
// the sample kernel's vmlinux BTF.
std::filesystem::path profile_for(const Sample& sample);
// The profile our DWARF importer builds from the sample kernel's debug vmlinux (vmlinux.dbg,
// from linux-image-*-dbg), built once per test run; REQUIREs success.
const Profile& debug_vmlinux_profile(const Sample& sample);
// A session over `image` with that profile and a per-sample profile cache; REQUIREs success.
Session open_sample(const std::filesystem::path& image, const std::filesystem::path& profile);
// pslist (processes, then --threads) and pstree equal the guest's own /proc view (doctest CHECKs).
void check_pslist_equals_proc(Session& session, const Sample& sample);
void check_threads_equal_proc(Session& session, const Sample& sample);
void check_pstree_matches_parents(Session& session, const Sample& sample);
// Every byte of `image` over `reference`'s ranges equals `reference`'s (REQUIREd, 1 MiB at a
// time); the number of bytes compared.
std::uint64_t check_same_bytes(const PhysicalImage& image, const PhysicalImage& reference);

}  // namespace vmi::test
