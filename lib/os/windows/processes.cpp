// Walks PsActiveProcessHead's ActiveProcessLinks, reading _EPROCESS fields at offsets bound once.
#include <algorithm>

#include "os/windows/windows_fields.hpp"
#include "vmi/object.hpp"
#include "vmi/windows.hpp"

namespace vmi::windows_objects {

namespace {

constexpr std::size_t kImageNameSize = 15;  // _EPROCESS.ImageFileName[15]

struct ProcessLayout {
  std::uint32_t links, pid, ppid, name, create_time, exit_time, threads, object_table, session, peb;
  std::uint32_t page_table_root, audit, wow64, session_id;
  std::optional<std::uint32_t> handle_count;  // _HANDLE_TABLE.HandleCount, gone since Windows 8.1
  std::uint32_t name_info_name, peb_parameters, command_line, image_path;
  UnicodeStringLayout unicode;

  static Expected<ProcessLayout> bind(const Profile& p) {
    ProcessLayout l{};
    l.links = VMI_TRY(bind_offset(p, "_EPROCESS", "ActiveProcessLinks"));
    l.pid = VMI_TRY(bind_offset(p, "_EPROCESS", "UniqueProcessId"));
    l.ppid = VMI_TRY(bind_offset(p, "_EPROCESS", "InheritedFromUniqueProcessId"));
    l.name = VMI_TRY(bind_offset(p, "_EPROCESS", "ImageFileName"));
    l.create_time = VMI_TRY(bind_offset(p, "_EPROCESS", "CreateTime"));
    l.exit_time = VMI_TRY(bind_offset(p, "_EPROCESS", "ExitTime"));
    l.threads = VMI_TRY(bind_offset(p, "_EPROCESS", "ActiveThreads"));
    l.object_table = VMI_TRY(bind_offset(p, "_EPROCESS", "ObjectTable"));
    l.session = VMI_TRY(bind_offset(p, "_EPROCESS", "Session"));
    l.peb = VMI_TRY(bind_offset(p, "_EPROCESS", "Peb"));
    l.audit = VMI_TRY(bind_offset(p, "_EPROCESS", "SeAuditProcessCreationInfo"));
    l.page_table_root =
        VMI_TRY(bind_offset(p, "_EPROCESS", "Pcb")) + VMI_TRY(bind_offset(p, "_KPROCESS", "DirectoryTableBase"));
    // Windows 7 names it Wow64Process, Windows 10 WoW64Process.
    auto wow64 = bind_offset(p, "_EPROCESS", "WoW64Process");
    l.wow64 = wow64 ? *wow64 : VMI_TRY(bind_offset(p, "_EPROCESS", "Wow64Process"));
    l.session_id = VMI_TRY(bind_offset(p, "_MM_SESSION_SPACE", "SessionId"));
    if (auto count = bind_offset(p, "_HANDLE_TABLE", "HandleCount")) l.handle_count = *count;
    l.name_info_name = VMI_TRY(bind_offset(p, "_OBJECT_NAME_INFORMATION", "Name"));
    l.peb_parameters = VMI_TRY(bind_offset(p, "_PEB", "ProcessParameters"));
    l.command_line = VMI_TRY(bind_offset(p, "_RTL_USER_PROCESS_PARAMETERS", "CommandLine"));
    l.image_path = VMI_TRY(bind_offset(p, "_RTL_USER_PROCESS_PARAMETERS", "ImagePathName"));
    l.unicode = VMI_TRY(UnicodeStringLayout::bind(p));
    return l;
  }
};

template <class T>
Maybe<T> maybe(std::optional<T> value) {
  if (value) return *value;
  return Absence::unreadable;
}

// Reads the _EPROCESS at `address` in `object_layer` (the kernel's address space, or physical
// memory for a carved one); what it points to is read through the kernel's.
std::optional<Process> read_process(const Kernel& kernel, const ProcessLayout& l, const Layer& object_layer,
                                    Addr address, Diagnostics& diagnostics) {
  std::optional<std::int64_t> pid;
  const bool physical = &object_layer != &kernel.kernel_memory();
  auto owner = [&] { return (physical ? "carved " : "") + process_owner(address, pid); };
  const FieldReader f(object_layer, diagnostics, owner);
  const auto raw_pid = f.read<std::uint64_t>("UniqueProcessId", address + l.pid);
  if (!raw_pid) return std::nullopt;
  pid = static_cast<std::int64_t>(*raw_pid);
  Process p;
  p.address = address;
  p.pid = *pid;
  if (auto ppid = f.read<std::uint64_t>("InheritedFromUniqueProcessId", address + l.ppid))
    p.ppid = static_cast<std::int64_t>(*ppid);
  else
    p.ppid = Absence::unreadable;
  if (auto name = f.bytes("ImageFileName", address + l.name, kImageNameSize))
    p.image_file_name = name->substr(0, name->find('\0'));
  else
    p.image_file_name = Absence::unreadable;
  if (auto threads = f.read<std::uint32_t>("ActiveThreads", address + l.threads))
    p.threads = *threads;
  else
    p.threads = Absence::unreadable;
  p.create_time = read_filetime(f, "CreateTime", address + l.create_time);
  p.exit_time = read_filetime(f, "ExitTime", address + l.exit_time);
  p.page_table_root = maybe(f.read<std::uint64_t>("Pcb.DirectoryTableBase", address + l.page_table_root));
  if (auto peb = f.read<std::uint64_t>("Peb", address + l.peb))
    p.peb = *peb == 0 ? Maybe<std::uint64_t>(Absence::not_applicable) : Maybe<std::uint64_t>(*peb);
  else
    p.peb = Absence::unreadable;
  if (auto wow64 = f.read<std::uint64_t>("WoW64Process", address + l.wow64))
    p.wow64 = *wow64 != 0;
  else
    p.wow64 = Absence::unreadable;
  // The handle count lives in the handle table, which an exited process no longer has.
  p.handles = Absence::not_applicable;
  const auto table = f.read<std::uint64_t>("ObjectTable", address + l.object_table);
  p.object_table = !table        ? Maybe<std::uint64_t>(Absence::unreadable)
                   : *table == 0 ? Maybe<std::uint64_t>(Absence::not_applicable)
                                 : Maybe<std::uint64_t>(*table);
  if (!table) {
    p.handles = Absence::unreadable;
  } else if (*table != 0 && l.handle_count) {
    const FieldReader t(kernel.kernel_memory(), diagnostics, [&] { return owner() + " handle table"; });
    if (auto count = t.read<std::int32_t>("HandleCount", *table + *l.handle_count))
      p.handles = *count;
    else
      p.handles = Absence::unreadable;
  }
  p.session_id = Absence::not_applicable;  // System and Idle belong to no session
  if (auto session = f.read<std::uint64_t>("Session", address + l.session); !session) {
    p.session_id = Absence::unreadable;
  } else if (*session != 0) {
    const FieldReader s(kernel.kernel_memory(), diagnostics, [&] { return owner() + " session"; });
    if (auto id = s.read<std::uint32_t>("SessionId", *session + l.session_id))
      p.session_id = *id;
    else
      p.session_id = Absence::unreadable;
  }
  return p;
}

}  // namespace

Expected<void> for_each_process(const Kernel& kernel, Diagnostics& diagnostics,
                                const std::function<bool(Process&&)>& visit) {
  if (kernel.os() != "windows") return make_error(Errc::invalid_argument, "not a Windows kernel");
  const auto& bound = kernel.layout<ProcessLayout>();  // bound once per kernel
  if (!bound) return bound.error();
  const ProcessLayout& l = *bound;
  const auto head = kernel.symbol("PsActiveProcessHead");
  if (!head) return make_error(Errc::not_found, "the profile has no PsActiveProcessHead");
  bool stopped = false;
  const ListWalk walk = walk_list(kernel.kernel_memory(), *head, kMaxProcesses, [&](Addr node) {
    auto process = read_process(kernel, l, kernel.kernel_memory(), node - l.links, diagnostics);
    if (process && !visit(std::move(*process))) stopped = true;
    return !stopped;
  });
  if (walk.end != ListEnd::complete && !stopped) {
    if (walk.entries == 0 && walk.end == ListEnd::unreadable)
      return make_error(Errc::unmapped, "PsActiveProcessHead: " + walk.problem);
    diagnostics.warn("PsActiveProcessHead: " + walk.problem + "; the process list may be incomplete");
  }
  return {};
}

Expected<std::vector<Process>> read_processes(const Kernel& kernel, std::span<const Addr> addresses,
                                              Diagnostics& diagnostics, const Layer* object_layer) {
  const auto& bound = kernel.layout<ProcessLayout>();
  if (!bound) return bound.error();
  const Layer& layer = object_layer != nullptr ? *object_layer : kernel.kernel_memory();
  std::vector<Process> processes;
  for (Addr address : addresses) {
    if (auto process = read_process(kernel, *bound, layer, address, diagnostics))
      processes.push_back(std::move(*process));
  }
  return processes;
}

ProcessStrings read_process_strings(const Kernel& kernel, const Process& process, Diagnostics& diagnostics) {
  ProcessStrings strings{Absence::unreadable, Absence::unreadable, Absence::unreadable};
  const auto& bound = kernel.layout<ProcessLayout>();
  if (!bound) return strings;
  const ProcessLayout& l = *bound;
  std::string owner = process_owner(process.address, process.pid);
  const FieldReader k(kernel.kernel_memory(), diagnostics, [&] { return owner; });
  // SeAuditProcessCreationInfo.ImageFileName -> _OBJECT_NAME_INFORMATION.Name
  if (auto info = k.read<std::uint64_t>("SeAuditProcessCreationInfo.ImageFileName", process.address + l.audit)) {
    strings.audit = *info == 0 ? Maybe<std::string>(Absence::not_applicable)
                               : read_unicode_string(k, l.unicode, "SeAuditProcessCreationInfo.ImageFileName->Name",
                                                     *info + l.name_info_name);
  }
  // The PEB and its parameters live in the process's own address space.
  const auto* peb = std::get_if<std::uint64_t>(&process.peb);
  const auto* root = std::get_if<std::uint64_t>(&process.page_table_root);
  if (peb == nullptr || root == nullptr) {
    const Absence why = peb == nullptr && std::get<Absence>(process.peb) == Absence::not_applicable
                            ? Absence::not_applicable
                            : Absence::unreadable;
    strings.command_line = strings.image_path = why;
    return strings;
  }
  const auto space = kernel.address_space(*root & 0x000ffffffffff000ull);
  const FieldReader u(*space, diagnostics, [&] { return owner + " PEB"; });
  const auto parameters = u.pointer("ProcessParameters", *peb + l.peb_parameters);
  if (!parameters) return strings;
  strings.command_line =
      read_unicode_string(u, l.unicode, "ProcessParameters.CommandLine", *parameters + l.command_line);
  strings.image_path = read_unicode_string(u, l.unicode, "ProcessParameters.ImagePathName", *parameters + l.image_path);
  return strings;
}

}  // namespace vmi::windows_objects
