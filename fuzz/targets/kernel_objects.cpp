// Every Linux plugin, and diff against the unpatched kernel, over a kernel laid out from the shipped Debian 6.1 profile
// by the synthetic-kernel builder (synthetic_kernel.hpp, shared with tests/test_synthetic_states.cpp), with the input
// as patches to its objects (tasks, creds, signals, a descriptor table, socket files, a maple tree of memory areas, the
// printk ring, the pid table): records of [u64 offset][u8 length][length bytes], each written at that offset (modulo
// their size) into the memory the builder allocated. Page tables, banner and symbols stay valid, so every input gets
// past kernel detection into the walkers' reads of task, cred and signal fields, lists and pointers.
#include <cstring>
#include <filesystem>

#include "fuzz_support.hpp"
#include "synthetic_kernel.hpp"
#include "vmi/isf.hpp"
#include "vmi/linux.hpp"
#include "vmi/plugin.hpp"
#include "vmi/session.hpp"
#include "vmi/snapshot_diff.hpp"

namespace {

const std::filesystem::path kProfile =
    std::filesystem::path(VMI_SOURCE_PROFILES_DIR) / "linux/debian-6.1.0-56-amd64.json.xz";
std::shared_ptr<vmi::ProfileCatalog> profiles;  // the profile is loaded once, for every session
vmi_synthetic::SyntheticKernel* base = nullptr;
std::string dump_dir;  // modules --dump writes here

vmi::Session open(const vmi_synthetic::SyntheticKernel& kernel) {
  vmi::SessionOptions options;
  options.shared_profiles = profiles;
  return vmi::Session::over_layer(kernel.image(), options);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char dir[] = "/tmp/vmi-fuzz-kernel-objects-XXXXXX";
  if (::mkdtemp(dir) == nullptr) __builtin_trap();
  profiles =
      std::make_shared<vmi::ProfileCatalog>(std::vector<std::filesystem::path>{kProfile}, vmi::CacheOptions{true, dir});
  profiles->set_snapshot_recovery(false);
  auto profile = vmi::load_isf_file(kProfile);
  if (!profile) __builtin_trap();
  base = new vmi_synthetic::SyntheticKernel(std::make_shared<const vmi::Profile>(std::move(*profile)));
  const vmi::Addr init = base->add_task({.pid = 1, .tgid = 1, .comm = "init", .start_boottime_ns = 1000});
  const vmi::Addr daemon = base->add_task({.pid = 50, .tgid = 50, .comm = "daemon", .parent = init, .uid = 100});
  const vmi::Addr worker =
      base->add_task({.pid = 60, .tgid = 60, .comm = "kworker/0:1", .parent = init, .kernel_thread = true});
  const vmi::Addr child =
      base->add_task({.pid = 70, .tgid = 70, .comm = "child", .parent = daemon, .uid = 1000, .gid = 1000});
  const vmi::Addr hidden =
      base->add_task({.pid = 80, .tgid = 80, .comm = "hidden", .parent = daemon, .on_task_list = false});
  // Every task in the pid table (init_pid_ns.idr), the hidden one too, for pidhashtable and psscan.
  for (const auto& [task, pid] : {std::pair{init, 1}, {daemon, 50}, {worker, 60}, {child, 70}, {hidden, 80}})
    base->add_to_pid_table(task, pid);
  // The daemon's descriptors: a TCP connection and a listener, for handles and netstat.
  base->add_file_table(daemon);
  base->install(daemon, 3,
                base->add_socket_file({.inode = 100,
                                       .local_address = 0x0100007f,
                                       .remote_address = 0x0100007f,
                                       .local_port = 22,
                                       .remote_port = 40000}));
  base->install(daemon, 4, base->add_socket_file({.state = 10, .inode = 101, .local_port = 22}));
  // The daemon's memory (a maple leaf of areas) and a kernel log, for maps and dmesg.
  base->add_memory(daemon, {{.start = 0x400000, .end = 0x401000, .flags = 0x5},
                            {.start = 0x600000, .end = 0x602000},
                            {.start = 0x7ffff000, .end = 0x80000000, .flags = 0x8b}});
  base->add_log({{.text = "Linux version 6.1"}, {.text = "second", .facility = 1, .level = 4}});
  // A module with text, read-only strings and symbols, for modules --dump.
  base->add_module({.name = "brd",
                    .sections = {{".text", std::string(0x1100, '\xcc'), 0},
                                 {".rodata.str1.1", "brd\0ram\0", 1},
                                 {".bss", std::string(64, '\0'), 3}},
                    .symbols = {{"brd_init", 0, 0}, {"brd_name", 1, 0, 0x01}}});
  dump_dir = std::string(dir) + "/dump";
  std::filesystem::create_directory(dump_dir);
  // The first session loads the profile into the shared catalog.
  vmi::Session session = open(*base);
  if (!session.kernel()) __builtin_trap();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  vmi_synthetic::SyntheticKernel kernel = *base;
  const auto [begin, end] = kernel.heap();
  const std::size_t heap_size = end - begin;
  while (size >= 9) {
    const std::size_t offset = vmi_fuzz::le64(data) % heap_size;
    const std::size_t length = std::min<std::size_t>({data[8], size - 9, heap_size - offset});
    kernel.write(begin + offset, data + 9, length);
    data += 9 + length;
    size -= 9 + length;
  }
  vmi::Session session = open(kernel);
  if (!session.kernel()) return 0;
  vmi_fuzz::DiscardRows sink;
  vmi::PluginArgs threads;
  threads.values["threads"] = "";
  for (const char* plugin : {"pslist",      "pstree",        "modules",      "handles",        "netstat",
                             "maps",        "capabilities",  "dmesg",        "syscalls",       "mountinfo",
                             "malfind",     "check_syscall", "check_idt",    "hidden_modules", "modxview",
                             "check_creds", "pidhashtable",  "check_afinfo", "tty_check",      "keyboard_notifiers",
                             "timeline"})
    (void)vmi::run_plugin(session, plugin, {}, sink);
  (void)vmi::run_plugin(session, "pslist", threads, sink);
  vmi::PluginArgs one_job;  // the carve on the fuzzer's own thread
  one_job.values["jobs"] = "1";
  (void)vmi::run_plugin(session, "psscan", one_job, sink);
  vmi::Diagnostics diagnostics;  // cpus needs saved registers, which this image has none of: its walker
  for (std::uint32_t cpu = 0; cpu < 4; ++cpu)
    (void)vmi::linux_objects::current_task_of(**session.kernel(), cpu, diagnostics);
  vmi::PluginArgs dump;
  dump.values["dump"] = dump_dir;
  (void)vmi::run_plugin(session, "modules", dump, sink);
  // diff's walks, between the untouched kernel and the mutated one.
  vmi::Session pristine = open(*base);
  (void)vmi::diff_snapshots(pristine, session, sink);
  return 0;
}
