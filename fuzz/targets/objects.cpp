// The list walker and ObjectView over the input (physical addresses, base 0) with the tiny
// fixed profile: the first 8 bytes name the list head (a task_struct's tasks field).
#include "fuzz_support.hpp"
#include "vmi/isf.hpp"
#include "vmi/object.hpp"

namespace {
const vmi::Profile* profile = nullptr;

void view_every_field(const vmi::ObjectView& object, int depth) {
  const vmi::Profile& p = *profile;
  const vmi::Aggregate* type = p.find_aggregate(object.type_name());
  if (type == nullptr) return;
  for (const vmi::Member& member : p.members(*type)) {
    const std::string_view field = p.str(member.name);
    (void)object.read_unsigned(field);
    (void)object.read_signed(field);
    (void)object.read_string(field, 64);
    (void)object.field_address(field);
    if (depth < 2) {
      if (auto inner = object.member(field)) view_every_field(*inner, depth + 1);
      if (auto target = object.dereference(field)) view_every_field(*target, depth + 1);
    }
  }
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  auto parsed = vmi::parse_isf(vmi_fuzz::kTinyLinuxIsf, "tiny profile");
  if (!parsed) __builtin_trap();
  profile = new vmi::Profile(std::move(*parsed));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 8) return 0;
  vmi::MemoryLayer layer("fuzz", vmi_fuzz::bytes_of(data, size));
  const vmi::Addr head = vmi_fuzz::le64(data);
  const std::uint32_t tasks = *vmi::bind_offset(*profile, "task_struct", "tasks");
  std::size_t visited = 0;
  vmi::ListWalk walk = vmi::walk_list(layer, head, 64, [&](vmi::Addr node) {
    if (auto task = vmi::ObjectView::make(layer, *profile, "task_struct", node - tasks)) {
      view_every_field(*task, 0);
      if (auto signal = task->dereference("signal")) {
        if (auto thread_head = signal->field_address("thread_head")) {
          (void)vmi::walk_list(layer, *thread_head, 16, [](vmi::Addr) { return true; });
        }
      }
    }
    return ++visited < 32;
  });
  (void)walk.problem.size();
  (void)vmi::ObjectView::make(layer, *profile, "no_such_type", head);
  return 0;
}
