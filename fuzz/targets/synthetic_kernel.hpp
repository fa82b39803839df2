// A synthetic Linux kernel for tests and fuzz targets: sparse physical memory with x86-64 4-level
// page tables and kernel objects laid out from a real profile (the shipped Debian ISF), for
// states a clean guest never shows: tasks unlinked from the task list, hooked tables, fields
// whose memory is missing. Only what a walker reads is written; every other byte is zero, and a
// page never written is a hole.
//
//   SyntheticKernel k(profile);                 // banner, init_top_pgt, init_task, tk_core, ...
//   const Addr task = k.add_task({.pid = 42, .tgid = 42, .comm = "sshd"});
//   k.unmap(k.field_address(task, "task_struct", "real_cred"));
//   Session session = Session::over_layer(k.image(), options);
//
// Setup errors (a symbol or field the profile lacks) throw std::runtime_error: this is test and
// fuzz scaffolding, not library code.
#pragma once

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "os/linux/list_poison.hpp"
#include "vmi/layer.hpp"
#include "vmi/profile.hpp"

namespace vmi_synthetic {

using vmi::Addr;

constexpr Addr kPageSize = 0x1000;
constexpr Addr kLargePageSize = 0x200000;
constexpr Addr kTextPhysical = 0x1000000;           // _text's physical address (no physical KASLR)
constexpr Addr kTablePhysical = 0x7000000;          // page-table pages below the text's PML4
constexpr Addr kHeapPhysical = 0x8000000;           // objects allocated by the builder
constexpr Addr kDirectMap = 0xffff888000000000ull;  // page_offset_base without KASLR
constexpr Addr kStacks = 0xffffc90000000000ull;     // vmalloc_base without KASLR: tasks' stacks (not mapped)
constexpr Addr kThreadSize = 0x4000;
constexpr std::uint64_t kPresentWritable = 0x3, kUser = 0x4, kLargePage = 0x80;
constexpr std::uint32_t kPfKthread = 0x00200000;

// Physical memory made of 4 KiB pages; everything between them is a hole (Errc::unmapped).
class SparseLayer final : public vmi::Layer {
 public:
  explicit SparseLayer(std::map<Addr, std::vector<std::byte>> pages) : pages_(std::move(pages)) {
    for (const auto& [base, bytes] : pages_) {
      if (!ranges_.empty() && ranges_.back().end == base) {
        ranges_.back().end += kPageSize;
      } else {
        ranges_.push_back({base, base + kPageSize});
      }
    }
  }
  std::string_view name() const override { return "synthetic kernel"; }
  std::span<const vmi::Range> ranges() const override { return ranges_; }
  vmi::Expected<std::size_t> read(Addr addr, std::span<std::byte> dst) const override {
    std::size_t done = 0;
    while (done < dst.size()) {
      const Addr at = addr + done;
      const auto page = pages_.find(at & ~(kPageSize - 1));
      if (page == pages_.end()) {
        if (done == 0) return vmi::make_error(vmi::Errc::unmapped, "synthetic kernel: no page at " + vmi::hex(at));
        break;
      }
      const std::size_t offset = at & (kPageSize - 1);
      const std::size_t n = std::min<std::size_t>(kPageSize - offset, dst.size() - done);
      std::memcpy(dst.data() + done, page->second.data() + offset, n);
      done += n;
    }
    return done;
  }

