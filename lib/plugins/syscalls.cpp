// syscalls: the system call every user task was inside when the snapshot was taken, from the user
// registers the entry code saved at the top of its kernel stack: the call's number (orig_ax), its
// name from the kernel's own sys_call_table, and its arguments decoded from the caller's memory
// and descriptors. syscall_log shows the same calls one log line each.
#include <algorithm>
#include <map>

#include "os/linux/syscall_table.hpp"
#include "plugins/plugins.hpp"
#include "plugins/syscall_arguments.hpp"
#include "vmi/linux.hpp"
#include "vmi/rows.hpp"

namespace vmi {

namespace {

// The function a table slot holds: the wrapper SYSCALL_DEFINE generates, or for a call without
// arguments the inner function the wrapper is an alias of (arch/x86/include/asm/syscall_wrapper.h).
constexpr std::string_view kEntryPrefixes[] = {"__x64_sys_", "__do_sys_"};

struct SyscallRow {
  std::int32_t pid = 0, tid = 0;
  std::string comm;
  Maybe<std::uint32_t> cpu;  // the CPU it was current on; not applicable when it was on none
  Maybe<std::int64_t> number;
  Maybe<std::string> name, arguments, call;
  Maybe<Addr> rdi, rsi, rdx, r10, r8, r9, rip, rsp;
};

constexpr auto kSyscallRow = declare_row(
    column<&SyscallRow::pid>("PID"), column<&SyscallRow::tid>("TID"), column<&SyscallRow::comm>("COMM"),
    column<&SyscallRow::cpu>("CPU"), column<&SyscallRow::number>("NR"), column<&SyscallRow::name>("Syscall"),
    column<&SyscallRow::arguments>("Args"), column<&SyscallRow::rdi, ColumnType::address>("RDI"),
    column<&SyscallRow::rsi, ColumnType::address>("RSI"), column<&SyscallRow::rdx, ColumnType::address>("RDX"),
    column<&SyscallRow::r10, ColumnType::address>("R10"), column<&SyscallRow::r8, ColumnType::address>("R8"),
    column<&SyscallRow::r9, ColumnType::address>("R9"), column<&SyscallRow::rip, ColumnType::address>("RIP"),
    column<&SyscallRow::rsp, ColumnType::address>("RSP"));

constexpr auto kLogRow = declare_row(column<&SyscallRow::call>("Call"));

constexpr PluginOption kOptions[] = {{"pid", OptionType::integers, "only these process IDs (comma-separated)"}};

// System-call names as the running kernel dispatches them: sys_call_table's slot for the number,
// named by the entry point it holds.
class SyscallNames {
 public:
  SyscallNames(const Kernel& kernel, Diagnostics& diagnostics, std::optional<linux_objects::KnownCode> code)
      : kernel_(kernel), diagnostics_(diagnostics), code_(std::move(code)) {
    table_ = kernel.symbol("sys_call_table");
    slots_ = linux_objects::syscall_table_slots(kernel, "sys_call_table").value_or(0);
  }

  // The entry point's name without its prefix ("openat"); unreadable, with a warning once per
  // number, when the slot cannot be read or holds something else than an entry point.
  const Maybe<std::string>& name_of(std::int64_t number) {
    auto [found, inserted] = names_.try_emplace(number, Absence::unreadable);
    if (inserted) found->second = lookup(number);
    return found->second;
  }

 private:
  Maybe<std::string> lookup(std::int64_t number) {
    const std::string slot = "sys_call_table[" + std::to_string(number) + "]";
    if (!table_ || !code_) {
      diagnostics_.warn(slot + ": the table or the kernel's code is unknown; the call is not named");
      return Absence::unreadable;
    }
    if (number < 0 || static_cast<std::uint64_t>(number) >= slots_) {
      diagnostics_.warn(slot + ": beyond the table's " + std::to_string(slots_) + " slots");
      return Absence::unreadable;
    }
    const Addr at = *table_ + static_cast<std::uint64_t>(number) * 8;
    const auto handler = read_value<std::uint64_t>(kernel_.kernel_layer(), at);
    if (!handler) {
      diagnostics_.warn(slot + " at " + hex(at) + " is unreadable");
      return Absence::unreadable;
    }
    const linux_objects::CodeOwner owner = code_->owner_of(*handler);
    const std::string symbol = owner.symbol.value_or("");
    const auto* prefix =
        std::ranges::find_if(kEntryPrefixes, [&](std::string_view p) { return symbol.starts_with(p); });
    if (owner.module != "__kernel__" || prefix == std::end(kEntryPrefixes) || !symbol.ends_with("+0x0")) {
      diagnostics_.warn(slot + " at " + hex(at) + " holds " + hex(*handler) + " (" +
                        (symbol.empty() ? owner.module : symbol) +
                        "), not a system call's entry point; see check_syscall");
      return Absence::unreadable;
    }
    return symbol.substr(prefix->size(), symbol.size() - prefix->size() - 4);
  }

