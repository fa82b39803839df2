// Windows kernel objects as typed values, for plugins and for programs linking the library.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vmi/diagnostics.hpp"
#include "vmi/kernel.hpp"
#include "vmi/value.hpp"

namespace vmi::windows_objects {

// One process (_EPROCESS) as the kernel holds it. The PID is always read (a process without one
// is reported and skipped); every other field is an Absence when it could not be read (with a
// warning naming the process, the field and its address) or has no meaning for this process.
struct Process {
  Addr address = 0;  // _EPROCESS, kernel virtual
  std::int64_t pid = 0;
  Maybe<std::int64_t> ppid;              // InheritedFromUniqueProcessId
  Maybe<std::string> image_file_name;    // ImageFileName, at most 15 bytes
  Maybe<std::int64_t> threads;           // ActiveThreads
  Maybe<std::int64_t> handles;           // ObjectTable->HandleCount: kept only up to Windows 8
  Maybe<std::int64_t> session_id;        // Session->SessionId; none for System and Idle
  Maybe<bool> wow64;                     // a 32-bit process on the 64-bit kernel
  Maybe<std::int64_t> create_time;       // ns since the Unix epoch
  Maybe<std::int64_t> exit_time;         // ns since the Unix epoch; not applicable while running
  Maybe<std::uint64_t> page_table_root;  // Pcb.DirectoryTableBase, physical
  Maybe<std::uint64_t> peb;              // user virtual; not applicable for System
  Maybe<std::uint64_t> object_table;     // _HANDLE_TABLE; not applicable once exited
};

// At most this many processes are visited in one walk.
inline constexpr std::size_t kMaxProcesses = std::size_t{1} << 20;

// Visits every process on PsActiveProcessHead's list (ActiveProcessLinks), in list order;
// `visit` returns false to stop. Bounded (kMaxProcesses) and cycle-safe; what could not be read
// is reported to diagnostics. Fails only when the list head is unreadable and nothing was visited.
Expected<void> for_each_process(const Kernel& kernel, Diagnostics& diagnostics,
                                const std::function<bool(Process&&)>& visit);

// The processes at these _EPROCESS addresses (found by another route than the list), read as
// for_each_process reads them, in the order given. The addresses are kernel virtual, or
// addresses in `object_layer` when one is given (physical memory, for carved processes); what
// the processes point to is read through the kernel's address space either way.
Expected<std::vector<Process>> read_processes(const Kernel& kernel, std::span<const Addr> addresses,
                                              Diagnostics& diagnostics, const Layer* object_layer = nullptr);

// _EPROCESS allocations carved from all physical memory: pool blocks tagged "Proc" (or "Pro\xe3",
// the protected form Windows 7 writes) holding an _OBJECT_HEADER whose body is a consistent
// _EPROCESS (dispatcher type 3, a page-table root, a PID that is a multiple of 4, kernel list
// links, a printable name). Found alike whether live, exited or unlinked from the list, and read
// at their physical addresses (Process::address is physical), sorted by it.
struct ProcessScanOptions {
  std::size_t workers = 0;  // threads scanning; 0: one per core
  std::function<void(std::uint64_t done, std::uint64_t total)> progress;
};
inline constexpr std::size_t kMaxCarvedProcesses = std::size_t{1} << 20;
Expected<std::vector<Process>> scan_for_processes(const Kernel& kernel, const PhysicalImage& image,
                                                  const ProcessScanOptions& options, Diagnostics& diagnostics);

// What a process says about its program: the image path the kernel audited at creation
// (SeAuditProcessCreationInfo, "\Device\HarddiskVolume3\Windows\explorer.exe") and, from the PEB's
// ProcessParameters read through the process's own page tables, its command line and image path.
struct ProcessStrings {
  Maybe<std::string> audit, command_line, image_path;
};
ProcessStrings read_process_strings(const Kernel& kernel, const Process& process, Diagnostics& diagnostics);

// A PE image on a loader list: a driver on PsLoadedModuleList (_KLDR_DATA_TABLE_ENTRY), or a DLL
// on a process's PEB loader list (_LDR_DATA_TABLE_ENTRY). Unreadable fields are marked, with
// warnings naming the entry, the field and its address.
struct LoadedImage {
  Addr address = 0;  // the loader entry, virtual (kernel, or the process's user space)
  Maybe<std::uint64_t> base, size;
  Maybe<std::string> name, path;  // BaseDllName, FullDllName
  Maybe<std::int64_t> load_time;  // ns since the Unix epoch; kernel modules have none
};

// At most this many entries are visited on one loader list.
inline constexpr std::size_t kMaxLoadedImages = std::size_t{1} << 16;

// Visits the drivers on PsLoadedModuleList (InLoadOrderLinks), in load order. Bounded and
// cycle-safe; fails only when the list head is unreadable and nothing was visited.
Expected<void> for_each_kernel_module(const Kernel& kernel, Diagnostics& diagnostics,
                                      const std::function<bool(LoadedImage&&)>& visit);

// Visits the DLLs on a process's PEB->Ldr->InLoadOrderModuleList, read through the process's own
// page tables. Fails, naming what, when the process has no PEB or its loader data is unreadable.
Expected<void> for_each_dll(const Kernel& kernel, const Process& process, Diagnostics& diagnostics,
                            const std::function<bool(LoadedImage&&)>& visit);

// One entry of a process's handle table.
struct Handle {
  std::uint64_t value = 0;  // the handle as the process uses it: a multiple of 4
  Addr object = 0;          // the object's body, kernel virtual
  Maybe<std::uint64_t> granted_access;
  Maybe<std::string> type;  // the object type's name: "Process", "File", "Key", ...
  // As the type names its objects: a file's path (FILE_OBJECT.FileName), a key's full path
  // (its key control blocks up to \REGISTRY), "NAME Pid N" for a process, "Tid N Pid M" for a
  // thread, else the name-information header's name; not applicable for an unnamed object.
  Maybe<std::string> name;
};

// At most this many handle-table entries are examined in one process (Windows allows 2^24
// handles per process).
inline constexpr std::size_t kMaxHandleEntries = std::size_t{1} << 24;

// Visits every handle in use in a process's handle table (ObjectTable->TableCode: one page of
// entries, or one or two levels of pages of pointers above them), in handle order. Entries are
// decoded per build (an object-header pointer up to Windows 8, ObjectPointerBits since) and each
// object's TypeIndex with ObHeaderCookie where the build has one. Fails, naming what, when the
// process has no handle table or it is unreadable; an unreadable page of the table is a warning.
Expected<void> for_each_handle(const Kernel& kernel, const Process& process, Diagnostics& diagnostics,
                               const std::function<bool(Handle&&)>& visit);

}  // namespace vmi::windows_objects