 private:
  std::map<Addr, std::vector<std::byte>> pages_;
  std::vector<vmi::Range> ranges_;
};

struct TaskSpec {
  std::int32_t pid = 0, tgid = 0;
  std::string comm;
  Addr parent = 0;  // task_struct of the real parent; 0: init_task
  std::uint32_t uid = 0, gid = 0;
  std::uint64_t start_boottime_ns = 0;
  bool kernel_thread = false;
  bool on_task_list = true;  // false: unlinked from init_task.tasks, as a rootkit hides a task
};

// A socket open in a task (include/net/sock.h): addresses in network byte order, ports in host
// order, as the kernel keeps skc_rcv_saddr/skc_daddr and skc_num (skc_dport is swapped here).
struct SocketSpec {
  std::uint16_t family = 2, type = 1, protocol = 6;  // AF_INET, SOCK_STREAM, IPPROTO_TCP
  std::uint8_t state = 1;                            // TCP_ESTABLISHED
  std::uint64_t inode = 0;
  std::uint32_t local_address = 0, remote_address = 0;
  std::uint16_t local_port = 0, remote_port = 0;
  std::uint32_t filter_instructions = 0;  // a BPF filter of this many instructions when not 0
  bool classic_filter = true;             // SO_ATTACH_FILTER (else SO_ATTACH_BPF)
};

// A memory area of a process (include/linux/mm_types.h vm_area_struct).
struct AreaSpec {
  Addr start = 0, end = 0;
  std::uint64_t flags = 0x3;  // VM_READ | VM_WRITE
  Addr mm = 0;                // the area's vm_mm; 0: the process's own
};

// A kernel log record (kernel/printk/printk_ringbuffer.h printk_info and its text).
struct LogSpec {
  std::string text;
  std::uint8_t facility = 0, level = 6;
  std::uint64_t timestamp_ns = 0;
  std::uint32_t caller = 1;
};

// A module's section as the loader places it: in its core region (0 text, 1 rodata,
// 2 ro_after_init, 3 data), named as /sys/module/NAME/sections names it.
struct ModuleSectionSpec {
  std::string name;
  std::string bytes;
  unsigned region = 0;
};

// A symbol of a module's core symbol table (Elf64_Sym), at an offset in one of its sections.
struct ModuleSymbolSpec {
  std::string name;
  std::size_t section = 0;  // index into ModuleSpec::sections
  std::uint64_t offset = 0;
  std::uint8_t info = 0x12;  // STB_GLOBAL, STT_FUNC
};

struct ModuleSpec {
  std::string name;
  std::vector<ModuleSectionSpec> sections;
  std::vector<ModuleSymbolSpec> symbols;
  bool listed = true;    // false: unlinked from `modules`, as a rootkit hides itself
  bool in_sysfs = true;  // false: its kobject removed from /sys/module too
};

class SyntheticKernel {
 public:
  explicit SyntheticKernel(std::shared_ptr<const vmi::Profile> profile) : profile_(std::move(profile)) {
    text_ = symbol("_text");
    const Addr end = symbol("_end");
    // The kernel image as the kernel maps it: 2 MiB pages from _text, physically contiguous.
    for (Addr virt = text_; virt < end; virt += kLargePageSize) map_large(virt, kTextPhysical + (virt - text_));
    page(kTextPhysical);  // the kernel is looked for at 2 MiB-aligned bases that hold memory
    const std::string banner = std::string(profile_->banner()) + "\n";
    write(symbol("linux_banner"), banner.data(), banner.size() + 1);
    put<std::uint64_t>(symbol("page_offset_base"), kDirectMap);
    if (profile_->find_symbol("__pgtable_l5_enabled") != nullptr) put<std::uint32_t>(symbol("__pgtable_l5_enabled"), 0);
    // The wall clock at boot: offs_real - offs_boot (kernel/time/timekeeping.c ktime_get_boot_real).
    const Addr timekeeper = symbol("tk_core") + offset(symbol_type("tk_core"), "timekeeper");
    put<std::int64_t>(timekeeper + offset("timekeeper", "offs_real"), kBootWallNs);
    put<std::int64_t>(timekeeper + offset("timekeeper", "offs_boot"), 0);
    init_task_ = symbol("init_task");
    fill_task(init_task_, {.pid = 0, .tgid = 0, .comm = "swapper/0", .parent = init_task_, .kernel_thread = true});
    init_list(init_task_ + offset("task_struct", "tasks"));
    init_list(symbol("modules"));
  }

  static constexpr std::int64_t kBootWallNs = 1'767'225'600'000'000'000;  // 2026-01-01 00:00:00 UTC

  const vmi::Profile& profile() const { return *profile_; }
  Addr init_task() const { return init_task_; }

  Addr symbol(std::string_view name) const {
    const vmi::Symbol* found = profile_->find_symbol(name);
    if (found == nullptr) throw std::runtime_error("profile has no symbol " + std::string(name));
    return found->address;
  }

  // The name of the struct a symbol is (tk_core's is anonymous: "unnamed_...").
  std::string symbol_type(std::string_view name) const {
    const vmi::Symbol* found = profile_->find_symbol(name);
    const vmi::Aggregate* type = found != nullptr ? profile_->aggregate_of(found->type) : nullptr;
    if (type == nullptr) throw std::runtime_error("profile gives no struct type for symbol " + std::string(name));
    return std::string(profile_->str(type->name));
  }

  // The offset of a field path ("signal.thread_head" descends into embedded structs).
  std::uint32_t offset(std::string_view type, std::string_view path) const {
    std::uint32_t total = 0;
    std::string current(type);
    while (!path.empty()) {
      const std::string_view name = path.substr(0, path.find('.'));
      path.remove_prefix(std::min(path.size(), name.size() + 1));
      auto info = profile_->field(current, name);
      if (!info) throw std::runtime_error(info.error().message);
      total += info->offset;
      if (const vmi::Aggregate* inner = profile_->aggregate_of(info->type)) current = profile_->str(inner->name);
    }
    return total;
  }
  Addr field_address(Addr object, std::string_view type, std::string_view path) const {
    return object + offset(type, path);
  }
  std::uint32_t size_of(std::string_view type) const {
    const vmi::Aggregate* aggregate = profile_->find_aggregate(type);
    if (aggregate == nullptr) throw std::runtime_error("profile has no type " + std::string(type));
    return aggregate->size;
  }