  const Kernel& kernel_;
  Diagnostics& diagnostics_;
  std::optional<linux_objects::KnownCode> code_;
  std::optional<Addr> table_;
  std::uint64_t slots_ = 0;
  std::map<std::int64_t, Maybe<std::string>> names_;
};

// What the decoder reads from a task: its user memory and its descriptors, each failure a warning
// naming the task and the address. Threads follow their leader in the walk and share its memory
// (CLONE_THREAD needs CLONE_VM) and usually its descriptor table, so the last process's address
// space and the last table's descriptors are kept for the next task.
class Callers {
 public:
  Callers(const Kernel& kernel, Diagnostics& diagnostics) : kernel_(kernel), diagnostics_(diagnostics) {}

  CallerView view(const linux_objects::Task& task) {
    task_ = &task;
    return CallerView{
        .string = [this](std::uint64_t address, std::size_t max_size) -> std::optional<std::string> {
          const PagedLayer* space = memory();
          if (space == nullptr) return std::nullopt;
          auto text = read_c_string(*space, address, max_size);
          if (text) return std::move(*text);
          warn("a string argument at " + hex(address) + " is not in the snapshot: " + text.error().message);
          return std::nullopt;
        },
        .bytes =
            [this](std::uint64_t address, std::span<std::byte> out) {
              const PagedLayer* space = memory();
              if (space == nullptr) return false;
              auto read = read_exact(*space, address, out);
              if (!read)
                warn("an argument's " + std::to_string(out.size()) + " bytes at " + hex(address) +
                     " are not in the snapshot: " + read.error().message);
              return read.has_value();
            },
        .descriptor = [this](std::int32_t fd) -> std::optional<std::string> {
          const auto& paths = descriptors();
          const auto found = paths.find(fd);
          if (found == paths.end()) return std::nullopt;
          return found->second;
        }};
  }

 private:
  void warn(const std::string& what) const {
    diagnostics_.warn("task " + hex(task_->address) + " (pid " + std::to_string(task_->pid) + "): " + what);
  }

  const PagedLayer* memory() {
    if (space_process_ != task_->tgid) {
      space_process_ = task_->tgid;
      space_.reset();
      auto layout = linux_objects::memory_layout(kernel_, *task_, diagnostics_);
      if (layout) {
        if (const auto* mm = std::get_if<linux_objects::MemoryLayout>(&*layout))
          space_ = linux_objects::address_space(kernel_, *mm);
      } else {
        warn("its memory is unknown: " + layout.error().message);
      }
    }
    return space_.get();
  }

  const std::map<std::int32_t, std::string>& descriptors() {
    const auto table = linux_objects::file_table_of(kernel_, *task_, diagnostics_);
    if (table != descriptors_table_ || !table) {
      descriptors_table_ = table;
      descriptors_.clear();
      if (table && *table != 0) {
        auto walked = linux_objects::for_each_file_descriptor(kernel_, *task_, *table, budget_, diagnostics_,
                                                              [&](linux_objects::FileDescriptor&& descriptor) {
                                                                if (descriptor.path)
                                                                  descriptors_.emplace(descriptor.fd, *descriptor.path);
                                                                return true;
                                                              });
        if (!walked) warn("its descriptors are unknown: " + walked.error().message);
      }
    }
    return descriptors_;
  }

