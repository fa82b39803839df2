// A SYNTHETIC Windows x64 memory image for tests and fuzz targets. No Windows guest can be booted
// here, so the image is built from a shipped ISF profile's layouts and symbol offsets, the way the
// kernel lays its memory out: the low stub's PROCESSOR_START_BLOCK below 1 MiB, 4-level page
// tables with a self-referencing PML4 entry, ntoskrnl mapped by a 2 MiB large page and 4 KiB
// pages with real PE headers and a CodeView (RSDS) record naming the profile's PDB, an _EPROCESS
// ring on PsActiveProcessHead with sessions, handle tables, audit names, WoW64 and exited
// processes, processes unlinked from the ring, and each user process's PEB and parameters in its
// own address space. Everything the generator writes is also what the tests expect, so the spec
// is the truth; every byte not written is zero, and a page never written is a hole.
//
//   SyntheticWindows w(profile);
//   w.add_process({.pid = 4, .ppid = 0, .name = "System", ...});
//   Session session = Session::over_layer(w.image(), options);
//   write_file(path, w.raw_image());
//   write_file(path, crash_dump(w, DumpKind::bitmap));  // synthetic_windows_dumps.hpp
//
// Setup errors (a symbol or field the profile lacks) throw std::runtime_error: this is test and
// fuzz scaffolding, not library code.
#pragma once

#include <algorithm>
#include <bit>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "synthetic_kernel.hpp"  // SparseLayer
#include "vmi/profile.hpp"

namespace vmi_synthetic {

// A PE image on a loader list: a driver, or a DLL in a process.
struct LoadedImageSpec {
  Addr base = 0;
  std::uint32_t size = 0;
  std::string name{}, path{};      // BaseDllName, FullDllName
  std::int64_t load_filetime = 0;  // DLLs only: _LDR_DATA_TABLE_ENTRY.LoadTime
};

struct WindowsProcessSpec {
  std::int64_t pid = 0, ppid = 0;
  std::string name{};                      // ImageFileName, at most 15 bytes
  std::uint32_t threads = 1;               // ActiveThreads
  std::int32_t handle_count = 0;           // _HANDLE_TABLE.HandleCount, where the build keeps it
  std::optional<std::uint32_t> session{};  // none: no session (System)
  bool wow64 = false;
  std::int64_t create_filetime = 0;          // 100 ns since 1601
  std::int64_t exit_filetime = 0;            // non-zero: exited (no handle table, address space gone)
  bool linked = true;                        // false: unlinked from the ring, as a rootkit hides it
  std::string audit{};                       // SeAuditProcessCreationInfo's name; empty: none
  std::string command_line{}, image_path{};  // the PEB's ProcessParameters; both empty: no PEB
  std::vector<LoadedImageSpec> dlls{};       // the PEB loader list, in load order
};

// A handle in a process's table: its value, the object's body and the access granted.
struct HandleSpec {
  std::uint64_t value = 0;  // a multiple of 4, not 0
  Addr object = 0;
  std::uint32_t granted_access = 0;
};

class SyntheticWindows {
 public:
  static constexpr Addr kKernelBase = 0xfffff8023c200000ull;  // 2 MiB aligned, as KASLR places it
  static constexpr Addr kPool = 0xffffa48000000000ull;
  static constexpr Addr kLowStub = 0x13000;
  static constexpr Addr kKernelPml4 = 0x1aa000;
  static constexpr Addr kKernelLargePage = 0x200000;  // the image's first 2 MiB
  static constexpr Addr kDebugRva = 0x3000, kCodeViewRva = 0x3100, kEntryRva = 0x1800;
  static constexpr std::uint8_t kCookie = 0x5c;
  static constexpr Addr kUserSharedData = 0xfffff78000000000ull;
  // KdCopyDataBlock's decoding values (Windows 8 and later encode the KDBG block with them).
  static constexpr std::uint64_t kWaitNever = 0x3c5e1d2f8a9b7e4dull, kWaitAlways = 0x9e17f00dba5eba11ull;
  // ObTypeIndexTable's indices as Windows 10 numbers them.
  static constexpr std::uint8_t kTypeType = 2, kProcessType = 7, kThreadType = 8, kEventType = 16, kFileType = 37,
                                kKeyType = 44;
  static constexpr std::pair<std::uint8_t, const char*> kTypes[] = {{kProcessType, "Process"},
                                                                    {kThreadType, "Thread"},
                                                                    {kEventType, "Event"},
                                                                    {kFileType, "File"},
                                                                    {kKeyType, "Key"}};