  // Zeroed memory in the direct map. Each allocation starts a page of its own, so unmap() of one
  // object's page never takes a neighbour's bytes with it.
  Addr allocate(std::size_t bytes) {
    const Addr physical = next_heap_;
    next_heap_ += (std::max<std::size_t>(bytes, 1) + kPageSize - 1) & ~(kPageSize - 1);
    for (Addr p = physical & ~(kLargePageSize - 1); p < next_heap_; p += kLargePageSize) {
      if (mapped_heap_.insert(p).second) map_large(kDirectMap + p, p);
    }
    for (Addr p = physical & ~(kPageSize - 1); p < next_heap_; p += kPageSize) page(p);
    return kDirectMap + physical;
  }
  Addr allocate(std::string_view type) { return allocate(size_of(type)); }

  void write(Addr virt, const void* bytes, std::size_t size) {
    const auto* from = static_cast<const std::byte*>(bytes);
    for (std::size_t done = 0; done < size;) {
      const Addr physical = physical_of(virt + done);
      const std::size_t offset_in_page = physical & (kPageSize - 1);
      const std::size_t n = std::min<std::size_t>(kPageSize - offset_in_page, size - done);
      std::memcpy(page(physical & ~(kPageSize - 1)).data() + offset_in_page, from + done, n);
      done += n;
    }
  }
  template <class T>
  void put(Addr virt, T value) {
    write(virt, &value, sizeof value);
  }
  template <class T>
  void set(Addr object, std::string_view type, std::string_view path, T value) {
    put(field_address(object, type, path), value);
  }

  // Removes the physical page behind `virt`: every read of it fails, as for a page the snapshot
  // does not hold.
  void unmap(Addr virt) { pages_.erase(physical_of(virt) & ~(kPageSize - 1)); }

  // list_head operations (include/linux/list.h).
  void init_list(Addr head) {
    put<std::uint64_t>(head, head);
    put<std::uint64_t>(head + 8, head);
  }
  void list_add_tail(Addr head, Addr node) {
    const Addr last = read<std::uint64_t>(head + 8);
    put<std::uint64_t>(node, head);
    put<std::uint64_t>(node + 8, last);
    put<std::uint64_t>(last, node);
    put<std::uint64_t>(head + 8, node);
  }
  // Unlinks `node` from its list and poisons its links as the kernel's helpers do
  // (include/linux/list.h, rculist.h): list_del() both, list_del_rcu() only prev (next still
  // points into the list it left, for RCU readers). The real rootkit sample hides a task with
  // list_del_rcu() and its module with list_del().
  enum class Unlink { list_del, list_del_rcu };
  void list_del(Addr node, Unlink how) {
    const Addr next = read<std::uint64_t>(node), prev = read<std::uint64_t>(node + 8);
    put<std::uint64_t>(prev, next);
    put<std::uint64_t>(next + 8, prev);
    if (how == Unlink::list_del) put<std::uint64_t>(node, vmi::linux_objects::kListPoisonNext);
    put<std::uint64_t>(node + 8, vmi::linux_objects::kListPoisonPrev);
  }

  template <class T>
  T read(Addr virt) const {
    T value{};
    const Addr physical = physical_of(virt);
    const auto found = pages_.find(physical & ~(kPageSize - 1));
    if (found != pages_.end()) std::memcpy(&value, found->second.data() + (physical & (kPageSize - 1)), sizeof value);
    return value;
  }

