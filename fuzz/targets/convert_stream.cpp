// convert's raw-stream input: convert_to_container on a .gz or .zst stream (the input, written to
// the memfd) into a container in a temporary directory, removed after every run; the container
// it writes must open. Inputs without a stream's magic take open_image's path (image_detect).
#include <sys/resource.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>

#include "fuzz_support.hpp"
#include "layers/formats.hpp"
#include "vmi/convert.hpp"

namespace {
std::filesystem::path directory;
std::filesystem::path output;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // tmpfs when there is one: convert fsyncs its output, which a disk would make the slowest step.
  char dir[] = "/dev/shm/vmi-fuzz-convert-XXXXXX";
  char fallback[] = "/tmp/vmi-fuzz-convert-XXXXXX";
  const char* made = ::mkdtemp(dir);
  if (made == nullptr) made = ::mkdtemp(fallback);
  if (made == nullptr) __builtin_trap();
  directory = made;
  output = directory / "out.vmic";
  std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(directory, ec);
  });
  // A few KiB of zstd can expand to gigabytes: past 64 MiB a write fails with EFBIG (an Error
  // from convert) instead of filling the disk or tmpfs. Inputs and corpus files are far smaller.
  ::signal(SIGXFSZ, SIG_IGN);
  const rlimit limit{rlim_t{64} << 20, rlim_t{64} << 20};
  if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) __builtin_trap();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static vmi_fuzz::InputFile input;
  const std::string& path = input.write(data, size);
  {
    auto file = vmi::FileMapping::open(path);
    if (!file || vmi::compressed_stream_kind(**file).empty()) return 0;
  }
  vmi::ConvertOptions options;
  options.chunk_size = 4096;  // the smallest: a few KiB of stream still fill and flush several chunks
  options.level = 1;
  if (vmi::convert_to_container(path, output, options)) {
    auto image = vmi::open_image(output);
    if (!image) __builtin_trap();  // convert wrote a container that does not open
    vmi_fuzz::exercise_image(**image);
  }
  std::error_code ec;
  std::filesystem::remove(output, ec);
  return 0;
}
