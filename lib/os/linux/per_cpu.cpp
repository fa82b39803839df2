// The task each CPU was running: per_cpu(current_task, cpu), the variable the kernel's `current`
// reads through %gs. Its per-CPU offset is a link-time constant (per-CPU symbols are not moved by
// KASLR); __per_cpu_offset[cpu] is where that CPU's copy of the per-CPU area starts.
#include "os/field_reader.hpp"
#include "vmi/linux.hpp"
#include "vmi/object.hpp"

namespace vmi::linux_objects {

namespace {

constexpr std::uint32_t kMaxCpus = 8192;                            // NR_CPUS of distribution kernels
constexpr std::uint64_t kMaxPerCpuOffset = std::uint64_t{1} << 24;  // a per-CPU area is far smaller

struct CurrentTaskLayout {
  std::uint64_t per_cpu_offset = 0;  // of the task pointer within a CPU's per-CPU area

  static Expected<CurrentTaskLayout> bind(const Profile& p) {
    CurrentTaskLayout l;
    if (auto variable = p.symbol_address("current_task")) {
      l.per_cpu_offset = *variable;  // through 6.1
    } else if (auto hot = p.symbol_address("pcpu_hot")) {
      l.per_cpu_offset = *hot + VMI_TRY(bind_offset(p, "pcpu_hot", "current_task"));  // 6.2 and later
    } else {
      return make_error(Errc::not_found, "profile has neither 'current_task' nor 'pcpu_hot'");
    }
    if (l.per_cpu_offset >= kMaxPerCpuOffset)
      return make_error(Errc::profile_mismatch,
                        "the profile's current task variable at " + hex(l.per_cpu_offset) + " is not a per-CPU offset");
    return l;
  }
};

}  // namespace

Expected<Maybe<Addr>> current_task_of(const Kernel& kernel, std::uint32_t cpu, Diagnostics& diagnostics) {
  const auto& bound = kernel.layout<CurrentTaskLayout>();
  if (!bound) return bound.error();
  const auto offsets = kernel.symbol("__per_cpu_offset");
  if (!offsets) return make_error(Errc::not_found, "profile has no symbol '__per_cpu_offset'");
  if (cpu >= kMaxCpus) return make_error(Errc::invalid_argument, "CPU " + std::to_string(cpu) + " is beyond NR_CPUS");
  const FieldReader fields(kernel.kernel_layer(), diagnostics, [&] { return "CPU " + std::to_string(cpu); });
  const auto area =
      fields.read<std::uint64_t>("__per_cpu_offset[" + std::to_string(cpu) + "]", *offsets + std::uint64_t{cpu} * 8);
  if (!area) return Maybe<Addr>(Absence::unreadable);
  const auto task = fields.pointer("current_task", *area + bound->per_cpu_offset);
  if (!task) return Maybe<Addr>(Absence::unreadable);
  return Maybe<Addr>(*task);
}

Expected<std::map<Addr, std::uint32_t>> current_tasks(const Kernel& kernel, Diagnostics& diagnostics) {
  const auto count_at = kernel.symbol("nr_cpu_ids");
  if (!count_at) return make_error(Errc::not_found, "profile has no symbol 'nr_cpu_ids'");
  const auto count = read_value<std::uint32_t>(kernel.kernel_layer(), *count_at);
  if (!count) return make_error(count.error().code, "nr_cpu_ids at " + hex(*count_at) + ": " + count.error().message);
  if (*count == 0 || *count > kMaxCpus)
    return make_error(Errc::limit_exceeded, "nr_cpu_ids is " + std::to_string(*count) + ", not 1 to NR_CPUS");
  std::map<Addr, std::uint32_t> current;
  for (std::uint32_t cpu = 0; cpu < *count; ++cpu) {
    const auto task = VMI_TRY(current_task_of(kernel, cpu, diagnostics));
    const auto* address = std::get_if<Addr>(&task);
    if (address == nullptr)  // current_task_of has warned where
      return make_error(Errc::unmapped, "CPU " + std::to_string(cpu) + "'s current task is unreadable");
    current.emplace(*address, cpu);
  }
  return current;
}

}  // namespace vmi::linux_objects