  // A live module on the `modules` list, laid out as a 6.1 kernel lays out its core: regions in
  // order, each page-aligned, sections 16-byte aligned within theirs, the symbol and string tables
  // after the data (layout_symtab). Returns the struct module; `sections_out` gets each section's
  // address.
  Addr add_module(const ModuleSpec& spec, std::vector<Addr>* sections_out = nullptr) {
    const Addr module = allocate("module");
    write(field_address(module, "module", "name"), spec.name.data(), spec.name.size());
    list_add_tail(symbol("modules"), field_address(module, "module", "list"));
    init_list(field_address(module, "module", "source_list"));  // no module uses it
    init_list(field_address(module, "module", "target_list"));
    // Where each section goes: an offset in the core, region by region.
    std::vector<std::uint64_t> offsets(spec.sections.size());
    std::array<std::uint64_t, 4> region_ends{};
    std::uint64_t at = 0;
    for (unsigned region = 0; region < 4; ++region) {
      for (std::size_t i = 0; i < spec.sections.size(); ++i) {
        if (spec.sections[i].region != region) continue;
        at = (at + 15) & ~std::uint64_t{15};
        offsets[i] = at;
        at += spec.sections[i].bytes.size();
      }
      at = (at + kPageSize - 1) & ~(kPageSize - 1);
      region_ends[region] = at;
    }
    const std::size_t symbol_bytes = (spec.symbols.size() + 1) * 24;
    std::string strtab(1, '\0');
    for (const auto& symbol : spec.symbols) strtab += symbol.name + '\0';
    const std::uint64_t core_size = at + symbol_bytes + strtab.size();
    const Addr base = allocate(core_size);
    for (std::size_t i = 0; i < spec.sections.size(); ++i)
      write(base + offsets[i], spec.sections[i].bytes.data(), spec.sections[i].bytes.size());
    const Addr core = field_address(module, "module", "core_layout");
    set<std::uint64_t>(core, "module_layout", "base", base);
    set<std::uint32_t>(core, "module_layout", "text_size", static_cast<std::uint32_t>(region_ends[0]));
    set<std::uint32_t>(core, "module_layout", "ro_size", static_cast<std::uint32_t>(region_ends[1]));
    set<std::uint32_t>(core, "module_layout", "ro_after_init_size", static_cast<std::uint32_t>(region_ends[2]));
    set<std::uint32_t>(core, "module_layout", "size", static_cast<std::uint32_t>(core_size));
    // sect_attrs: one module_sect_attr per section, each naming it.
    const std::uint32_t attr_size = size_of("module_sect_attr");
    const Addr attrs = allocate(offset("module_sect_attrs", "attrs") + spec.sections.size() * attr_size);
    set<std::uint32_t>(attrs, "module_sect_attrs", "nsections", static_cast<std::uint32_t>(spec.sections.size()));
    for (std::size_t i = 0; i < spec.sections.size(); ++i) {
      const Addr attr = attrs + offset("module_sect_attrs", "attrs") + i * attr_size;
      const Addr name = allocate(spec.sections[i].name.size() + 1);
      write(name, spec.sections[i].name.data(), spec.sections[i].name.size());
      set<std::uint64_t>(attr, "module_sect_attr", "battr.attr.name", name);
      set<std::uint64_t>(attr, "module_sect_attr", "address", base + offsets[i]);
      if (sections_out != nullptr) sections_out->push_back(base + offsets[i]);
    }
    set<std::uint64_t>(module, "module", "sect_attrs", attrs);
    // The core symbol table (Elf64_Sym: name, info, other, shndx, value, size) and its strings.
    const Addr symtab = base + at, strings = symtab + symbol_bytes;
    std::uint32_t name_at = 1;
    for (std::size_t i = 0; i < spec.symbols.size(); ++i) {
      const ModuleSymbolSpec& symbol = spec.symbols[i];
      const Addr entry = symtab + (i + 1) * 24;
      put<std::uint32_t>(entry, name_at);
      put<std::uint8_t>(entry + 4, symbol.info);
      put<std::uint64_t>(entry + 8, base + offsets.at(symbol.section) + symbol.offset);
      name_at += static_cast<std::uint32_t>(symbol.name.size() + 1);
    }
    write(strings, strtab.data(), strtab.size());
    const Addr kallsyms = field_address(module, "module", "core_kallsyms");
    set<std::uint64_t>(kallsyms, "mod_kallsyms", "symtab", symtab);
    set<std::uint32_t>(kallsyms, "mod_kallsyms", "num_symtab", static_cast<std::uint32_t>(spec.symbols.size() + 1));
    set<std::uint64_t>(kallsyms, "mod_kallsyms", "strtab", strings);
    set<std::uint64_t>(module, "module", "kallsyms", kallsyms);
    // The other views: mkobj.mod points back, the kobject in /sys/module's kset, mod_tree's bounds.
    set<std::uint64_t>(module, "module", "mkobj.mod", module);
    if (spec.in_sysfs)
      list_add_tail(module_kset() + offset("kset", "list"), field_address(module, "module", "mkobj.kobj.entry"));
    const Addr tree = symbol("mod_tree");
    const Addr low = read<std::uint64_t>(field_address(tree, "mod_tree_root", "addr_min"));
    const Addr high = read<std::uint64_t>(field_address(tree, "mod_tree_root", "addr_max"));
    set<std::uint64_t>(tree, "mod_tree_root", "addr_min",
                       low == 0 ? std::min(module, base) : std::min({low, module, base}));
    set<std::uint64_t>(tree, "mod_tree_root", "addr_max",
                       std::max({high, module + size_of("module"), base + core_size}));
    if (!spec.listed) list_del(field_address(module, "module", "list"), Unlink::list_del);
    return module;
  }

  // A process (thread-group leader) with its own cred and signal_struct, on the task list after
  // the tasks added before it unless spec.on_task_list is false.
  Addr add_task(TaskSpec spec) {
    const Addr task = allocate("task_struct");
    if (spec.parent == 0) spec.parent = init_task_;
    fill_task(task, spec);
    list_add_tail(init_task_ + offset("task_struct", "tasks"), task + offset("task_struct", "tasks"));
    if (!spec.on_task_list) list_del(task + offset("task_struct", "tasks"), Unlink::list_del_rcu);
    return task;
  }

