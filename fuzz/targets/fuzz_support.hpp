// Helpers shared by the libFuzzer targets: input as a file or a layer, and a fixed tiny profile.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "vmi/image.hpp"
#include "vmi/layer.hpp"
#include "vmi/plugin.hpp"
#include "vmi/profile.hpp"

namespace vmi_fuzz {

inline std::span<const std::byte> bytes_of(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const std::byte*>(data), size};
}

// A rows sink that keeps nothing: the walk is what is under test.
class DiscardRows final : public vmi::RowSink {
 public:
  void begin(std::span<const vmi::Column>, bool) override {}
  bool row(const vmi::Row&) override { return true; }
};

inline std::uint64_t le64(const std::uint8_t* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// One memfd reused across runs: the input becomes a file that FileMapping can map, under a
// path (/proc/self/fd/N) the format probes and openers accept like any other.
class InputFile {
 public:
  InputFile() : fd_(::memfd_create("vmi-fuzz-input", 0)) {
    if (fd_ < 0) __builtin_trap();
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  const std::string& write(const std::uint8_t* data, std::size_t size) {
    if (::ftruncate(fd_, 0) != 0) __builtin_trap();
    std::size_t done = 0;
    while (done < size) {
      ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) __builtin_trap();
      done += static_cast<std::size_t>(n);
    }
    return path_;
  }

 private:
  int fd_;
  std::string path_;
};

// Reads a little at the edges and the middle of every range (bounded), as a plugin would.
inline void exercise_layer(const vmi::Layer& layer, std::size_t max_ranges = 64) {
  std::vector<std::byte> buffer(8192);
  std::size_t seen = 0;
  for (const vmi::Range& range : layer.ranges()) {
    if (++seen > max_ranges) break;
    const vmi::Addr points[] = {
        range.begin, range.begin + range.size() / 2, range.end - 1, range.end - 8, range.end, range.begin + 4090};
    for (vmi::Addr at : points) {
      (void)layer.read(at, std::span(buffer).first(16));
    }
    (void)layer.read(range.begin, buffer);  // crosses the range's end when it is short
    (void)vmi::read_value<std::uint64_t>(layer, range.begin);
  }
}

inline void exercise_image(const vmi::PhysicalImage& image) {
  (void)image.name();
  (void)image.format();
  exercise_layer(image);
  for (const vmi::CpuState& cpu : image.cpu_states()) {
    for (const auto& [name, value] : cpu.registers) (void)name.size();
  }
  (void)image.facts();
}

// Every lookup a profile offers, over every type, field, enum, symbol and base type it holds.
inline void exercise_profile(const vmi::Profile& p) {
  for (vmi::TypeId id = 0; id < p.types.size(); ++id) {
    (void)p.size_of(id);
    (void)p.aggregate_of(id);
  }
  for (const vmi::Aggregate& aggregate : p.aggregates) {
    std::string name(p.str(aggregate.name));
    (void)p.find_aggregate(name);
    for (const vmi::Member& member : p.members(aggregate)) {
      (void)p.find_field(aggregate, p.str(member.name));
      (void)p.field(name, p.str(member.name));
    }
  }
  for (const vmi::EnumType& e : p.enums) {
    (void)p.find_enum(p.str(e.name));
    (void)p.enumerators(e);
  }
  for (const vmi::Symbol& symbol : p.symbols) {
    (void)p.symbol_address(p.str(symbol.name));
    (void)p.str(symbol.constant_data);
  }
  for (const vmi::BaseType& base : p.base_types) (void)p.find_base_type(p.str(base.name));
  (void)p.banner();
  (void)p.producer();
  (void)p.os();
}

// A tiny Linux ISF profile: the fields the task walker binds, and the anchors kernel detection
// needs. Its image layout (fuzz/make_corpus.py writes seeds that follow it):
//   physical 0 = _text = 0xffffffff81000000; __pgtable_l5_enabled at +0x80; linux_banner at +0x100;
//   init_top_pgt at +0x1000; init_task at +0x4000.
inline constexpr char kTinyLinuxIsf[] = R"json({
 "metadata": {"format": "6.2.0", "producer": {"name": "vmi-fuzz", "version": "1"},
              "linux": {"symbols": []}},
 "base_types": {
  "int": {"size": 4, "signed": true, "kind": "int", "endian": "little"},
  "unsigned int": {"size": 4, "signed": false, "kind": "int", "endian": "little"},
  "long long unsigned int": {"size": 8, "signed": false, "kind": "int", "endian": "little"},
  "long long int": {"size": 8, "signed": true, "kind": "int", "endian": "little"},
  "short unsigned int": {"size": 2, "signed": false, "kind": "int", "endian": "little"},
  "char": {"size": 1, "signed": true, "kind": "char", "endian": "little"},
  "_Bool": {"size": 1, "signed": false, "kind": "bool", "endian": "little"},
  "pointer": {"size": 8, "signed": false, "kind": "int", "endian": "little"},
  "void": {"size": 0, "signed": false, "kind": "void", "endian": "little"}
 },
 "user_types": {
  "list_head": {"kind": "struct", "size": 16, "fields": {
    "next": {"offset": 0, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "list_head"}}},
    "prev": {"offset": 8, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "list_head"}}}}},
  "task_struct": {"kind": "struct", "size": 256, "fields": {
    "tasks": {"offset": 0, "type": {"kind": "struct", "name": "list_head"}},
    "pid": {"offset": 16, "type": {"kind": "base", "name": "int"}},
    "tgid": {"offset": 20, "type": {"kind": "base", "name": "int"}},
    "comm": {"offset": 24, "type": {"kind": "array", "count": 16, "subtype": {"kind": "base", "name": "char"}}},
    "real_parent": {"offset": 40, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "task_struct"}}},
    "real_cred": {"offset": 48, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "cred"}}},
    "flags": {"offset": 56, "type": {"kind": "base", "name": "unsigned int"}},
    "in_execve": {"offset": 60, "type": {"kind": "bitfield", "bit_position": 3, "bit_length": 1,
                  "type": {"kind": "base", "name": "unsigned int"}}},
    "start_time": {"offset": 64, "type": {"kind": "base", "name": "long long unsigned int"}},
    "start_boottime": {"offset": 72, "type": {"kind": "base", "name": "long long unsigned int"}},
    "signal": {"offset": 80, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "signal_struct"}}},
    "thread_node": {"offset": 88, "type": {"kind": "struct", "name": "list_head"}},
    "worker_private": {"offset": 104, "type": {"kind": "pointer", "subtype": {"kind": "base", "name": "void"}}},
    "name_ptr": {"offset": 112, "type": {"kind": "pointer", "subtype": {"kind": "base", "name": "char"}}},
    "state": {"offset": 120, "type": {"kind": "enum", "name": "task_state"}},
    "u": {"offset": 128, "type": {"kind": "union", "name": "unnamed_1"}},
    "files": {"offset": 160, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "files_struct"}}},
    "fs": {"offset": 168, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "fs_struct"}}}}},
  "fs_struct": {"kind": "struct", "size": 32, "fields": {
    "root": {"offset": 8, "type": {"kind": "struct", "name": "path"}}}},
  "path": {"kind": "struct", "size": 16, "fields": {
    "mnt": {"offset": 0, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "vfsmount"}}},
    "dentry": {"offset": 8, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "dentry"}}}}},
  "files_struct": {"kind": "struct", "size": 64, "fields": {
    "fdt": {"offset": 8, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "fdtable"}}}}},
  "fdtable": {"kind": "struct", "size": 32, "fields": {
    "max_fds": {"offset": 0, "type": {"kind": "base", "name": "unsigned int"}},
    "fd": {"offset": 8, "type": {"kind": "pointer", "subtype": {"kind": "pointer", "subtype": {"kind": "struct", "name": "file"}}}},
    "close_on_exec": {"offset": 16, "type": {"kind": "pointer", "subtype": {"kind": "base", "name": "long long unsigned int"}}}}},
  "file": {"kind": "struct", "size": 64, "fields": {
    "f_path": {"offset": 0, "type": {"kind": "struct", "name": "path"}},
    "f_inode": {"offset": 16, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "inode"}}},
    "f_flags": {"offset": 24, "type": {"kind": "base", "name": "unsigned int"}},
    "f_pos": {"offset": 32, "type": {"kind": "base", "name": "long long int"}}}},
  "hlist_bl_node": {"kind": "struct", "size": 16, "fields": {
    "next": {"offset": 0, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "hlist_bl_node"}}},
    "pprev": {"offset": 8, "type": {"kind": "pointer", "subtype": {"kind": "base", "name": "void"}}}}},
  "qstr": {"kind": "struct", "size": 16, "fields": {
    "len": {"offset": 4, "type": {"kind": "base", "name": "unsigned int"}},
    "name": {"offset": 8, "type": {"kind": "pointer", "subtype": {"kind": "base", "name": "char"}}}}},
  "dentry": {"kind": "struct", "size": 64, "fields": {
    "d_hash": {"offset": 0, "type": {"kind": "struct", "name": "hlist_bl_node"}},
    "d_parent": {"offset": 16, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "dentry"}}},
    "d_name": {"offset": 24, "type": {"kind": "struct", "name": "qstr"}},
    "d_inode": {"offset": 40, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "inode"}}},
    "d_sb": {"offset": 48, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "super_block"}}}}},
  "vfsmount": {"kind": "struct", "size": 16, "fields": {
    "mnt_root": {"offset": 0, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "dentry"}}},
    "mnt_sb": {"offset": 8, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "super_block"}}}}},
  "mount": {"kind": "struct", "size": 64, "fields": {
    "mnt_parent": {"offset": 0, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "mount"}}},
    "mnt_mountpoint": {"offset": 8, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "dentry"}}},
    "mnt": {"offset": 16, "type": {"kind": "struct", "name": "vfsmount"}}}},
  "timespec64": {"kind": "struct", "size": 16, "fields": {
    "tv_sec": {"offset": 0, "type": {"kind": "base", "name": "long long int"}},
    "tv_nsec": {"offset": 8, "type": {"kind": "base", "name": "long long int"}}}},
  "inode": {"kind": "struct", "size": 96, "fields": {
    "i_mode": {"offset": 0, "type": {"kind": "base", "name": "short unsigned int"}},
    "i_sb": {"offset": 8, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "super_block"}}},
    "i_ino": {"offset": 16, "type": {"kind": "base", "name": "long long unsigned int"}},
    "i_size": {"offset": 24, "type": {"kind": "base", "name": "long long int"}},
    "i_atime": {"offset": 32, "type": {"kind": "struct", "name": "timespec64"}},
    "i_mtime": {"offset": 48, "type": {"kind": "struct", "name": "timespec64"}},
    "i_ctime": {"offset": 64, "type": {"kind": "struct", "name": "timespec64"}}}},
  "super_block": {"kind": "struct", "size": 32, "fields": {
    "s_dev": {"offset": 0, "type": {"kind": "base", "name": "unsigned int"}},
    "s_type": {"offset": 8, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "file_system_type"}}}}},
  "file_system_type": {"kind": "struct", "size": 16, "fields": {
    "name": {"offset": 0, "type": {"kind": "pointer", "subtype": {"kind": "base", "name": "char"}}}}},
  "module": {"kind": "struct", "size": 256, "fields": {
    "state": {"offset": 0, "type": {"kind": "base", "name": "unsigned int"}},
    "list": {"offset": 8, "type": {"kind": "struct", "name": "list_head"}},
    "name": {"offset": 24, "type": {"kind": "array", "count": 56, "subtype": {"kind": "base", "name": "char"}}},
    "core_layout": {"offset": 80, "type": {"kind": "struct", "name": "module_layout"}},
    "init_layout": {"offset": 112, "type": {"kind": "struct", "name": "module_layout"}},
    "refcnt": {"offset": 144, "type": {"kind": "base", "name": "int"}},
    "taints": {"offset": 152, "type": {"kind": "base", "name": "long long unsigned int"}},
    "kp": {"offset": 160, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "kernel_param"}}},
    "num_kp": {"offset": 168, "type": {"kind": "base", "name": "unsigned int"}},
    "init": {"offset": 176, "type": {"kind": "pointer", "subtype": {"kind": "base", "name": "void"}}},
    "exit": {"offset": 184, "type": {"kind": "pointer", "subtype": {"kind": "base", "name": "void"}}},
    "source_list": {"offset": 192, "type": {"kind": "struct", "name": "list_head"}}}},
  "module_layout": {"kind": "struct", "size": 32, "fields": {
    "base": {"offset": 0, "type": {"kind": "pointer", "subtype": {"kind": "base", "name": "void"}}},
    "size": {"offset": 8, "type": {"kind": "base", "name": "unsigned int"}},
    "text_size": {"offset": 12, "type": {"kind": "base", "name": "unsigned int"}}}},
  "module_use": {"kind": "struct", "size": 48, "fields": {
    "source_list": {"offset": 0, "type": {"kind": "struct", "name": "list_head"}},
    "target_list": {"offset": 16, "type": {"kind": "struct", "name": "list_head"}},
    "source": {"offset": 32, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "module"}}},
    "target": {"offset": 40, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "module"}}}}},
  "kernel_param": {"kind": "struct", "size": 40, "fields": {
    "name": {"offset": 0, "type": {"kind": "pointer", "subtype": {"kind": "base", "name": "char"}}},
    "ops": {"offset": 8, "type": {"kind": "pointer", "subtype": {"kind": "base", "name": "void"}}},
    "perm": {"offset": 16, "type": {"kind": "base", "name": "short unsigned int"}},
    "arg": {"offset": 24, "type": {"kind": "pointer", "subtype": {"kind": "base", "name": "void"}}}}},
  "kparam_string": {"kind": "struct", "size": 16, "fields": {
    "maxlen": {"offset": 0, "type": {"kind": "base", "name": "unsigned int"}},
    "string": {"offset": 8, "type": {"kind": "pointer", "subtype": {"kind": "base", "name": "char"}}}}},
  "kparam_array": {"kind": "struct", "size": 32, "fields": {
    "max": {"offset": 0, "type": {"kind": "base", "name": "unsigned int"}},
    "elemsize": {"offset": 4, "type": {"kind": "base", "name": "unsigned int"}},
    "num": {"offset": 8, "type": {"kind": "pointer", "subtype": {"kind": "base", "name": "unsigned int"}}},
    "ops": {"offset": 16, "type": {"kind": "pointer", "subtype": {"kind": "base", "name": "void"}}},
    "elem": {"offset": 24, "type": {"kind": "pointer", "subtype": {"kind": "base", "name": "void"}}}}},
  "unnamed_1": {"kind": "union", "size": 16, "fields": {
    "a": {"offset": 0, "type": {"kind": "base", "name": "long long unsigned int"}},
    "b": {"offset": 0, "type": {"kind": "array", "count": 2, "subtype": {"kind": "base", "name": "unsigned int"}}}}},
  "cred": {"kind": "struct", "size": 32, "fields": {
    "uid": {"offset": 4, "type": {"kind": "base", "name": "unsigned int"}},
    "gid": {"offset": 8, "type": {"kind": "base", "name": "unsigned int"}},
    "euid": {"offset": 12, "type": {"kind": "base", "name": "unsigned int"}},
    "egid": {"offset": 16, "type": {"kind": "base", "name": "unsigned int"}}}},
  "signal_struct": {"kind": "struct", "size": 64, "fields": {
    "thread_head": {"offset": 16, "type": {"kind": "struct", "name": "list_head"}}}},
  "kthread": {"kind": "struct", "size": 32, "fields": {
    "full_name": {"offset": 8, "type": {"kind": "pointer", "subtype": {"kind": "base", "name": "char"}}},
    "data": {"offset": 16, "type": {"kind": "pointer", "subtype": {"kind": "base", "name": "void"}}}}},
  "worker": {"kind": "struct", "size": 64, "fields": {
    "current_work": {"offset": 8, "type": {"kind": "pointer", "subtype": {"kind": "base", "name": "void"}}},
    "desc": {"offset": 32, "type": {"kind": "array", "count": 24, "subtype": {"kind": "base", "name": "char"}}}}}
 },
 "enums": {
  "task_state": {"size": 4, "base": "unsigned int", "constants": {"RUNNING": 0, "SLEEPING": 1}}
 },
 "symbols": {
  "_text": {"address": 18446744071578845184},
  "__pgtable_l5_enabled": {"address": 18446744071578845312, "type": {"kind": "base", "name": "unsigned int"}},
  "linux_banner": {"address": 18446744071578845440,
                   "constant_data": "TGludXggdmVyc2lvbiA2LjEuMC1mdXp6IChnY2MpICMxCgA="},
  "init_top_pgt": {"address": 18446744071578849280},
  "init_task": {"address": 18446744071578861568, "type": {"kind": "struct", "name": "task_struct"}},
  "modules": {"address": 18446744071578871808, "type": {"kind": "struct", "name": "list_head"}},
  "param_ops_int": {"address": 18446744071578873600},
  "param_ops_charp": {"address": 18446744071578873616},
  "param_ops_string": {"address": 18446744071578873632},
  "param_array_ops": {"address": 18446744071578873648}
 }
})json";

}  // namespace vmi_fuzz
