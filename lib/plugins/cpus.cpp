// cpus: what each vCPU was executing when the snapshot was taken, from the registers saved with
// the image, and the task the kernel had current on that CPU.
#include <map>

#include "plugins/plugins.hpp"
#include "vmi/kernel_symbols.hpp"
#include "vmi/linux.hpp"
#include "vmi/paging.hpp"
#include "vmi/rows.hpp"
#include "vmi/session.hpp"

namespace vmi {

namespace {

struct CpuRow {
  std::uint32_t cpu = 0;
  Maybe<std::string> mode;  // "kernel" or "user": the privilege level in CS
  Maybe<Addr> rip;
  Maybe<std::string> symbol;  // kernel RIP as symbol+offset
  Maybe<Addr> rsp;
  Maybe<Addr> cr3;
  // The process whose page tables CR3 holds (0: the kernel's own, init_mm's); not applicable when
  // they are no process's in the pid table (an idle CPU may keep an exited process's lazily).
  Maybe<std::int32_t> cr3_pid;
  Maybe<Addr> task;  // the CPU's current task_struct
  Maybe<std::int32_t> pid, tid;
  Maybe<std::string> comm;
  Maybe<bool> idle;  // current is the CPU's idle task (pid 0): it had nothing to run
  // In kernel mode: RIP's function, then each return address a scan of the stack finds, innermost
  // first ("default_idle+0x9 <- default_idle_call+0x34 <- ...").
  Maybe<std::string> backtrace;
};

constexpr auto kCpuRow = declare_row(
    column<&CpuRow::cpu>("CPU"), column<&CpuRow::mode>("Mode"), column<&CpuRow::rip, ColumnType::address>("RIP"),
    column<&CpuRow::symbol>("Symbol"), column<&CpuRow::rsp, ColumnType::address>("RSP"),
    column<&CpuRow::cr3, ColumnType::address>("CR3"), column<&CpuRow::cr3_pid>("CR3 PID"),
    column<&CpuRow::task, ColumnType::address>("Task"), column<&CpuRow::pid>("PID"), column<&CpuRow::tid>("TID"),
    column<&CpuRow::comm>("COMM"), column<&CpuRow::idle>("Idle"), column<&CpuRow::backtrace>("Backtrace"));

// A register the image's format saved for this vCPU; unreadable, with a warning, when it did not.
Maybe<std::uint64_t> saved(PluginContext& context, const CpuState& state, std::string_view name) {
  const auto found = state.registers.find(name);
  if (found != state.registers.end()) return found->second;
  context.diagnostics.warn(std::string(context.session.image().name()) + ": vCPU " + std::to_string(state.index) +
                           " has no saved register '" + std::string(name) + "'");
  return Absence::unreadable;
}

// Whose page tables each top-level table is: every process the pid table holds (hidden ones
// too) by its mm->pgd, and the kernel's own.
class PageTableOwners {
 public:
  // Without the pid table only the kernel's own tables are known, and every other CR3 is
  // unreadable (with one warning saying why) rather than no process's.
  static Expected<PageTableOwners> gather(const Kernel& kernel, Diagnostics& diagnostics) {
    PageTableOwners owners;
    owners.by_root_[kernel.kernel_layer().page_table_root()] = 0;
    std::vector<Addr> addresses;
    const auto walked =
        linux_objects::for_each_pid_table_entry(kernel, diagnostics, [&](const linux_objects::PidTableEntry& entry) {
          addresses.push_back(entry.task);
          return true;
        });
    if (!walked) {
      diagnostics.warn("cpus: no process's page tables are known (" + walked.error().message +
                       "); CR3 PID is read only for the kernel's own");
      owners.complete_ = false;
      return owners;
    }
    for (const linux_objects::Task& task : VMI_TRY(linux_objects::read_tasks(kernel, addresses, diagnostics))) {
      if (task.pid != task.tgid) continue;  // threads share their leader's mm
      const auto root = VMI_TRY(linux_objects::page_table_root_of(kernel, task, diagnostics));
      if (const auto* address = std::get_if<Addr>(&root)) owners.by_root_.emplace(*address, task.tgid);
    }
    return owners;
  }

  // CR3's low 12 bits are a PCID (or flags); under page-table isolation a user-mode CR3 names the
  // pgd's user half, 4 KiB above it (bit 12).
  Maybe<std::int32_t> owner_of(std::uint64_t cr3) const {
    const Addr root = cr3 & ~Addr{0xfff};
    if (auto found = by_root_.find(root); found != by_root_.end()) return found->second;
    if ((root & 0x1000) != 0) {
      if (auto found = by_root_.find(root & ~Addr{0x1000}); found != by_root_.end()) return found->second;
    }
    return complete_ ? Absence::not_applicable : Absence::unreadable;
  }