  // Enters `task` in init_pid_ns's pid table (include/linux/idr.h over an xarray) as `pid`, below
  // 4096: a struct pid whose tasks[PIDTYPE_PID] holds the task's pid_links[PIDTYPE_PID], in a
  // two-level tree of 64-slot nodes (the root's shift 6, its children's 0). Returns the struct pid.
  Addr add_to_pid_table(Addr task, std::int32_t pid) {
    if (pid < 0 || pid >= 4096) throw std::runtime_error("synthetic pid table: pid out of range");
    const Addr head = field_address(symbol("init_pid_ns"), "pid_namespace", "idr.idr_rt.xa_head");
    const Addr slots = offset("xa_node", "slots");
    Addr root = read<std::uint64_t>(head);
    if (root == 0) {
      root = allocate("xa_node") + 2;  // an internal entry: a node's address plus 2
      set<std::uint8_t>(root - 2, "xa_node", "shift", 6);
      put<std::uint64_t>(head, root);
    }
    const Addr child_slot = root - 2 + slots + (pid >> 6) * 8;
    Addr child = read<std::uint64_t>(child_slot);
    if (child == 0) {
      child = allocate("xa_node") + 2;
      set<std::uint64_t>(child - 2, "xa_node", "parent", root - 2);
      put<std::uint64_t>(child_slot, child);
    }
    const Addr pid_struct = allocate("pid");
    set<std::uint64_t>(pid_struct, "pid", "tasks", field_address(task, "task_struct", "pid_links"));
    put<std::uint64_t>(child - 2 + slots + (pid & 63) * 8, pid_struct);
    return pid_struct;
  }

  // A descriptor table for `task` (task->files, files_struct.fdt) with room for max_fds.
  void add_file_table(Addr task, std::uint32_t max_fds = 64) {
    const Addr files = allocate("files_struct");
    const Addr fdt = allocate("fdtable");
    set<std::uint64_t>(files, "files_struct", "fdt", fdt);
    set<std::uint32_t>(fdt, "fdtable", "max_fds", max_fds);
    set<std::uint64_t>(fdt, "fdtable", "fd", allocate(std::size_t{max_fds} * 8));
    set<std::uint64_t>(fdt, "fdtable", "close_on_exec", allocate(std::size_t{max_fds} / 8 + 8));
    set<std::uint64_t>(task, "task_struct", "files", files);
  }

  // Installs `file` as descriptor `fd` of the task's table (add_file_table first).
  void install(Addr task, std::int32_t fd, Addr file) {
    const Addr files = read<std::uint64_t>(field_address(task, "task_struct", "files"));
    const Addr fdt = read<std::uint64_t>(field_address(files, "files_struct", "fdt"));
    put<std::uint64_t>(read<std::uint64_t>(field_address(fdt, "fdtable", "fd")) + std::uint64_t(fd) * 8, file);
  }

  // A socket file: struct file on sockfs, its socket_alloc (socket and inode) and struct sock in
  // the initial network namespace. Returns the file; `sock` receives the struct sock.
  Addr add_socket_file(const SocketSpec& spec, Addr* sock_out = nullptr) {
    const Addr alloc = allocate("socket_alloc");
    const Addr socket = field_address(alloc, "socket_alloc", "socket");
    const Addr inode = field_address(alloc, "socket_alloc", "vfs_inode");
    set<std::uint16_t>(inode, "inode", "i_mode", 0140777);  // S_IFSOCK | 0777
    set<std::uint64_t>(inode, "inode", "i_ino", spec.inode);
    set<std::uint64_t>(inode, "inode", "i_sb", sockfs_super_block());
    const Addr dentry = allocate("dentry");
    set<std::uint64_t>(dentry, "dentry", "d_sb", sockfs_super_block());
    set<std::uint64_t>(dentry, "dentry", "d_inode", inode);
    set<std::uint64_t>(dentry, "dentry", "d_parent", dentry);
    const Addr file = allocate("file");
    set<std::uint64_t>(file, "file", "f_inode", inode);
    set<std::uint64_t>(file, "file", "f_path.dentry", dentry);
    set<std::uint64_t>(file, "file", "f_path.mnt", sockfs_mount());
    set<std::uint32_t>(file, "file", "f_flags", 02);  // O_RDWR
    set<std::uint64_t>(file, "file", "private_data", socket);
    set<std::uint64_t>(socket, "socket", "file", file);
    set<std::uint32_t>(socket, "socket", "state", spec.state == 1 ? 3 : 1);  // SS_CONNECTED, SS_UNCONNECTED
    const Addr sock = allocate(spec.family == 2 ? "tcp_sock" : "sock");
    set<std::uint64_t>(socket, "socket", "sk", sock);
    set<std::uint64_t>(sock, "sock", "sk_socket", socket);
    set<std::uint16_t>(sock, "sock", "__sk_common.skc_family", spec.family);
    set<std::uint8_t>(sock, "sock", "__sk_common.skc_state", spec.state);
    set<std::uint16_t>(sock, "sock", "sk_type", spec.type);
    set<std::uint16_t>(sock, "sock", "sk_protocol", spec.protocol);
    set<std::uint32_t>(sock, "sock", "__sk_common.skc_rcv_saddr", spec.local_address);
    set<std::uint32_t>(sock, "sock", "__sk_common.skc_daddr", spec.remote_address);
    set<std::uint16_t>(sock, "sock", "__sk_common.skc_num", spec.local_port);
    set<std::uint16_t>(sock, "sock", "__sk_common.skc_dport",
                       static_cast<std::uint16_t>(spec.remote_port << 8 | spec.remote_port >> 8));
    set<std::uint64_t>(sock, "sock", "__sk_common.skc_net.net", init_net());
    if (spec.filter_instructions != 0) {
      const Addr program = allocate("bpf_prog");
      set<std::uint32_t>(program, "bpf_prog", "len", spec.filter_instructions);
      if (spec.classic_filter) set<std::uint64_t>(program, "bpf_prog", "orig_prog", allocate("sock_fprog_kern"));
      const Addr filter = allocate("sk_filter");
      set<std::uint64_t>(filter, "sk_filter", "prog", program);
      set<std::uint64_t>(sock, "sock", "sk_filter", filter);
    }
    if (sock_out != nullptr) *sock_out = sock;
    return file;
  }