  // `self_reference`: the PML4 index that maps the table itself (0x1ed before Windows 10's
  // randomisation; any kernel-half index since).
  // `symbol_shift`: lay the kernel out as another patch level of the profile's build would, its
  // globals that many bytes from the profile's offsets and its PDB GUID another one.
  explicit SyntheticWindows(std::shared_ptr<const vmi::Profile> profile, std::size_t self_reference = 0x1ed,
                            bool low_stub = true, Addr symbol_shift = 0)
      : profile_(std::move(profile)), self_reference_(self_reference), symbol_shift_(symbol_shift) {
    vmi::ProfileIdentity identity = profile_->identity();
    if (symbol_shift_ != 0) identity.pdb_guid.back() = identity.pdb_guid.back() == '0' ? '1' : '0';
    if (identity.os != "windows") throw std::runtime_error("not a Windows profile");
    page(kKernelPml4);
    put_physical<std::uint64_t>(kKernelPml4 + self_reference_ * 8, kKernelPml4 | kPresentWritable);
    // The kernel-half top-level entries exist before any process copies them.
    table_under(kKernelPml4, kKernelBase, 4);
    table_under(kKernelPml4, kPool, 4);
    map(kKernelPml4, kKernelBase, kKernelLargePage, true);
    write_pe_image(identity);
    if (low_stub) write_low_stub();
    // The object manager's types, and since Windows 10 the cookie TypeIndex is XORed with.
    if (profile_->find_symbol("ObHeaderCookie") != nullptr) {
      cookie_ = kCookie;
      put<std::uint8_t>(kKernelPml4, symbol("ObHeaderCookie"), kCookie);
    }
    const std::vector<std::byte> empty_table(256 * 8);  // ObTypeIndexTable[256], every slot in memory
    write(kKernelPml4, symbol("ObTypeIndexTable"), empty_table.data(), empty_table.size());
    put<std::uint64_t>(kKernelPml4, symbol("ObTypeIndexTable") + 8, 0xbad0b0b0);  // slot 1, as Windows fills it
    // "Type", the type of types (its own type too), as an object with a header; the others plain.
    const Addr type_type = add_object(kTypeType, 0x546a624f, size_of("_OBJECT_TYPE") + 8);  // "ObjT"
    unicode_string(kKernelPml4, type_type + offset("_OBJECT_TYPE", "Name"), "Type",
                   type_type + size_of("_OBJECT_TYPE"));
    put<std::uint8_t>(kKernelPml4, type_type + offset("_OBJECT_TYPE", "Index"), kTypeType);
    put<std::uint64_t>(kKernelPml4, symbol("ObTypeIndexTable") + kTypeType * 8, type_type);
    put<std::uint64_t>(kKernelPml4, symbol("ObpTypeObjectType"), type_type);
    for (const auto& [index, name] : kTypes) {
      const Addr type = allocate(size_of("_OBJECT_TYPE") + std::strlen(name) * 2);
      unicode_string(kKernelPml4, type + offset("_OBJECT_TYPE", "Name"), name, type + size_of("_OBJECT_TYPE"));
      put<std::uint8_t>(kKernelPml4, type + offset("_OBJECT_TYPE", "Index"), index);
      put<std::uint64_t>(kKernelPml4, symbol("ObTypeIndexTable") + index * 8, type);
    }
    // Globals the walkers read.
    init_list(symbol("PsActiveProcessHead"));
    init_list(symbol("PsLoadedModuleList"));
    add_loaded_module({kKernelBase, 0x1000000, "ntoskrnl.exe", "\\SystemRoot\\system32\\ntoskrnl.exe"});
    write_kdbg();
    map(kKernelPml4, kUserSharedData, fresh_page(), false);
  }

  const vmi::Profile& profile() const { return *profile_; }
  Addr kernel_base() const { return kKernelBase; }
  Addr page_table_root() const { return kKernelPml4; }
  // The kernel pool the builder allocated objects in: [begin, end).
  std::pair<Addr, Addr> pool() const { return {kPool, next_pool_}; }
  // The loader entries of the drivers on PsLoadedModuleList, in order (ntoskrnl's first).
  const std::vector<Addr>& module_entries() const { return module_entries_; }

  Addr symbol(std::string_view name) const {
    const vmi::Symbol* found = profile_->find_symbol(name);
    if (found == nullptr) throw std::runtime_error("profile has no symbol " + std::string(name));
    return kKernelBase + found->address + symbol_shift_;  // Windows ISF symbols are image offsets
  }
  std::uint32_t offset(std::string_view type, std::string_view field) const {
    auto info = profile_->field(type, field);
    if (!info) throw std::runtime_error(info.error().message);
    return info->offset;
  }
  bool has_field(std::string_view type, std::string_view field) const {
    return profile_->field(type, field).has_value();
  }
  std::uint32_t size_of(std::string_view type) const {
    const vmi::Aggregate* aggregate = profile_->find_aggregate(type);
    if (aggregate == nullptr) throw std::runtime_error("profile has no type " + std::string(type));
    return aggregate->size;
  }

  // NtBuildNumber (with the free-build flag) and NtBuildLab, as `info` reads them.
  void set_build(std::uint32_t number, const std::string& lab) {
    build_number_ = number;
    put<std::uint32_t>(kKernelPml4, kUserSharedData + 0x260, number);                  // NtBuildNumber
    put<std::uint32_t>(kKernelPml4, kUserSharedData + 0x26c, number < 9200 ? 6 : 10);  // NtMajorVersion
    put<std::uint32_t>(kKernelPml4, kUserSharedData + 0x270, number < 9200 ? 1 : 0);   // NtMinorVersion
    put<std::uint32_t>(kKernelPml4, symbol("NtBuildNumber"), 0xf0000000u | number);
    write(kKernelPml4, symbol("NtBuildLab"), lab.c_str(), lab.size() + 1);
  }

  // Zeroed kernel pool, on pages of its own.
  Addr allocate(std::size_t bytes) {
    const Addr at = next_pool_;
    next_pool_ += (std::max<std::size_t>(bytes, 1) + 15) & ~std::size_t{15};
    next_pool_ = (next_pool_ + kPageSize - 1) & ~(kPageSize - 1);
    for (Addr p = at; p < next_pool_; p += kPageSize) map(kKernelPml4, p, fresh_page(), false);
    return at;
  }

