// Real snapshots built by samples/build-samples.sh, and the guest's own /proc view beside them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "vmi/plugin.hpp"
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
  std::map<std::string, std::string> env;    // sample.env, shell quoting removed
  std::map<std::string, std::string> guest;  // truth/guest.env, shell quoting removed
  std::vector<TruthProcess> processes;       // sorted by pid
  std::vector<TruthThread> threads;          // sorted by tid
  std::string release;                       // truth/release.txt without its newline
  std::string version;                       // truth/version.txt: /proc/version verbatim, newline included
};

// $VMI_SAMPLES_DIR, else $XDG_CACHE_HOME or ~/.cache + /vmi-forensics/samples.
std::filesystem::path samples_dir();
// The loaders REQUIRE what they read, so a test case that iterates samples fails by itself when
// there are none: a list with at least one sample, and in every sample sample.env and the truth
// (processes.tsv and threads.tsv under their headers with every row complete, guest.env,
// version.txt, release.txt).
//
// Every sample listed in samples.list.
std::vector<Sample> load_samples();
// Every recovery sample listed in recovery-samples.list (kernels without a shipped profile,
// sample.env has PROFILE_SHIPPED=0 and KERNEL_FLAVOUR).
std::vector<Sample> load_recovery_samples();
// Every LiME sample listed in lime-samples.list (memory.lime by lime.ko in the pinned kernel and
// memory.raw of the same boot, saved after the dump).
std::vector<Sample> load_lime_samples();
// Every rootkit sample listed in rootkit-samples.list (the pinned kernel with the sample rootkit,
// samples/rootkit/vmi_rootkit.c, loaded; truth/guest.env has ROOTKIT_HIDDEN_PID).
std::vector<Sample> load_rootkit_samples();
// Every VMExit sample listed in vmexit-samples.list (the pinned kernel, the workload's tasks parked
// in known system calls; truth/syscalls.tsv and truth/registers.txt).
std::vector<Sample> load_vmexit_samples();

// A fact of truth/guest.env. REQUIREs it: a sample built before the fact was recorded fails,
// naming the key and how to rebuild it.
const std::string& guest_fact(const Sample& sample, const std::string& key);
// The same fact as a number (decimal, or hexadecimal after "0x"); REQUIREs that it is one.
std::uint64_t guest_number(const Sample& sample, const std::string& key);
// A symbol's link-time address in the sample kernel's real System.map (KERNEL_DIR/System.map,
// rebuilt by samples/systemmap.py from the guest's kallsyms); REQUIREs the file and the symbol.
std::uint64_t system_map_address(const Sample& sample, std::string_view symbol);

// Column positions of pslist's and pstree's task columns (plugins/linux_task_rows.hpp).
enum TaskColumn : int {
  kOffset,
  kPid,
  kTid,
  kPpid,
  kComm,
  kName,
  kThreads,
  kUid,
  kGid,
  kEuid,
  kEgid,
  kStart,
  kCreation
};
// A cell's value, or nothing when the cell is empty (the field was unreadable) or of another type.
std::optional<std::int64_t> cell_integer(const Row& row, int column);
std::optional<std::uint64_t> cell_address(const Row& row, int column);
std::optional<std::string> cell_text(const Row& row, int column);
// How a process row differs from the truth's row: one item per cell the truth has (PID, PPID,
// THREADS, UID, GID, EUID, EGID, START in ticks, NAME), "UID: empty" for an empty cell and
// "UID: 1000, truth 0" for a wrong one. Empty when the row equals the truth's.
std::vector<std::string> row_differences(const Row& row, const TruthProcess& truth);
// Items joined with "; ", for messages.
std::string joined(const std::vector<std::string>& items);
// The truth's row for a pid, or nullptr.
const TruthProcess* truth_process(const Sample& sample, std::int64_t pid);

// The profile a sample is read with: the shipped ISF for the pinned build, else one built from
// the sample kernel's vmlinux BTF.
std::filesystem::path profile_for(const Sample& sample);
// The profile our DWARF importer builds from the sample kernel's debug vmlinux (vmlinux.dbg,
// from linux-image-*-dbg), built once per test run; REQUIREs success.
const Profile& debug_vmlinux_profile(const Sample& sample);
// A session over `image` with that profile and a per-sample profile cache; REQUIREs success.
Session open_sample(const std::filesystem::path& image, const std::filesystem::path& profile);
// Runs `check` on a session over each sample's raw and ELF image (read with profile_for(sample)),
// then CHECKs that the session was left without warnings.
void for_each_sample_image(const std::function<void(Session&, const Sample&)>& check);
// The same over each rootkit sample's raw and ELF image.
void for_each_rootkit_image(const std::function<void(Session&, const Sample&)>& check);
// The same over each VMExit sample's raw and ELF image.
void for_each_vmexit_image(const std::function<void(Session&, const Sample&)>& check);
// The same over each recovery sample's raw and ELF image, with no profile file: the profile is
// recovered from the snapshot (and cached per sample for the run).
void for_each_recovery_image(const std::function<void(Session&, const Sample&)>& check);
// A workqueue worker's name without the "+desc"/"-desc" of its latest work item, which changes
// from moment to moment (the truth drops it); the worker id and rescuers' names are kept whole.
std::string without_worker_desc(const std::string& name);
// pslist (processes, then --threads) and pstree equal the guest's own /proc view (doctest CHECKs).
void check_pslist_equals_proc(Session& session, const Sample& sample);
void check_threads_equal_proc(Session& session, const Sample& sample);
void check_pstree_matches_parents(Session& session, const Sample& sample);
// Every byte of `image` over `reference`'s ranges equals `reference`'s (REQUIREd, 1 MiB at a
// time); the number of bytes compared.
std::uint64_t check_same_bytes(const PhysicalImage& image, const PhysicalImage& reference);

}  // namespace vmi::test
