// The shared base of formats whose pages are decoded or indexed rather than mapped one run to one
// file offset (kdump, QEMU savevm, our container): the file, its name, and what parsing found.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "vmi/image.hpp"

namespace vmi {

class DecodedImage : public PhysicalImage {
 public:
  std::string_view name() const override { return name_; }
  std::span<const Range> ranges() const override { return ranges_; }
  std::span<const CpuState> cpu_states() const override { return cpus_; }
  std::vector<std::pair<std::string, std::string>> facts() const override { return facts_; }
  const FileMapping* file() const override { return file_.get(); }

 protected:
  // `kind` names the format in every error: "kdump" gives "kdump '/path/dump': ...".
  DecodedImage(std::string_view kind, std::shared_ptr<const FileMapping> file)
      : name_(std::string(kind) + " '" + file->path().string() + "'"), file_(std::move(file)) {}
  Error fail(Errc code, const std::string& what) const { return make_error(code, name_ + ": " + what); }

  std::string name_;
  std::shared_ptr<const FileMapping> file_;
  // Filled by the format's parse(): valid runs (sorted, half-open), vCPU registers, header facts.
  std::vector<Range> ranges_;
  std::vector<CpuState> cpus_;
  std::vector<std::pair<std::string, std::string>> facts_;
};

}  // namespace vmi