  // A process object as the object manager allocates it: a pool block tagged "Proc" ("Pro\xe3"
  // on Windows 7, the protected form), an _OBJECT_HEADER_QUOTA_INFO, the _OBJECT_HEADER and the
  // _EPROCESS as its body. Returns the _EPROCESS.
  Addr add_process(const WindowsProcessSpec& spec) {
    const std::uint32_t body = offset("_OBJECT_HEADER", "Body");
    const std::uint32_t header = 16 + size_of("_OBJECT_HEADER_QUOTA_INFO");
    const std::size_t block_size = (header + body + size_of("_EPROCESS") + 15) & ~std::size_t{15};
    const Addr block = allocate(block_size);
    put<std::uint8_t>(kKernelPml4, block + 2, static_cast<std::uint8_t>(block_size / 16));  // BlockSize
    put<std::uint8_t>(kKernelPml4, block + 3, 2);                                           // PoolType
    const bool windows7 = profile_->find_aggregate("_KLDR_DATA_TABLE_ENTRY") == nullptr;
    put<std::uint32_t>(kKernelPml4, block + 4, windows7 ? 0xe36f7250u : 0x636f7250u);  // PoolTag
    object_header(block + header, kProcessType, 0x08);                                 // quota info
    const Addr process = block + header + body;
    put<std::uint8_t>(kKernelPml4, process, 3);  // Pcb.Header.Type: ProcessObject
    const std::uint32_t pcb = offset("_EPROCESS", "Pcb");
    // A process of its own has its own PML4, sharing the kernel half.
    Addr root = kKernelPml4;
    if (!spec.command_line.empty() || !spec.image_path.empty()) {
      root = fresh_page();
      for (std::size_t i = 256; i < 512; ++i) {
        const auto entry = read_physical<std::uint64_t>(kKernelPml4 + i * 8);
        put_physical<std::uint64_t>(root + i * 8, i == self_reference_ ? (root | kPresentWritable) : entry);
      }
    }
    put<std::uint64_t>(kKernelPml4, process + pcb + offset("_KPROCESS", "DirectoryTableBase"), root);
    put<std::uint64_t>(kKernelPml4, process + offset("_EPROCESS", "UniqueProcessId"), spec.pid);
    put<std::uint64_t>(kKernelPml4, process + offset("_EPROCESS", "InheritedFromUniqueProcessId"), spec.ppid);
    write(kKernelPml4, process + offset("_EPROCESS", "ImageFileName"), spec.name.data(),
          std::min<std::size_t>(spec.name.size(), 15));
    put<std::uint32_t>(kKernelPml4, process + offset("_EPROCESS", "ActiveThreads"), spec.threads);
    put<std::int64_t>(kKernelPml4, process + offset("_EPROCESS", "CreateTime"), spec.create_filetime);
    put<std::int64_t>(kKernelPml4, process + offset("_EPROCESS", "ExitTime"), spec.exit_filetime);
    if (spec.exit_filetime == 0) {
      const Addr table = allocate(size_of("_HANDLE_TABLE"));
      put<std::uint64_t>(kKernelPml4, table + offset("_HANDLE_TABLE", "TableCode"), allocate(kPageSize));  // empty
      if (has_field("_HANDLE_TABLE", "HandleCount"))
        put<std::int32_t>(kKernelPml4, table + offset("_HANDLE_TABLE", "HandleCount"), spec.handle_count);
      put<std::uint64_t>(kKernelPml4, process + offset("_EPROCESS", "ObjectTable"), table);
    }
    if (spec.session) {
      put<std::uint64_t>(kKernelPml4, process + offset("_EPROCESS", "Session"), session(*spec.session));
    }
    if (spec.wow64) {
      const bool win10 = has_field("_EPROCESS", "WoW64Process");
      const Addr wow64 = allocate(win10 ? size_of("_EWOW64PROCESS") : 16);
      put<std::uint64_t>(kKernelPml4, process + offset("_EPROCESS", win10 ? "WoW64Process" : "Wow64Process"), wow64);
    }
    if (!spec.audit.empty()) {
      const Addr info = allocate(size_of("_OBJECT_NAME_INFORMATION") + spec.audit.size() * 2);
      unicode_string(kKernelPml4, info + offset("_OBJECT_NAME_INFORMATION", "Name"), spec.audit,
                     info + size_of("_OBJECT_NAME_INFORMATION"));
      put<std::uint64_t>(kKernelPml4, process + offset("_EPROCESS", "SeAuditProcessCreationInfo"), info);
    }
    if (root != kKernelPml4) write_peb(process, root, spec);
    const Addr links = process + offset("_EPROCESS", "ActiveProcessLinks");
    if (spec.linked) {
      list_add_tail(kKernelPml4, symbol("PsActiveProcessHead"), links);
    } else {
      init_list(links);  // unlinked as DKOM leaves it: pointing at itself
    }
    processes_.push_back(process);
    return process;
  }

