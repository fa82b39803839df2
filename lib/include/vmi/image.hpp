// Snapshot files: the read-only mapping, the physical-layer interface formats implement, and
// format detection from content.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vmi/expected.hpp"
#include "vmi/layer.hpp"

namespace vmi {

// A whole file mapped read-only (PROT_READ, MAP_SHARED): the evidence is never written and
// never copied; pages are faulted in only when read.
class FileMapping {
 public:
  static Expected<std::shared_ptr<const FileMapping>> open(const std::filesystem::path& path);
  ~FileMapping();
  FileMapping(const FileMapping&) = delete;
  FileMapping& operator=(const FileMapping&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::span<const std::byte> bytes() const { return {data_, size_}; }
  std::uint64_t size() const { return size_; }
  // Runs of the file that hold data (SEEK_DATA/SEEK_HOLE); one run for non-sparse files.
  std::vector<Range> data_extents() const;
  // Drops the pages of [offset, offset+length) from this process's resident set, so a scan
  // over the whole image does not grow RSS by the image size. The page cache keeps them.
  void release(std::uint64_t offset, std::uint64_t length) const;

 private:
  FileMapping() = default;
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  std::uint64_t size_ = 0;
  int fd_ = -1;
};

// Register state of one vCPU as saved by the snapshot format, by register name ("cr3", "rip").
struct CpuState {
  std::uint32_t index = 0;
  std::map<std::string, std::uint64_t, std::less<>> registers;
};

// Kernel memory a format saved by virtual address instead of as physical pages (a Windows
// triage dump): blocks of bytes at kernel-virtual addresses, copies of objects saved without
// their address, and the loaded drivers' entries. The spans point into the mapped file.
struct SavedBlock {
  Addr address = 0;
  std::span<const std::byte> bytes;
};
struct SavedDriver {
  std::span<const std::byte> loader_entry;  // a copy of its _KLDR_DATA_TABLE_ENTRY
  std::span<const std::byte> name_utf16;    // the dump's copy of its BaseDllName, UTF-16LE
  std::uint64_t name_offset = 0;            // where that copy lies in the file (for errors)
};
struct SavedVirtualMemory {
  std::vector<SavedBlock> blocks;
  // Copies of the crashing processor's objects, by type: "KPRCB", "ETHREAD", "EPROCESS".
  std::map<std::string, std::span<const std::byte>, std::less<>> objects;
  std::vector<SavedDriver> drivers;
};

// A physical address space read from a snapshot file.
class PhysicalImage : public Layer {
 public:
  virtual std::string_view format() const = 0;  // "raw", "elf-core", ...
  virtual std::span<const CpuState> cpu_states() const { return {}; }
  // Name/value facts the format's headers carry (e.g. a crash dump's DirectoryTableBase),
  // shown by `info` and available to OS detection.
  virtual std::vector<std::pair<std::string, std::string>> facts() const { return {}; }
  // The mapped file behind the image, for chunked scans that release pages as they go.
  virtual const FileMapping* file() const { return nullptr; }
  // Kernel memory saved by virtual address, for formats that save it so (then the physical
  // layer may be empty); nothing for the rest.
  virtual const SavedVirtualMemory* saved_virtual_memory() const { return nullptr; }
};

// One snapshot format: a content probe and an opener. The table lives in layers/formats.cpp.
// Probes see the whole mapping (and its path, for formats split over sibling files such as
// VMware's .vmem + .vmss) but should read only what they need.
struct ImageFormat {
  std::string_view name;
  std::string_view description;
  bool (*probe)(const FileMapping& file);
  Expected<std::unique_ptr<PhysicalImage>> (*open)(std::shared_ptr<const FileMapping> file);
};

std::span<const ImageFormat> image_formats();

// Detects the format from the file's content and opens it.
Expected<std::unique_ptr<PhysicalImage>> open_image(const std::filesystem::path& path);

}  // namespace vmi