  // A memory descriptor for `task` whose maple tree (6.1: mm->mm_mt) is one root leaf holding the
  // areas in address order, the gaps between them as empty slots (at most 16 slots). Its page
  // tables are the kernel's (init_top_pgt). Returns the mm_struct; `areas_out` the vm_area_structs.
  Addr add_memory(Addr task, const std::vector<AreaSpec>& areas, std::vector<Addr>* areas_out = nullptr) {
    const Addr mm = allocate("mm_struct");
    set<std::uint64_t>(mm, "mm_struct", "pgd", symbol("init_top_pgt"));
    const Addr node = allocate("maple_node");
    std::vector<std::pair<Addr, Addr>> slots;  // entry, pivot (the slot's last address)
    Addr cursor = 0;
    for (const AreaSpec& area : areas) {
      if (area.start > cursor) slots.emplace_back(0, area.start - 1);
      const Addr vma = allocate("vm_area_struct");
      set<std::uint64_t>(vma, "vm_area_struct", "vm_start", area.start);
      set<std::uint64_t>(vma, "vm_area_struct", "vm_end", area.end);
      set<std::uint64_t>(vma, "vm_area_struct", "vm_flags", area.flags);
      set<std::uint64_t>(vma, "vm_area_struct", "vm_mm", area.mm != 0 ? area.mm : mm);
      if (areas_out != nullptr) areas_out->push_back(vma);
      slots.emplace_back(vma, area.end - 1);
      cursor = area.end;
    }
    slots.emplace_back(0, ~Addr{0});
    if (slots.size() > 16) throw std::runtime_error("synthetic kernel: more areas than one maple leaf holds");
    const std::uint32_t pivots = offset("maple_range_64", "pivot"), entries = offset("maple_range_64", "slot");
    for (std::size_t i = 0; i < slots.size(); ++i) {
      put<std::uint64_t>(node + entries + 8 * i, slots[i].first);
      if (i < 15) put<std::uint64_t>(node + pivots + 8 * i, slots[i].second);
    }
    put<std::uint8_t>(node + offset("maple_range_64", "meta") + offset("maple_metadata", "end"),
                      static_cast<std::uint8_t>(slots.size() - 1));
    // A root leaf: the node's address, its type (maple_leaf_64) in bits 3-6, bit 2 (a node) and
    // bit 1 (the root).
    set<std::uint64_t>(mm, "mm_struct", "mm_mt.ma_root", node | (1u << 3) | 0x4 | 0x2);
    set<std::uint64_t>(task, "task_struct", "mm", mm);
    set<std::uint64_t>(task, "task_struct", "active_mm", mm);
    return mm;
  }