  // A driver on PsLoadedModuleList: a _KLDR_DATA_TABLE_ENTRY (Windows 7: _LDR_DATA_TABLE_ENTRY),
  // its names in pool.
  Addr add_loaded_module(const LoadedImageSpec& spec) {
    const std::string type = profile_->find_aggregate("_KLDR_DATA_TABLE_ENTRY") != nullptr ? "_KLDR_DATA_TABLE_ENTRY"
                                                                                           : "_LDR_DATA_TABLE_ENTRY";
    const Addr entry = allocate(size_of(type) + (spec.name.size() + spec.path.size()) * 2);
    write_loader_entry(kKernelPml4, type, entry, spec, entry + size_of(type));
    list_add_tail(kKernelPml4, symbol("PsLoadedModuleList"), entry + offset(type, "InLoadOrderLinks"));
    module_entries_.push_back(entry);
    return entry;
  }

  // An object of `type` (an index of kTypes) as the object manager allocates it: a pool block with
  // `tag`, a name-information header when `name` is not empty, the _OBJECT_HEADER and a zeroed
  // body of `body_size` bytes, which is returned.
  Addr add_object(std::uint8_t type, std::uint32_t tag, std::size_t body_size, const std::string& name = {}) {
    const std::uint32_t body = offset("_OBJECT_HEADER", "Body");
    const std::uint32_t name_info = name.empty() ? 0 : size_of("_OBJECT_HEADER_NAME_INFO");
    const std::size_t block_size = (16 + name_info + body + body_size + 15) & ~std::size_t{15};
    const Addr block = allocate(block_size + name.size() * 2);
    put<std::uint8_t>(kKernelPml4, block + 2, static_cast<std::uint8_t>(std::min<std::size_t>(block_size / 16, 255)));
    put<std::uint32_t>(kKernelPml4, block + 4, tag);
    const Addr header = block + 16 + name_info;
    if (!name.empty()) {
      unicode_string(kKernelPml4, block + 16 + offset("_OBJECT_HEADER_NAME_INFO", "Name"), name, block + block_size);
    }
    object_header(header, type, name.empty() ? 0 : 0x02);
    return header + body;
  }
  Addr add_thread(std::int64_t pid, std::int64_t tid) {
    const Addr thread = add_object(kThreadType, 0x65726854, size_of("_ETHREAD"));  // "Thre"
    const Addr cid = thread + offset("_ETHREAD", "Cid");
    put<std::uint64_t>(kKernelPml4, cid + offset("_CLIENT_ID", "UniqueProcess"), pid);
    put<std::uint64_t>(kKernelPml4, cid + offset("_CLIENT_ID", "UniqueThread"), tid);
    return thread;
  }
  Addr add_file(const std::string& path) {
    const Addr file = add_object(kFileType, 0x656c6946, size_of("_FILE_OBJECT"));  // "File"
    const Addr text = allocate(path.size() * 2);
    unicode_string(kKernelPml4, file + offset("_FILE_OBJECT", "FileName"), path, text);
    return file;
  }
  Addr add_event(const std::string& name) { return add_object(kEventType, 0x76657645, size_of("_KEVENT"), name); }
  // An open key (_CM_KEY_BODY) whose control blocks name `path` from the root: {"REGISTRY",
  // "MACHINE", "SOFTWARE"}; names are stored compressed (one byte a character), as the
  // registry stores ASCII names.
  Addr add_key(const std::vector<std::string>& path) {
    Addr parent = 0;
    for (const std::string& name : path) {
      const Addr kcb = allocate(size_of("_CM_KEY_CONTROL_BLOCK"));
      const Addr block = allocate(size_of("_CM_NAME_CONTROL_BLOCK") + name.size());
      put<std::uint32_t>(kKernelPml4, block, 1);  // Compressed
      put<std::uint16_t>(kKernelPml4, block + offset("_CM_NAME_CONTROL_BLOCK", "NameLength"),
                         static_cast<std::uint16_t>(name.size()));
      write(kKernelPml4, block + offset("_CM_NAME_CONTROL_BLOCK", "Name"), name.data(), name.size());
      put<std::uint64_t>(kKernelPml4, kcb + offset("_CM_KEY_CONTROL_BLOCK", "NameBlock"), block);
      put<std::uint64_t>(kKernelPml4, kcb + offset("_CM_KEY_CONTROL_BLOCK", "ParentKcb"), parent);
      parent = kcb;
    }
    const Addr key = add_object(kKeyType, 0x2079654b, size_of("_CM_KEY_BODY"));  // "Key "
    put<std::uint64_t>(kKernelPml4, key + offset("_CM_KEY_BODY", "KeyControlBlock"), parent);
    return key;
  }

  // Fills a live process's handle table with `handles` at `level` (0: one page of entries, 1 or
  // 2: directories of pointers above them), encoding each entry as the build does.
  void set_handles(Addr process, const std::vector<HandleSpec>& handles, unsigned level) {
    const Addr table = read<std::uint64_t>(process + offset("_EPROCESS", "ObjectTable"));
    if (table == 0) throw std::runtime_error("the process has no handle table");
    const Addr top = allocate(kPageSize);
    const bool pointer_bits = profile_->field("_HANDLE_TABLE_ENTRY", "ObjectPointerBits").has_value();
    const Addr header_to_body = offset("_OBJECT_HEADER", "Body");
    for (const HandleSpec& handle : handles) {
      const std::uint64_t index = handle.value / 4;
      Addr page = top;
      if (level >= 2) page = directory_slot(page, index / (256 * 512));
      if (level >= 1) page = directory_slot(page, (index / 256) % 512);
      const Addr entry = page + (index % 256) * 16;
      const Addr header = handle.object - header_to_body;
      if (pointer_bits) {
        put<std::uint64_t>(kKernelPml4, entry, (((header & 0xffffffffffffull) >> 4) << 20) | 1);  // Unlocked
        put<std::uint64_t>(kKernelPml4, entry + 8, handle.granted_access & 0x1ffffff);
      } else {
        put<std::uint64_t>(kKernelPml4, entry, header | 1);  // the lock bit
        put<std::uint64_t>(kKernelPml4, entry + 8, handle.granted_access);
      }
    }
    put<std::uint64_t>(kKernelPml4, table + offset("_HANDLE_TABLE", "TableCode"), top | level);
  }

