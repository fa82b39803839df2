// VMware suspend/snapshot state files (.vmss/.vmsn) and the .vmem beside them: the state file's
// "memory" group says where guest-physical runs sit in the .vmem (or in its own embedded
// "Memory" block), its "cpu" group holds each vCPU's registers.
//
// Layout, as read by crash's vmware_vmss.c (written by VMware), Volatility 3's vmware.py and
// rekall's vmem.py: a 12-byte header {magic, version, group count}, then 80-byte group
// descriptors {name[64], file position, size}. A group is a run of tags ended by a zero tag.
// A tag is a little-endian u16 (bits 15-8 name length, 7-6 index count, 5-0 value size), the
// name, up to three u32 indices, then the value: 1..61 bytes inline, or for value size 63 (62
// when compressed) a block {u64 size on disk, u64 size in memory, u16 padding length,
// padding, data}; in version-0 files (magic 0xbed2bed0) the two block sizes are u32.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <optional>

#include "layers/bytes.hpp"
#include "layers/formats.hpp"
#include "layers/segment_layer.hpp"

namespace vmi {

namespace {

struct StateHeader {
  std::uint32_t magic;
  std::uint32_t version;
  std::uint32_t group_count;
};
static_assert(sizeof(StateHeader) == 12);

struct GroupDescriptor {
  char name[64];
  std::uint64_t position;  // file offset of the group's first tag
  std::uint64_t size;
};
static_assert(sizeof(GroupDescriptor) == 80);

constexpr std::uint32_t kMagics[] = {0xbed2bed0, 0xbad1bad1, 0xbed2bed2, 0xbed3bed3, 0xbad2bad2};
constexpr std::uint32_t kMagicVersion0 = 0xbed2bed0;  // blocks carry 32-bit sizes
constexpr std::uint64_t kPageSize = 4096;
constexpr std::uint32_t kMaxGroups = 4096;          // real files have a few dozen
constexpr std::size_t kMaxTagsPerGroup = 1u << 20;  // the cpu group of a 128-vCPU VM has ~100k
constexpr std::uint64_t kMaxRegions = 1024;         // VMware writes 1-3 (below/above the PCI hole)
constexpr std::uint64_t kMaxCpus = 1024;
constexpr unsigned kBlock = 63;
constexpr unsigned kCompressedBlock = 62;
constexpr std::size_t kGpregsSize = 128;    // "gpregs" block: 16 u64 (crash's vmssregs64 order)
constexpr std::size_t kCr64BlockSize = 72;  // "CR64" block: cr0..cr8
constexpr const char* kGpregsOrder[] = {"rax", "rcx", "rdx", "rbx", "rbp", "rsp", "rsi", "rdi",
                                        "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
constexpr const char* kScalarRegisters[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8",
                                            "r9",  "r10", "r11", "r12", "r13", "r14", "r15", "rip"};

std::uint64_t load_uint(std::span<const std::byte> bytes, std::uint64_t offset, std::size_t size) {
  std::uint64_t value = 0;
  std::memcpy(&value, bytes.data() + offset, std::min<std::size_t>(size, 8));  // little-endian host
  return value;
}

bool has_state_magic(const FileMapping& file) {
  if (file.size() < sizeof(std::uint32_t)) return false;
  const auto magic = load<std::uint32_t>(file.bytes(), 0);
  return std::ranges::any_of(kMagics, [magic](std::uint32_t known) { return magic == known; });
}

struct Region {
  std::optional<std::uint64_t> ppn, page_num, size;  // in pages
  std::uint64_t tag_offset = 0;                      // where the region's first tag sits
};

// What the state file says about memory and vCPUs.
struct StateInfo {
  std::optional<std::uint64_t> regions_count;
  std::vector<Region> regions;
  std::optional<Range> embedded_memory;               // file range of the "Memory" block
  std::optional<std::uint64_t> compressed_memory_at;  // a compressed "Memory" tag, which we cannot read
  std::vector<CpuState> cpus;
};

class StateParser {
 public:
  explicit StateParser(const FileMapping& file) : file_(file), bytes_(file.bytes()) {}
  Expected<StateInfo> parse();

 private:
  Error fail(Errc code, const std::string& what) const {
    return make_error(code, "VMware state '" + file_.path().string() + "': " + what);
  }
  Expected<void> parse_group(std::string_view group, std::uint64_t position);
  void take_memory_value(std::string_view name, const std::uint32_t* index, unsigned index_count, std::uint64_t value,
                         std::uint64_t tag_at);
  void take_cpu_value(std::string_view name, const std::uint32_t* index, unsigned index_count, std::uint64_t offset,
                      std::uint64_t size, bool block);
  CpuState& cpu(std::uint32_t index) {
    if (info_.cpus.size() <= index) info_.cpus.resize(index + 1);
    info_.cpus[index].index = index;
    return info_.cpus[index];
  }

  const FileMapping& file_;
  std::span<const std::byte> bytes_;
  bool version0_ = false;
  StateInfo info_;
};

Expected<StateInfo> StateParser::parse() {
  if (bytes_.size() < sizeof(StateHeader)) {
    return fail(Errc::truncated, "file (" + hex(bytes_.size()) + " bytes) is shorter than the 12-byte header");
  }
  const auto header = load<StateHeader>(bytes_, 0);
  if (!has_state_magic(file_)) return fail(Errc::bad_format, "bad magic " + hex(header.magic) + " at offset 0x0");
  version0_ = header.magic == kMagicVersion0;
  if (header.group_count > kMaxGroups) {
    return fail(Errc::limit_exceeded,
                std::to_string(header.group_count) + " groups at offset 0x8 (cap " + std::to_string(kMaxGroups) + ")");
  }
  if ((bytes_.size() - sizeof(StateHeader)) / sizeof(GroupDescriptor) < header.group_count) {
    return fail(Errc::truncated, std::to_string(header.group_count) +
                                     " group descriptors at 0xc run past end of file (" + hex(bytes_.size()) + ")");
  }
  bool memory_seen = false;
  for (std::uint32_t g = 0; g < header.group_count; ++g) {
    const std::uint64_t at = sizeof(StateHeader) + std::uint64_t{g} * sizeof(GroupDescriptor);
    const auto group = load<GroupDescriptor>(bytes_, at);
    const std::string_view name(group.name, strnlen(group.name, sizeof group.name));
    if (name != "memory" && name != "cpu") continue;  // other groups hold devices, not memory
    if (group.position >= bytes_.size()) {
      return fail(Errc::truncated, "group '" + std::string(name) + "' (descriptor at " + hex(at) + ") starts at " +
                                       hex(group.position) + ", past end of file (" + hex(bytes_.size()) + ")");
    }
    memory_seen |= name == "memory";
    VMI_TRY_VOID(parse_group(name, group.position));
  }
  if (!memory_seen)
    return fail(Errc::bad_format, "no 'memory' group among " + std::to_string(header.group_count) + " groups");
  return std::move(info_);
}

Expected<void> StateParser::parse_group(std::string_view group, std::uint64_t position) {
  std::uint64_t at = position;
  for (std::size_t n = 0;; ++n) {
    auto past_end = [&](const std::string& what) {
      return fail(Errc::truncated, what + " of tag at " + hex(at) + " in group '" + std::string(group) +
                                       "' runs past end of file (" + hex(bytes_.size()) + ")");
    };
    if (bytes_.size() - at < 2) return past_end("header");
    const auto tag = load<std::uint16_t>(bytes_, at);
    if (tag == 0) return {};  // the end-of-group tag
    if (n >= kMaxTagsPerGroup) {
      return fail(Errc::limit_exceeded, "group '" + std::string(group) + "' has more than " +
                                            std::to_string(kMaxTagsPerGroup) + " tags (at " + hex(at) + ")");
    }
    const unsigned name_length = tag >> 8;
    const unsigned index_count = (tag >> 6) & 3;
    const unsigned value_size = tag & 0x3f;
    if (name_length == 0)
      return fail(Errc::bad_format, "tag at " + hex(at) + " in group '" + std::string(group) + "' has an empty name");
    std::uint64_t cursor = at + 2;
    if (bytes_.size() - cursor < name_length + 4ull * index_count) return past_end("name and indices");
    const std::string_view name(reinterpret_cast<const char*>(bytes_.data() + cursor), name_length);
    cursor += name_length;
    std::uint32_t index[3] = {};
    for (unsigned i = 0; i < index_count; ++i, cursor += 4) index[i] = load<std::uint32_t>(bytes_, cursor);

    std::uint64_t data_size = value_size;
    const bool block = value_size == kBlock || value_size == kCompressedBlock;
    if (block) {
      const std::uint64_t size_width = version0_ ? 4 : 8;
      if (bytes_.size() - cursor < 2 * size_width + 2) return past_end("block header");
      data_size = load_uint(bytes_, cursor, size_width);  // the size on disk
      const auto padding = load<std::uint16_t>(bytes_, cursor + 2 * size_width);
      cursor += 2 * size_width + 2;
      if (bytes_.size() - cursor < padding) return past_end("block padding");
      cursor += padding;
    }
    if (bytes_.size() - cursor < data_size) {
      return fail(Errc::truncated, "tag '" + std::string(name) + "' at " + hex(at) + ": " + hex(data_size) +
                                       " bytes of data at " + hex(cursor) + " run past end of file (" +
                                       hex(bytes_.size()) + ")");
    }
    if (group == "memory") {
      if (name == "Memory" && block) {
        // A compressed block is an error only when no .vmem stands in for it (see open_pair).
        if (value_size == kCompressedBlock) {
          info_.compressed_memory_at = at;
        } else {
          info_.embedded_memory = Range{cursor, cursor + data_size};
        }
      } else if (!block && (value_size == 4 || value_size == 8)) {
        take_memory_value(name, index, index_count, load_uint(bytes_, cursor, value_size), at);
      }
    } else if (index_count >= 1 && index[0] < kMaxCpus) {
      take_cpu_value(name, index, index_count, cursor, data_size, block);
    }
    cursor += data_size;
    at = cursor;
  }
}

void StateParser::take_memory_value(std::string_view name, const std::uint32_t* index, unsigned index_count,
                                    std::uint64_t value, std::uint64_t tag_at) {
  if (name == "regionsCount" && index_count == 0) {
    info_.regions_count = value;
    return;
  }
  if (index_count != 1 || index[0] >= kMaxRegions) return;
  std::optional<std::uint64_t> Region::*field = nullptr;
  if (name == "regionPPN") field = &Region::ppn;
  if (name == "regionPageNum") field = &Region::page_num;
  if (name == "regionSize") field = &Region::size;
  if (field == nullptr) return;
  if (info_.regions.size() <= index[0]) info_.regions.resize(index[0] + 1);
  Region& region = info_.regions[index[0]];
  if (!region.ppn && !region.page_num && !region.size) region.tag_offset = tag_at;
  region.*field = value;
}

void StateParser::take_cpu_value(std::string_view name, const std::uint32_t* index, unsigned index_count,
                                 std::uint64_t offset, std::uint64_t size, bool block) {
  if (block) {
    if (name == "gpregs" && size == kGpregsSize) {
      for (std::size_t r = 0; r < std::size(kGpregsOrder); ++r) {
        cpu(index[0]).registers[kGpregsOrder[r]] = load<std::uint64_t>(bytes_, offset + r * 8);
      }
    } else if (name == "CR64" && size == kCr64BlockSize) {
      for (std::size_t r = 0; r < kCr64BlockSize / 8; ++r) {
        cpu(index[0]).registers["cr" + std::to_string(r)] = load<std::uint64_t>(bytes_, offset + r * 8);
      }
    }
    return;
  }
  if (size != 4 && size != 8) return;
  const std::uint64_t value = load_uint(bytes_, offset, size);
  if ((name == "CR64" || name == "CR") && index_count == 2 && index[1] <= 8) {
    const std::string reg = "cr" + std::to_string(index[1]);
    // 64-bit CR64 wins over the 32-bit CR tag of the same register.
    if (name == "CR64" || !cpu(index[0]).registers.contains(reg)) cpu(index[0]).registers[reg] = value;
  } else if ((name == "eflags" || name == "EFLAGS" || name == "rflags") && index_count == 1) {
    cpu(index[0]).registers["rflags"] = value;
  } else if (index_count == 1) {
    for (const char* reg : kScalarRegisters) {
      if (name == reg) cpu(index[0]).registers[reg] = value;
    }
  }
}

std::filesystem::path sibling(const std::filesystem::path& path, const char* extension) {
  auto result = path;
  result.replace_extension(extension);
  return result;
}

bool is_file(const std::filesystem::path& path) {
  std::error_code ignored;
  return std::filesystem::is_regular_file(path, ignored);
}

class VmwareLayer final : public SegmentLayer {
 public:
  VmwareLayer(std::shared_ptr<const FileMapping> state, std::shared_ptr<const FileMapping> memory)
      : SegmentLayer("VMware '" + memory->path().string() + "'", memory),
        state_(std::move(state)),
        memory_(std::move(memory)) {}
  std::string_view format() const override { return "vmware"; }
  std::span<const CpuState> cpu_states() const override { return cpus_; }
  std::vector<std::pair<std::string, std::string>> facts() const override {
    return {{"VMware state file", state_->path().string()}, {"VMware memory file", memory_->path().string()}};
  }

  Expected<void> build(StateInfo info);

 private:
  Error fail(Errc code, const std::string& what) const {
    return make_error(code, "VMware state '" + state_->path().string() + "': " + what);
  }

  std::shared_ptr<const FileMapping> state_;
  std::shared_ptr<const FileMapping> memory_;
  std::vector<CpuState> cpus_;
};

Expected<void> VmwareLayer::build(StateInfo info) {
  const bool embedded = memory_ == state_;
  const Range memory = embedded ? *info.embedded_memory : Range{0, memory_->size()};
  const std::string where =
      embedded ? "the embedded Memory block (" + hex(memory.size()) + " bytes at " + hex(memory.begin) + ")"
               : "'" + memory_->path().string() + "' (" + hex(memory.size()) + " bytes)";
  std::vector<Segment> segments;
  const std::uint64_t count = info.regions_count.value_or(0);
  if (count > kMaxRegions)
    return fail(Errc::limit_exceeded,
                "regionsCount " + std::to_string(count) + " (cap " + std::to_string(kMaxRegions) + ")");
  if (count == 0) {
    // No regions: the memory is one run from physical 0 (crash's vmware_vmss.c does the same).
    segments.push_back({{0, memory.size()}, memory.begin});
  }
  if (info.regions.size() < count) info.regions.resize(count);
  for (std::uint64_t i = 0; i < count; ++i) {
    Region& r = info.regions[i];
    if (!r.page_num && count == 1) r.page_num = 0;  // rekall: omitted when there is one region
    if (!r.ppn || !r.page_num || !r.size) {
      return fail(Errc::bad_format, "region #" + std::to_string(i) + " of " + std::to_string(count) +
                                        " lacks its regionPPN, regionPageNum or regionSize tag");
    }
    const std::uint64_t limit = ~std::uint64_t{0} / kPageSize;
    if (*r.ppn > limit || *r.size > limit - *r.ppn || *r.page_num > limit || *r.size > limit - *r.page_num) {
      return fail(Errc::bad_format,
                  "region #" + std::to_string(i) + " (tags at " + hex(r.tag_offset) + ") wraps the address space");
    }
    const std::uint64_t file_begin = *r.page_num * kPageSize;
    const std::uint64_t length = *r.size * kPageSize;
    if (file_begin > memory.size() || length > memory.size() - file_begin) {
      return fail(Errc::truncated, "region #" + std::to_string(i) + " (tags at " + hex(r.tag_offset) + ": pages " +
                                       hex(*r.page_num) + " + " + hex(*r.size) + ") runs past the end of " + where);
    }
    const Range physical{*r.ppn * kPageSize, *r.ppn * kPageSize + length};
    for (std::uint64_t j = 0; j < i; ++j) {
      const Region& other = info.regions[j];
      const Range other_range{*other.ppn * kPageSize, (*other.ppn + *other.size) * kPageSize};
      if (length > 0 && physical.begin < other_range.end && other_range.begin < physical.end) {
        return fail(Errc::bad_format, "region #" + std::to_string(i) + " (tags at " + hex(r.tag_offset) +
                                          ", physical " + hex(physical.begin) + "-" + hex(physical.end) +
                                          ") overlaps region #" + std::to_string(j) + " (physical " +
                                          hex(other_range.begin) + "-" + hex(other_range.end) + ")");
      }
    }
    segments.push_back({physical, memory.begin + file_begin});
  }
  cpus_ = std::move(info.cpus);
  std::erase_if(cpus_, [](const CpuState& c) { return c.registers.empty(); });
  return set_segments(std::move(segments));
}

Expected<std::unique_ptr<PhysicalImage>> open_pair(std::shared_ptr<const FileMapping> state,
                                                   std::shared_ptr<const FileMapping> memory) {
  auto info = VMI_TRY(StateParser(*state).parse());
  if (!memory) {
    if (info.embedded_memory) {
      memory = state;
    } else {
      const auto vmem = sibling(state->path(), ".vmem");
      if (!is_file(vmem) && info.compressed_memory_at) {
        return make_error(Errc::unsupported, "VMware state '" + state->path().string() +
                                                 "': the embedded Memory block at " + hex(*info.compressed_memory_at) +
                                                 " is compressed");
      }
      if (!is_file(vmem)) {
        return make_error(Errc::not_found, "VMware state '" + state->path().string() +
                                               "' has no embedded Memory block and no '" + vmem.string() +
                                               "' beside it");
      }
      memory = VMI_TRY(FileMapping::open(vmem));
    }
  }
  auto layer = std::make_unique<VmwareLayer>(std::move(state), std::move(memory));
  VMI_TRY_VOID(layer->build(std::move(info)));
  return std::unique_ptr<PhysicalImage>(std::move(layer));
}

}  // namespace

bool probe_vmware(const FileMapping& file) {
  if (has_state_magic(file)) return true;
  // A .vmem is raw memory; it is VMware's only when a state file beside it says how it is laid out.
  if (file.path().extension() != ".vmem") return false;
  return is_file(sibling(file.path(), ".vmss")) || is_file(sibling(file.path(), ".vmsn"));
}

Expected<std::unique_ptr<PhysicalImage>> open_vmware(std::shared_ptr<const FileMapping> file) {
  if (has_state_magic(*file)) return open_pair(std::move(file), nullptr);
  auto state_path = sibling(file->path(), ".vmss");
  if (!is_file(state_path)) state_path = sibling(file->path(), ".vmsn");
  auto state = VMI_TRY(FileMapping::open(state_path));
  return open_pair(std::move(state), std::move(file));
}

}  // namespace vmi