  // The kernel log: `prb` pointing at a ring of 16 descriptors and 4 KiB of text holding these
  // records, finalized, with ids and sequence numbers from 0. Returns the descriptors' address.
  Addr add_log(const std::vector<LogSpec>& records) {
    constexpr unsigned kCountBits = 4, kSizeBits = 12;
    if (records.empty() || records.size() > (1u << kCountBits))
      throw std::runtime_error("synthetic kernel: 1 to 16 log records");
    const Addr ring = allocate("printk_ringbuffer");
    put<std::uint64_t>(symbol("prb"), ring);
    const std::uint32_t desc_size = size_of("prb_desc"), info_size = size_of("printk_info");
    const Addr descs = allocate(desc_size << kCountBits), infos = allocate(info_size << kCountBits);
    const Addr data = allocate(std::size_t{1} << kSizeBits);
    set<std::uint32_t>(ring, "printk_ringbuffer", "desc_ring.count_bits", kCountBits);
    set<std::uint64_t>(ring, "printk_ringbuffer", "desc_ring.descs", descs);
    set<std::uint64_t>(ring, "printk_ringbuffer", "desc_ring.infos", infos);
    set<std::uint64_t>(ring, "printk_ringbuffer", "desc_ring.tail_id", 0);
    set<std::uint64_t>(ring, "printk_ringbuffer", "desc_ring.head_id", records.size() - 1);
    set<std::uint32_t>(ring, "printk_ringbuffer", "text_data_ring.size_bits", kSizeBits);
    set<std::uint64_t>(ring, "printk_ringbuffer", "text_data_ring.data", data);
    std::uint64_t position = 0;
    for (std::uint64_t id = 0; id < records.size(); ++id) {
      const LogSpec& record = records[id];
      const Addr desc = descs + id * desc_size, info = infos + id * info_size;
      const std::uint64_t size = (8 + record.text.size() + 7) & ~std::uint64_t{7};
      if (position + size > (1u << kSizeBits)) throw std::runtime_error("synthetic kernel: log text too long");
      set<std::uint64_t>(desc, "prb_desc", "state_var", std::uint64_t{2} << 62 | id);  // desc_finalized
      set<std::uint64_t>(desc, "prb_desc", "text_blk_lpos.begin", position);
      set<std::uint64_t>(desc, "prb_desc", "text_blk_lpos.next", position + size);
      put<std::uint64_t>(data + position, id);
      write(data + position + 8, record.text.data(), record.text.size());
      position += size;
      set<std::uint64_t>(info, "printk_info", "seq", id);
      set<std::uint64_t>(info, "printk_info", "ts_nsec", record.timestamp_ns);
      set<std::uint16_t>(info, "printk_info", "text_len", static_cast<std::uint16_t>(record.text.size()));
      set<std::uint8_t>(info, "printk_info", "facility", record.facility);
      set<std::uint8_t>(info, "printk_info", "level", static_cast<std::uint8_t>(record.level << 5));
      set<std::uint32_t>(info, "printk_info", "caller_id", record.caller);
    }
    return descs;
  }

  static constexpr std::uint32_t kInitNetInode = 4026531840u;  // PROC_NET_INIT_INO
  static constexpr std::uint32_t kSockfsDevice = 8;            // 0:8, as on the sample guests

  // The objects allocated so far, as kernel virtual addresses [begin, end).
  std::pair<Addr, Addr> heap() const { return {kDirectMap + kHeapPhysical, kDirectMap + next_heap_}; }

  // The physical memory as a layer (a copy: the builder can go on changing its own).
  std::shared_ptr<const vmi::Layer> image() const { return std::make_shared<SparseLayer>(pages_); }

  // Maps the 4 KiB page at user address `virt` to fresh zeroed memory under init_top_pgt, the pgd
  // the builder gives every process, and returns the page's direct-map address to write through.
  Addr map_user_page(Addr virt) {
    const Addr memory = allocate(kPageSize);
    const Addr pml4 = kTextPhysical + (symbol("init_top_pgt") - text_);
    const Addr pdpt = table_under(pml4 + ((virt >> 39) & 511) * 8);
    const Addr pd = table_under(pdpt + ((virt >> 30) & 511) * 8);
    const Addr pt = table_under(pd + ((virt >> 21) & 511) * 8);
    const std::uint64_t entry = (memory - kDirectMap) | kPresentWritable | kUser;
    const Addr at = pt + ((virt >> 12) & 511) * 8;
    std::memcpy(page(at & ~(kPageSize - 1)).data() + (at & (kPageSize - 1)), &entry, 8);
    return memory;
  }

 private:
  void fill_task(Addr task, const TaskSpec& spec) {
    set<std::int32_t>(task, "task_struct", "pid", spec.pid);
    set<std::int32_t>(task, "task_struct", "tgid", spec.tgid);
    char comm[16] = {};
    std::memcpy(comm, spec.comm.data(), std::min<std::size_t>(spec.comm.size(), 15));
    write(field_address(task, "task_struct", "comm"), comm, sizeof comm);
    set<std::uint32_t>(task, "task_struct", "flags", spec.kernel_thread ? kPfKthread : 0);
    // What a task carved from memory is judged by (psscan): its scheduler class and its stack.
    set<std::uint64_t>(task, "task_struct", "sched_class",
                       symbol(spec.pid == 0 ? "idle_sched_class" : "fair_sched_class"));
    set<std::uint64_t>(task, "task_struct", "stack", kStacks + ++stacks_ * kThreadSize);
    set<std::uint64_t>(task, "task_struct", "real_parent", spec.parent);
    set<std::uint64_t>(task, "task_struct", "parent", spec.parent);
    set<std::uint64_t>(task, "task_struct", "start_boottime", spec.start_boottime_ns);
    set<std::uint64_t>(task, "task_struct", "start_time", spec.start_boottime_ns);
    const Addr cred = allocate("cred");
    for (const char* id : {"uid", "suid", "euid", "fsuid"}) set<std::uint32_t>(cred, "cred", id, spec.uid);
    for (const char* id : {"gid", "sgid", "egid", "fsgid"}) set<std::uint32_t>(cred, "cred", id, spec.gid);
    set<std::uint64_t>(task, "task_struct", "real_cred", cred);
    set<std::uint64_t>(task, "task_struct", "cred", cred);
    // One thread: signal->thread_head holds the task's thread_node.
    const Addr signal = allocate("signal_struct");
    set<std::int32_t>(signal, "signal_struct", "nr_threads", 1);
    set<std::uint64_t>(task, "task_struct", "signal", signal);
    const Addr thread_head = field_address(signal, "signal_struct", "thread_head");
    init_list(thread_head);
    list_add_tail(thread_head, field_address(task, "task_struct", "thread_node"));
  }