  // Removes the physical page behind a kernel address: every read of it fails.
  void unmap(Addr virt) { pages_.erase(physical_of(kKernelPml4, virt) & ~(kPageSize - 1)); }

  template <class T>
  void put(Addr root, Addr virt, T value) {
    write(root, virt, &value, sizeof value);
  }
  void write(Addr root, Addr virt, const void* bytes, std::size_t size) {
    const auto* from = static_cast<const std::byte*>(bytes);
    for (std::size_t done = 0; done < size;) {
      const Addr physical = physical_of(root, virt + done);
      const std::size_t n = std::min<std::size_t>(kPageSize - (physical & (kPageSize - 1)), size - done);
      std::memcpy(page(physical & ~(kPageSize - 1)).data() + (physical & (kPageSize - 1)), from + done, n);
      done += n;
    }
  }
  // The physical address behind a kernel address.
  Addr physical(Addr virt) const { return physical_of(kKernelPml4, virt); }
  template <class T>
  T read(Addr virt) const {
    return read_physical<T>(physical_of(kKernelPml4, virt));
  }

  // The physical memory as a layer (a copy).
  std::shared_ptr<const vmi::Layer> image() const { return std::make_shared<SparseLayer>(pages_); }

  // The physical memory as a raw image file's bytes: holes are zero.
  std::string raw_image() const {
    const Addr end = pages_.empty() ? 0 : pages_.rbegin()->first + kPageSize;
    std::string bytes(end, '\0');
    for (const auto& [base, data] : pages_) std::memcpy(bytes.data() + base, data.data(), kPageSize);
    return bytes;
  }

  // The physical pages written, by physical address (synthetic_windows_dumps.hpp wraps them).
  const std::map<Addr, std::vector<std::byte>>& pages() const { return pages_; }
  // `size` bytes of kernel memory at `virt`; a page never written throws.
  std::string read_bytes(Addr virt, std::size_t size) const {
    std::string out(size, '\0');
    for (std::size_t done = 0; done < size;) {
      const auto physical = translate(kKernelPml4, virt + done);
      const auto found = physical ? pages_.find(*physical & ~(kPageSize - 1)) : pages_.end();
      if (found == pages_.end())
        throw std::runtime_error("no page behind kernel address " + std::to_string(virt + done));
      const std::size_t within = *physical & (kPageSize - 1);
      const std::size_t n = std::min<std::size_t>(kPageSize - within, size - done);
      std::memcpy(out.data() + done, found->second.data() + within, n);
      done += n;
    }
    return out;
  }
  std::uint32_t build_number() const { return build_number_; }

 private:
  template <class T>
  static void put_at(std::string& bytes, std::size_t offset, T value) {
    std::memcpy(bytes.data() + offset, &value, sizeof value);
  }

  std::vector<std::byte>& page(Addr physical) {
    auto& bytes = pages_[physical];
    if (bytes.empty()) bytes.resize(kPageSize);
    return bytes;
  }
  template <class T>
  T read_physical(Addr physical) const {
    T value{};
    const auto found = pages_.find(physical & ~(kPageSize - 1));
    if (found != pages_.end()) std::memcpy(&value, found->second.data() + (physical & (kPageSize - 1)), sizeof value);
    return value;
  }
  template <class T>
  void put_physical(Addr physical, T value) {
    std::memcpy(page(physical & ~(kPageSize - 1)).data() + (physical & (kPageSize - 1)), &value, sizeof value);
  }
  Addr fresh_page() {
    const Addr physical = next_physical_;
    next_physical_ += kPageSize;
    page(physical);
    return physical;
  }

