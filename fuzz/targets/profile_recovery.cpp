// Profile recovery with no profile over the input as physical memory: the banner scan, the
// page-table root search near it, kallsyms and BTF from the kernel map it finds.
#include "vmi/profile_recovery.hpp"
#include "fuzz_support.hpp"

namespace {

class InputImage final : public vmi::PhysicalImage {
 public:
  explicit InputImage(std::span<const std::byte> bytes) : layer_("fuzz", bytes) {}
  std::string_view name() const override { return layer_.name(); }
  std::string_view format() const override { return "fuzz"; }
  vmi::Expected<std::size_t> read(vmi::Addr addr, std::span<std::byte> dst) const override {
    return layer_.read(addr, dst);
  }
  std::span<const vmi::Range> ranges() const override { return layer_.ranges(); }

 private:
  vmi::MemoryLayer layer_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto image = std::make_shared<InputImage>(vmi_fuzz::bytes_of(data, size));
  auto recovered = vmi::recover_linux_profile(image);
  if (recovered) (void)recovered->profile.find_aggregate("task_struct");
  return 0;
}