 private:
  std::map<Addr, std::int32_t> by_root_;
  bool complete_ = true;
};

// The CPU's current task as the kernel recorded it: the per-CPU pointer, then the task it names.
Expected<void> add_current_task(PluginContext& context, std::uint32_t cpu, CpuRow& row) {
  row.task = VMI_TRY(linux_objects::current_task_of(*context.kernel, cpu, context.diagnostics));
  row.pid = row.tid = Absence::unreadable;
  row.comm = Absence::unreadable;
  row.idle = Absence::unreadable;
  const auto* address = std::get_if<Addr>(&row.task);
  if (address == nullptr) return {};
  const auto tasks = VMI_TRY(linux_objects::read_tasks(*context.kernel, std::span(address, 1), context.diagnostics));
  if (tasks.empty()) return {};  // read_tasks has said why
  row.pid = tasks.front().tgid;
  row.tid = tasks.front().pid;
  row.comm = tasks.front().comm;
  row.idle = tasks.front().pid == 0;
  return {};
}

// A frame as a backtrace shows it: its symbol, or its address, and the module it is in.
std::string frame_text(Addr address, const linux_objects::CodeOwner& owner) {
  std::string text = owner.symbol.value_or(hex(address));
  if (owner.module.empty())
    text += " [no known code]";  // RIP outside the kernel's and modules' text
  else if (owner.module != "__kernel__")
    text += " [" + owner.module + "]";
  return text;
}

// RIP and the return addresses above RSP, for a vCPU in kernel mode.
Expected<Maybe<std::string>> backtrace_of(PluginContext& context, const linux_objects::KnownCode* code,
                                          const CpuRow& row) {
  const auto* mode = std::get_if<std::string>(&row.mode);
  const auto* rip = std::get_if<Addr>(&row.rip);
  const auto* rsp = std::get_if<Addr>(&row.rsp);
  if (mode != nullptr && *mode == "user") return Maybe<std::string>(Absence::not_applicable);
  if (code == nullptr || mode == nullptr || rip == nullptr || rsp == nullptr)
    return Maybe<std::string>(Absence::unreadable);  // said already: no code map or no registers
  std::string text = frame_text(*rip, code->owner_of(*rip));
  const auto frames = VMI_TRY(linux_objects::scan_kernel_stack(*context.kernel, *code, *rsp, context.diagnostics));
  for (const linux_objects::StackFrame& frame : frames) text += " <- " + frame_text(frame.return_address, frame.owner);
  return Maybe<std::string>(std::move(text));
}

CpuRow row_of(PluginContext& context, const CpuState& state) {
  CpuRow row;
  row.cpu = state.index;
  row.rip = saved(context, state, "rip");
  row.rsp = saved(context, state, "rsp");
  row.cr3 = saved(context, state, "cr3");
  const auto cs = saved(context, state, "cs");
  const auto* selector = std::get_if<std::uint64_t>(&cs);
  if (selector == nullptr) {
    row.mode = row.symbol = Absence::unreadable;
    return row;
  }
  const bool user = (*selector & 3) == 3;  // the requested privilege level: ring 3
  row.mode = std::string(user ? "user" : "kernel");
  const auto* rip = std::get_if<std::uint64_t>(&row.rip);
  if (user || rip == nullptr) {
    row.symbol = user ? Absence::not_applicable : Absence::unreadable;
    return row;
  }
  if (auto symbol = kernel_symbol_at(*context.kernel, *rip)) {
    row.symbol = symbol->text();
  } else {
    context.diagnostics.warn("vCPU " + std::to_string(state.index) + ": RIP " + hex(*rip) +
                             " is outside the kernel image (in a module or generated code); no symbol");
    row.symbol = Absence::unreadable;
  }
  return row;
}

Expected<void> run_cpus(PluginContext& context) {
  RowWriter rows(context.out, kCpuRow);
  const auto owners = VMI_TRY(PageTableOwners::gather(*context.kernel, context.diagnostics));
  auto code = linux_objects::KnownCode::gather(*context.kernel, context.diagnostics);
  if (!code) context.diagnostics.warn("cpus: no backtraces, the kernel's code is unknown: " + code.error().message);
  for (const CpuState& state : context.session.image().cpu_states()) {
    CpuRow row = row_of(context, state);
    if (const auto* cr3 = std::get_if<std::uint64_t>(&row.cr3)) {
      row.cr3_pid = owners.owner_of(*cr3);
    } else {
      row.cr3_pid = Absence::unreadable;  // saved() has said why
    }
    VMI_TRY_VOID(add_current_task(context, state.index, row));
    row.backtrace = VMI_TRY(backtrace_of(context, code ? &*code : nullptr, row));
    if (!rows.write(row)) break;
  }
  return {};
}

}  // namespace

const Plugin kCpusPlugin{
    .name = "linux.cpus",
    .short_name = "cpus",
    .os = "linux",
    .aliases = {},
    .description = "What each vCPU was executing: mode, RIP as symbol+offset, RSP, CR3, current task, backtrace",
    .needs = Requirement::vcpus,
    .columns = kCpuRow.columns,
    .tree = false,
    .options = {},
    .run = run_cpus};

}  // namespace vmi