  // The table below the entry for `virt` at `level` (4: PML4) of the tables under `root`.
  Addr table_under(Addr table, Addr virt, int level) {
    const Addr at = table + ((virt >> (12 + 9 * (level - 1))) & 511) * 8;
    const auto entry = read_physical<std::uint64_t>(at);
    if ((entry & 1) != 0) return entry & 0x000ffffffffff000ull;
    const Addr next = next_table_;
    next_table_ += kPageSize;
    page(next);
    put_physical<std::uint64_t>(at, next | kPresentWritable | (virt < (Addr{1} << 47) ? kUser : 0));
    return next;
  }
  void map(Addr root, Addr virt, Addr physical, bool large) {
    const Addr pdpt = table_under(root, virt, 4);
    const Addr pd = table_under(pdpt, virt, 3);
    const std::uint64_t user = virt < (Addr{1} << 47) ? kUser : 0;
    if (large) {
      put_physical<std::uint64_t>(pd + ((virt >> 21) & 511) * 8, physical | kPresentWritable | kLargePage | user);
      for (Addr p = physical; p < physical + kLargePageSize; p += kPageSize) page(p);  // RAM behind it
      return;
    }
    const Addr pt = table_under(pd, virt, 2);
    put_physical<std::uint64_t>(pt + ((virt >> 12) & 511) * 8, physical | kPresentWritable | user);
  }
  // Where `virt` lies under `root`; kernel-image pages past the large page and user pages are
  // mapped on first write.
  Addr physical_of(Addr root, Addr virt) {
    if (auto found = translate(root, virt)) return *found;
    const bool image = virt >= kKernelBase && virt < kKernelBase + (Addr{64} << 20);
    const bool user = virt < (Addr{1} << 47) && root != kKernelPml4;
    if (!image && !user) throw std::runtime_error("synthetic Windows: " + vmi::hex(virt) + " is not mapped");
    map(root, virt & ~(kPageSize - 1), fresh_page(), false);
    return *translate(root, virt);
  }
  Addr physical_of(Addr root, Addr virt) const {
    if (auto found = translate(root, virt)) return *found;
    throw std::runtime_error("synthetic Windows: " + vmi::hex(virt) + " is not mapped");
  }
  std::optional<Addr> translate(Addr root, Addr virt) const {
    Addr table = root;
    for (int level = 4; level >= 1; --level) {
      const auto entry = read_physical<std::uint64_t>(table + ((virt >> (12 + 9 * (level - 1))) & 511) * 8);
      if ((entry & 1) == 0) return std::nullopt;
      const Addr frame = entry & 0x000ffffffffff000ull;
      if (level == 2 && (entry & kLargePage) != 0) return frame + (virt & (kLargePageSize - 1));
      if (level == 1) return frame + (virt & (kPageSize - 1));
      table = frame;
    }
    return std::nullopt;
  }

  void init_list(Addr head, Addr root = kKernelPml4) {
    put<std::uint64_t>(root, head, head);
    put<std::uint64_t>(root, head + 8, head);
  }
  void list_add_tail(Addr root, Addr head, Addr node) {
    const Addr last = read_physical<std::uint64_t>(physical_of(root, head + 8));
    put<std::uint64_t>(root, node, head);
    put<std::uint64_t>(root, node + 8, last);
    put<std::uint64_t>(root, last, node);
    put<std::uint64_t>(root, head + 8, node);
  }

  // An _LDR_DATA_TABLE_ENTRY-shaped entry of `type` at `entry`, its strings from `strings` on.
  void write_loader_entry(Addr root, const std::string& type, Addr entry, const LoadedImageSpec& spec, Addr strings) {
    put<std::uint64_t>(root, entry + offset(type, "DllBase"), spec.base);
    put<std::uint32_t>(root, entry + offset(type, "SizeOfImage"), spec.size);
    unicode_string(root, entry + offset(type, "BaseDllName"), spec.name, strings);
    unicode_string(root, entry + offset(type, "FullDllName"), spec.path, strings + spec.name.size() * 2);
    if (spec.load_filetime != 0) put<std::int64_t>(root, entry + offset(type, "LoadTime"), spec.load_filetime);
  }

  // A UNICODE_STRING at `at` whose UTF-16LE text (ASCII here) is written at `buffer`.
  void unicode_string(Addr root, Addr at, const std::string& text, Addr buffer) {
    std::string utf16;
    for (char c : text) utf16 += std::string{c, '\0'};
    write(root, buffer, utf16.data(), utf16.size());
    put<std::uint16_t>(root, at + offset("_UNICODE_STRING", "Length"), static_cast<std::uint16_t>(utf16.size()));
    put<std::uint16_t>(root, at + offset("_UNICODE_STRING", "MaximumLength"),
                       static_cast<std::uint16_t>(utf16.size() + 2));
    put<std::uint64_t>(root, at + offset("_UNICODE_STRING", "Buffer"), buffer);
  }

  // The PEB and its RTL_USER_PROCESS_PARAMETERS in the process's own user space; an exited
  // process's user pages are gone (its address space was torn down), only its PEB pointer is left.
  void write_peb(Addr process, Addr root, const WindowsProcessSpec& spec) {
    const Addr peb = next_user_;
    const Addr parameters = peb + 0x10000;
    next_user_ += 0x1000000;
    put<std::uint64_t>(kKernelPml4, process + offset("_EPROCESS", "Peb"), peb);
    if (spec.exit_filetime != 0) return;
    put<std::uint64_t>(root, peb + offset("_PEB", "ProcessParameters"), parameters);
    const Addr strings = parameters + size_of("_RTL_USER_PROCESS_PARAMETERS");
    unicode_string(root, parameters + offset("_RTL_USER_PROCESS_PARAMETERS", "ImagePathName"), spec.image_path,
                   strings);
    unicode_string(root, parameters + offset("_RTL_USER_PROCESS_PARAMETERS", "CommandLine"), spec.command_line,
                   strings + spec.image_path.size() * 2 + 2);
    // The loader data and its entries, each on a page of its own.
    const Addr ldr = peb + 0x20000;
    put<std::uint64_t>(root, peb + offset("_PEB", "Ldr"), ldr);
    const Addr head = ldr + offset("_PEB_LDR_DATA", "InLoadOrderModuleList");
    init_list(head, root);
    Addr entry = ldr + kPageSize;
    for (const LoadedImageSpec& dll : spec.dlls) {
      write_loader_entry(root, "_LDR_DATA_TABLE_ENTRY", entry, dll, entry + size_of("_LDR_DATA_TABLE_ENTRY"));
      list_add_tail(root, head, entry + offset("_LDR_DATA_TABLE_ENTRY", "InLoadOrderLinks"));
      entry += kPageSize;
    }
  }