  Addr init_net() {
    const Addr net = symbol("init_net");
    set<std::uint32_t>(net, "net", "ns.inum", kInitNetInode);
    return net;
  }

  // sockfs's super_block and file_system_type, made once.
  Addr sockfs_super_block() {
    if (sockfs_sb_ != 0) return sockfs_sb_;
    const Addr name = allocate(8);
    write(name, "sockfs", 7);
    const Addr type = allocate("file_system_type");
    set<std::uint64_t>(type, "file_system_type", "name", name);
    sockfs_sb_ = allocate("super_block");
    set<std::uint32_t>(sockfs_sb_, "super_block", "s_dev", kSockfsDevice);
    set<std::uint64_t>(sockfs_sb_, "super_block", "s_type", type);
    return sockfs_sb_;
  }

  // /sys/module's kset (module_kset), made on first use.
  Addr module_kset() {
    const Addr pointer = symbol("module_kset");
    if (const auto kset = read<std::uint64_t>(pointer); kset != 0) return kset;
    const Addr kset = allocate("kset");
    init_list(field_address(kset, "kset", "list"));
    put<std::uint64_t>(pointer, kset);
    return kset;
  }

  // The vfsmount of sockfs's internal mount (struct mount.mnt), its own parent: a tree's top.
  Addr sockfs_mount() {
    if (sockfs_mnt_ != 0) return sockfs_mnt_;
    const Addr mount = allocate("mount");
    set<std::uint64_t>(mount, "mount", "mnt_parent", mount);
    sockfs_mnt_ = field_address(mount, "mount", "mnt");
    return sockfs_mnt_;
  }

  Addr physical_of(Addr virt) const {
    if (virt >= kDirectMap && virt < kDirectMap + (Addr{1} << 40)) return virt - kDirectMap;
    if (virt >= text_ && virt - text_ < (Addr{1} << 30)) return kTextPhysical + (virt - text_);
    throw std::runtime_error("synthetic kernel: " + vmi::hex(virt) + " is neither in the image nor the direct map");
  }

  std::vector<std::byte>& page(Addr physical) {
    auto& bytes = pages_[physical];
    if (bytes.empty()) bytes.resize(kPageSize);
    return bytes;
  }

  // The next-level table an entry points to, made when missing.
  Addr table_under(Addr entry_physical) {
    std::uint64_t entry = 0;
    std::memcpy(&entry, page(entry_physical & ~(kPageSize - 1)).data() + (entry_physical & (kPageSize - 1)), 8);
    if ((entry & 1) != 0) return entry & 0x000ffffffffff000ull;
    const Addr table = next_table_;
    next_table_ += kPageSize;
    page(table);
    entry = table | kPresentWritable;
    std::memcpy(page(entry_physical & ~(kPageSize - 1)).data() + (entry_physical & (kPageSize - 1)), &entry, 8);
    return table;
  }

  // Maps the 2 MiB page at `virt` to `physical` under init_top_pgt (4-level).
  void map_large(Addr virt, Addr physical) {
    const Addr pml4 = kTextPhysical + (symbol("init_top_pgt") - text_);
    const Addr pdpt = table_under(pml4 + ((virt >> 39) & 511) * 8);
    const Addr pd = table_under(pdpt + ((virt >> 30) & 511) * 8);
    const std::uint64_t entry = physical | kPresentWritable | kLargePage;
    const Addr at = pd + ((virt >> 21) & 511) * 8;
    std::memcpy(page(at & ~(kPageSize - 1)).data() + (at & (kPageSize - 1)), &entry, 8);
  }

  std::shared_ptr<const vmi::Profile> profile_;
  Addr text_ = 0, init_task_ = 0, sockfs_sb_ = 0, sockfs_mnt_ = 0, stacks_ = 0;
  Addr next_heap_ = kHeapPhysical, next_table_ = kTablePhysical;
  std::set<Addr> mapped_heap_;
  std::map<Addr, std::vector<std::byte>> pages_;
};

}  // namespace vmi_synthetic