  const Kernel& kernel_;
  Diagnostics& diagnostics_;
  linux_objects::DescriptorBudget budget_;
  const linux_objects::Task* task_ = nullptr;
  std::optional<std::int32_t> space_process_;  // whose address space space_ is
  std::shared_ptr<const PagedLayer> space_;
  std::optional<Addr> descriptors_table_;  // the files_struct descriptors_ were read from
  std::map<std::int32_t, std::string> descriptors_;
};

// Every user task's call, in task-list order (threads after their leader), to `emit`.
Expected<void> for_each_call(PluginContext& context, const std::function<bool(SyscallRow&&)>& emit) {
  const Kernel& kernel = *context.kernel;
  Diagnostics& diagnostics = context.diagnostics;
  const auto pids = VMI_TRY(context.args.integers("pid"));
  auto code = linux_objects::KnownCode::gather(kernel, diagnostics);
  if (!code) diagnostics.warn("syscalls: the kernel's code is unknown (" + code.error().message + ")");
  SyscallNames names(kernel, diagnostics, code ? std::optional(std::move(*code)) : std::nullopt);
  const auto current = linux_objects::current_tasks(kernel, diagnostics);
  if (!current) diagnostics.warn("syscalls: " + current.error().message + "; which task was on a CPU is not shown");
  const auto on_cpu = current ? std::optional(*current) : std::nullopt;
  Callers callers(kernel, diagnostics);
  std::optional<Error> failed;  // the kernel's structures could not be bound
  VMI_TRY_VOID(linux_objects::for_each_task(kernel, true, diagnostics, [&](linux_objects::Task&& task) {
    if (!pids.empty() && std::ranges::find(pids, task.tgid) == pids.end()) return true;
    if (task.kernel_thread.value_or(false) || task.pid == 0) return true;
    auto saved = linux_objects::user_registers(kernel, task, diagnostics);
    if (!saved) {
      failed = saved.error();
      return false;
    }
    SyscallRow row;
    row.pid = task.tgid;
    row.tid = task.pid;
    row.comm = task.comm;
    row.cpu = Absence::unreadable;
    if (on_cpu) {
      const auto found = on_cpu->find(task.address);
      row.cpu = found != on_cpu->end() ? Maybe<std::uint32_t>(found->second) : Absence::not_applicable;
    }
    const auto* regs = std::get_if<linux_objects::UserRegisters>(&*saved);
    if (regs == nullptr) {
      row.number = Absence::unreadable;  // user_registers has said why
      row.name = row.arguments = row.call = Absence::unreadable;
      row.rdi = row.rsi = row.rdx = row.r10 = row.r8 = row.r9 = row.rip = row.rsp = Absence::unreadable;
      return emit(std::move(row));
    }
    const auto number = regs->syscall();
    if (!number) return true;  // it entered the kernel through an interrupt: in no system call
    const auto arguments = regs->arguments();
    row.number = *number;
    row.name = names.name_of(*number);
    const auto* table_name = std::get_if<std::string>(&row.name);
    const auto abi_name = linux_objects::x86_64_syscall_name(*number);  // to decode whatever the table holds
    const std::string name = table_name ? *table_name : std::string(abi_name.value_or(""));
    const std::string decoded = decoded_arguments(name, arguments, callers.view(task));
    row.arguments = decoded;
    row.call = task.comm + " " + std::to_string(task.tgid) +
               (task.pid == task.tgid ? "" : "/" + std::to_string(task.pid)) + " " +
               (name.empty() ? "syscall_" + std::to_string(*number) : name) + "(" + decoded + ")";
    row.rdi = arguments[0];
    row.rsi = arguments[1];
    row.rdx = arguments[2];
    row.r10 = arguments[3];
    row.r8 = arguments[4];
    row.r9 = arguments[5];
    row.rip = regs->ip;
    row.rsp = regs->sp;
    return emit(std::move(row));
  }));
  if (failed) return *failed;
  return {};
}

// syscalls and syscall_log: the same calls, each row written through `declaration`.
template <const auto& declaration>
Expected<void> run_calls(PluginContext& context) {
  RowWriter rows(context.out, declaration);
  return for_each_call(context, [&](SyscallRow&& row) { return rows.write(row); });
}

}  // namespace

const Plugin kSyscallsPlugin{
    .name = "linux.syscalls",
    .short_name = "syscalls",
    .os = "linux",
    .aliases = {},
    .description = "The system call each user task was inside, named by the kernel's table, arguments decoded",
    .needs = Requirement::kernel,
    .columns = kSyscallRow.columns,
    .tree = false,
    .options = kOptions,
    .run = run_calls<kSyscallRow>};

const Plugin kSyscallLogPlugin{
    .name = "linux.syscall_log",
    .short_name = "syscall_log",
    .os = "linux",
    .aliases = {},
    .description = "The same calls as syscalls, one log line each: COMM PID[/TID] name(arguments)",
    .needs = Requirement::kernel,
    .columns = kLogRow.columns,
    .tree = false,
    .options = kOptions,
    .run = run_calls<kLogRow>};

}  // namespace vmi