  // The _OBJECT_HEADER at `header`: TypeIndex encoded as the build does, and InfoMask.
  void object_header(Addr header, std::uint8_t type, std::uint8_t info_mask) {
    const auto encoded = static_cast<std::uint8_t>(cookie_ ? type ^ ((header >> 8) & 0xff) ^ *cookie_ : type);
    put<std::uint64_t>(kKernelPml4, header + offset("_OBJECT_HEADER", "PointerCount"), 1);
    put<std::uint8_t>(kKernelPml4, header + offset("_OBJECT_HEADER", "TypeIndex"), encoded);
    put<std::uint8_t>(kKernelPml4, header + offset("_OBJECT_HEADER", "InfoMask"), info_mask);
  }
  // The page a directory page's slot points to, made when empty.
  Addr directory_slot(Addr directory, std::uint64_t slot) {
    const Addr at = directory + slot * 8;
    if (const auto page = read<std::uint64_t>(at); page != 0) return page;
    const Addr page = allocate(kPageSize);
    put<std::uint64_t>(kKernelPml4, at, page);
    return page;
  }

  Addr session(std::uint32_t id) {
    auto& address = sessions_[id];
    if (address == 0) {
      address = allocate(size_of("_MM_SESSION_SPACE"));
      put<std::uint32_t>(kKernelPml4, address + offset("_MM_SESSION_SPACE", "SessionId"), id);
    }
    return address;
  }

  // ntoskrnl's headers (PE32+ for x86-64, three sections whose file offsets differ from their
  // RVAs, as on disk) and its debug directory with the RSDS record naming the profile's PDB.
  void write_pe_image(const vmi::ProfileIdentity& identity) {
    std::string headers(0x400, '\0');
    headers[0] = 'M';
    headers[1] = 'Z';
    put_at<std::uint32_t>(headers, 0x3c, 0x100);
    std::memcpy(headers.data() + 0x100, "PE\0\0", 4);
    put_at<std::uint16_t>(headers, 0x104, 0x8664);  // Machine
    put_at<std::uint16_t>(headers, 0x106, 3);       // NumberOfSections
    put_at<std::uint16_t>(headers, 0x114, 0xf0);    // SizeOfOptionalHeader
    put_at<std::uint16_t>(headers, 0x116, 0x22);    // EXECUTABLE_IMAGE | LARGE_ADDRESS_AWARE
    const std::size_t opt = 0x118;
    const std::uint32_t image_size = 0x1000000;
    put_at<std::uint16_t>(headers, opt, 0x20b);
    put_at<std::uint32_t>(headers, opt + 0x10, kEntryRva);    // AddressOfEntryPoint
    put_at<std::uint64_t>(headers, opt + 0x18, kKernelBase);  // ImageBase
    put_at<std::uint32_t>(headers, opt + 0x20, 0x1000);       // SectionAlignment
    put_at<std::uint32_t>(headers, opt + 0x24, 0x200);        // FileAlignment
    put_at<std::uint16_t>(headers, opt + 0x28, 10);           // MajorOperatingSystemVersion
    put_at<std::uint16_t>(headers, opt + 0x30, 10);           // MajorSubsystemVersion
    put_at<std::uint32_t>(headers, opt + 0x38, image_size);   // SizeOfImage
    put_at<std::uint32_t>(headers, opt + 0x3c, 0x400);        // SizeOfHeaders
    put_at<std::uint16_t>(headers, opt + 0x44, 1);            // Subsystem: native
    put_at<std::uint32_t>(headers, opt + 0x6c, 16);           // NumberOfRvaAndSizes
    put_at<std::uint32_t>(headers, opt + 0x70 + 6 * 8, kDebugRva);
    put_at<std::uint32_t>(headers, opt + 0x70 + 6 * 8 + 4, 28);
    struct SectionSpec {
      const char* name;
      std::uint32_t rva, size, raw, characteristics;
    };
    const SectionSpec sections[] = {{".text", 0x1000, 0x2000, 0x400, 0x60000020},
                                    {".rdata", 0x3000, 0x1000, 0x2400, 0x40000040},
                                    {".data", 0x4000, image_size - 0x4000, 0x3400, 0xc0000040}};
    for (std::size_t i = 0; i < 3; ++i) {
      const std::size_t at = opt + 0xf0 + i * 40;
      std::memcpy(headers.data() + at, sections[i].name, std::strlen(sections[i].name));
      put_at<std::uint32_t>(headers, at + 8, sections[i].size);                    // VirtualSize
      put_at<std::uint32_t>(headers, at + 12, sections[i].rva);                    // VirtualAddress
      put_at<std::uint32_t>(headers, at + 16, i == 2 ? 0x200 : sections[i].size);  // SizeOfRawData
      put_at<std::uint32_t>(headers, at + 20, sections[i].raw);                    // PointerToRawData
      put_at<std::uint32_t>(headers, at + 36, sections[i].characteristics);
    }
    write(kKernelPml4, kKernelBase, headers.data(), headers.size());
    // The RSDS record: signature, GUID (Data1-3 little-endian), age, PDB path.
    std::string record = "RSDS";
    const std::string& guid = identity.pdb_guid;
    auto byte_at = [&](std::size_t i) { return static_cast<char>(std::stoi(guid.substr(i * 2, 2), nullptr, 16)); };
    for (std::size_t i : {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15}) record += byte_at(i);
    const std::uint32_t age = identity.pdb_age;
    record.append(reinterpret_cast<const char*>(&age), 4);
    record += identity.pdb_name;
    record += '\0';
    std::string directory(28, '\0');
    put_at<std::uint32_t>(directory, 4, 0x5e0b2a4c);  // TimeDateStamp
    put_at<std::uint32_t>(directory, 12, 2);          // IMAGE_DEBUG_TYPE_CODEVIEW
    put_at<std::uint32_t>(directory, 16, static_cast<std::uint32_t>(record.size()));
    put_at<std::uint32_t>(directory, 20, kCodeViewRva);
    put_at<std::uint32_t>(directory, 24, 0x2400 + (kCodeViewRva - 0x3000));  // PointerToRawData
    write(kKernelPml4, kKernelBase + kDebugRva, directory.data(), directory.size());
    write(kKernelPml4, kKernelBase + kCodeViewRva, record.data(), record.size());
  }

  // PROCESSOR_START_BLOCK: a jmp over the block (E9 xx 06 00 01 00 00 00 as MemProcFS matches
  // it), the kernel entry the APs jump to at 0x70 and the kernel's CR3 at 0xa0.
  // The KDBG block (_KDDEBUGGER_DATA64, 0x368 bytes) at KdDebuggerDataBlock, encoded from Windows 8 on
  // (the builds with _KLDR_DATA_TABLE_ENTRY) as KdCopyDataBlock decodes it, and KdCopyDataBlock's
  // code: cmp byte ptr [rip+KdpDataBlockEncoded], 0; mov r11, rcx; jz; mov r10, [rip+KiWaitNever];
  // lea rdx, [rip+KdDebuggerDataBlock]; xor rax, [rip+KiWaitAlways]; ret.
  void write_kdbg() {
    constexpr std::uint32_t kSize = 0x368;
    std::vector<std::uint64_t> block(kSize / 8);
    block[2] = 0x4742444bull | std::uint64_t{kSize} << 32;  // "KDBG", Size
    block[0x18 / 8] = kKernelBase;
    block[0x48 / 8] = symbol("PsLoadedModuleList");
    block[0x50 / 8] = symbol("PsActiveProcessHead");
    block[0x58 / 8] = symbol("PspCidTable");
    block[0xa0 / 8] = symbol("ObpTypeObjectType");
    const bool encoded = profile_->find_aggregate("_KLDR_DATA_TABLE_ENTRY") != nullptr;
    const Addr flag = symbol("KdpDataBlockEncoded");
    if (encoded) {
      for (auto& value : block) {
        value =
            std::rotr(__builtin_bswap64(value ^ kWaitAlways) ^ flag, static_cast<int>(kWaitNever & 0xff)) ^ kWaitNever;
      }
      put<std::uint8_t>(kKernelPml4, flag, 1);
      put<std::uint64_t>(kKernelPml4, symbol("KiWaitNever"), kWaitNever);
      put<std::uint64_t>(kKernelPml4, symbol("KiWaitAlways"), kWaitAlways);
    }
    write(kKernelPml4, symbol("KdDebuggerDataBlock"), block.data(), kSize);
    const Addr code = symbol("KdCopyDataBlock");
    std::string bytes;
    auto rip_relative = [&](std::initializer_list<std::uint8_t> opcode, Addr target, std::size_t trailing) {
      for (std::uint8_t b : opcode) bytes += static_cast<char>(b);
      const Addr next = code + bytes.size() + 4 + trailing;
      const auto displacement = static_cast<std::int32_t>(target - next);
      bytes.append(reinterpret_cast<const char*>(&displacement), 4);
    };
    rip_relative({0x80, 0x3d}, flag, 1);
    bytes += '\0';            // cmp byte ptr [rip+KdpDataBlockEncoded], 0
    bytes += "\x4c\x8b\xd9";  // mov r11, rcx
    bytes += "\x74\x16";      // jz: copy the block as it is
    rip_relative({0x4c, 0x8b, 0x15}, symbol("KiWaitNever"), 0);
    rip_relative({0x48, 0x8d, 0x15}, symbol("KdDebuggerDataBlock"), 0);
    rip_relative({0x48, 0x33, 0x05}, symbol("KiWaitAlways"), 0);
    bytes += "\x90\xc3";  // nop; ret
    write(kKernelPml4, code, bytes.data(), bytes.size());
  }

  void write_low_stub() {
    put_physical<std::uint64_t>(kLowStub, 0x00000001000650e9ull);
    put_physical<std::uint64_t>(kLowStub + 0x70, kKernelBase + kEntryRva);
    put_physical<std::uint64_t>(kLowStub + 0xa0, kKernelPml4);
  }

  std::shared_ptr<const vmi::Profile> profile_;
  std::size_t self_reference_;
  Addr next_table_ = 0x100000, next_physical_ = 0x400000, next_pool_ = kPool;
  std::uint32_t build_number_ = 19041;
  Addr symbol_shift_ = 0;
  Addr next_user_ = 0x000000d5a1e20000ull;
  std::map<std::uint32_t, Addr> sessions_;
  std::optional<std::uint8_t> cookie_;
  std::vector<Addr> processes_;
  std::vector<Addr> module_entries_;
  std::map<Addr, std::vector<std::byte>> pages_;
};

}  // namespace vmi_synthetic
