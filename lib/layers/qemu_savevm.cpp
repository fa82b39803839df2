// QEMU migration streams as `migrate "exec:cat > FILE"`, savevm and libvirt's `virsh save` write
// them: the "QEVM" stream's RAM section is indexed in one pass at open time (later records for a
// page override earlier ones, as on an incoming migration); reads serve pages from the index.
#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <optional>

#include "layers/decoded_image.hpp"
#include "layers/formats.hpp"

namespace vmi {

namespace {

// migration/savevm.c
constexpr std::uint32_t kFileMagic = 0x5145564d;  // "QEVM"
constexpr std::uint32_t kFileVersion = 3;
constexpr std::uint8_t kEof = 0x08, kSectionStart = 0x01, kSectionPart = 0x02, kSectionEnd = 0x03, kSectionFull = 0x04,
                       kSubsection = 0x05, kCommand = 0x06, kConfiguration = 0x07, kFooter = 0x7e;
// migration/ram.c: flags in the low bits of each record's be64 address.
constexpr std::uint64_t kFlagZero = 0x02, kFlagMemSize = 0x04, kFlagPage = 0x08, kFlagEos = 0x10, kFlagContinue = 0x20,
                        kFlagXbzrle = 0x40, kFlagHook = 0x80, kFlagCompressPage = 0x100;
constexpr std::uint64_t kPageSize = 4096;
constexpr std::uint64_t kFlagMask = kPageSize - 1;

// libvirt src/qemu/qemu_saveimage.h: virQEMUSaveHeader, host-endian, then XML, then the stream.
constexpr char kLibvirtMagic[16] = {'L', 'i', 'b', 'v', 'i', 'r', 't', 'Q', 'e', 'm', 'u', 'd', 'S', 'a', 'v', 'e'};
constexpr char kLibvirtPartialMagic[16] = {'L', 'i', 'b', 'v', 'i', 'r', 't', 'Q',
                                           'e', 'm', 'u', 'd', 'P', 'a', 'r', 't'};
struct RawLibvirtHeader {
  char magic[16];
  std::uint32_t version, data_len, was_running, compressed, cookie_offset;
  std::uint32_t unused[14];
};
static_assert(sizeof(RawLibvirtHeader) == 92);

constexpr std::size_t kMaxRamBlocks = 1024;
constexpr std::uint64_t kMaxGuestRam = std::uint64_t{1} << 40;  // 1 TiB: 4 MiB of PageIndex chunk pointers
constexpr std::uint64_t kMaxStreamRecords = std::uint64_t{1} << 32;
constexpr std::string_view kGuestRamBlock = "pc.ram";
constexpr std::uint64_t kFourGiB = std::uint64_t{1} << 32;

// target/i386/machine.c vmstate_x86_cpu, version 12 (QEMU 7.x): general registers, rip, rflags,
// then (after the FPU state) six segments of {u32 selector, u64 base, u32 limit, u32 flags},
// ldt, tr, gdt, idt, sysenter state and cr0/cr2/cr3/cr4; all big-endian. The offsets were
// checked on a real QEMU 7.2 stream against the same VM's dump-guest-memory notes.
constexpr std::uint32_t kCpuStateVersion = 12;
constexpr const char* kCpuGeneralRegs[] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                           "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
constexpr const char* kCpuSegments[] = {"es", "cs", "ss", "ds", "fs", "gs", "ldt", "tr", "gdt", "idt"};
constexpr std::size_t kSegmentRegisters = 6;  // es..gs: the ones with a selector a program loads
constexpr std::size_t kCpuRipOffset = 128, kCpuRflagsOffset = 136, kCpuSegmentsOffset = 236, kCpuSegmentSize = 20;
constexpr std::size_t kCpuCrOffsets[][2] = {{0, 456}, {2, 464}, {3, 472}, {4, 480}};
constexpr std::size_t kCpuStateMinSize = 488;
constexpr std::uint64_t kMaxDeviceStateScan = std::uint64_t{16} << 20;
constexpr std::size_t kMaxCpus = 1024;

// An index entry: 0 = never sent; kFill | byte = a page of one byte; otherwise the file offset.
constexpr std::uint64_t kFill = std::uint64_t{1} << 63;

// pc.ram's length comes from the stream, so a dense index (8 bytes a page) would let a header of
// a few bytes claim 2 GiB. Entries live in 4 KiB chunks of 512 pages, made when a record first
// lands in one: a real stream sends every page, so this costs what a dense index would, while a
// hostile one pays 4 KiB per record of at least 9 bytes it holds (2 GiB at most, at the 1 TiB cap)
// instead of 2 GiB for its header.
class PageIndex {
 public:
  void reset(std::uint64_t pages) {
    pages_ = pages;
    chunks_.clear();
    chunks_.resize((pages + kChunkPages - 1) / kChunkPages);
  }
  std::uint64_t size() const { return pages_; }
  std::uint64_t get(std::uint64_t page) const {  // caller checked page < size()
    const auto& chunk = chunks_[page / kChunkPages];
    return chunk ? (*chunk)[page % kChunkPages] : 0;
  }
  void set(std::uint64_t page, std::uint64_t entry) {  // caller checked page < size()
    auto& chunk = chunks_[page / kChunkPages];
    if (!chunk) chunk = std::make_unique<Chunk>();
    (*chunk)[page % kChunkPages] = entry;
  }
  // Calls fn(page, entry) for every sent page, in page order.
  template <class Fn>
  void for_each_sent(Fn&& fn) const {
    for (std::uint64_t c = 0; c < chunks_.size(); ++c) {
      if (!chunks_[c]) continue;
      for (std::uint64_t i = 0; i < kChunkPages; ++i) {
        if ((*chunks_[c])[i] != 0) fn(c * kChunkPages + i, (*chunks_[c])[i]);
      }
    }
  }

 private:
  static constexpr std::uint64_t kChunkPages = 512;
  using Chunk = std::array<std::uint64_t, kChunkPages>;
  std::vector<std::unique_ptr<Chunk>> chunks_;
  std::uint64_t pages_ = 0;
};

class Cursor {
 public:
  Cursor(std::span<const std::byte> bytes, std::uint64_t at) : bytes_(bytes), at_(at) {}
  std::uint64_t at() const { return at_; }
  bool has(std::uint64_t n) const { return at_ <= bytes_.size() && n <= bytes_.size() - at_; }
  std::uint64_t be(std::size_t n) {  // caller checked has(n)
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = v << 8 | std::to_integer<std::uint64_t>(bytes_[at_ + i]);
    at_ += n;
    return v;
  }
  std::string_view text(std::size_t n) {
    std::string_view s(reinterpret_cast<const char*>(bytes_.data() + at_), n);
    at_ += n;
    return s;
  }
  void skip(std::uint64_t n) { at_ += n; }

 private:
  std::span<const std::byte> bytes_;
  std::uint64_t at_;
};

class SavevmLayer final : public DecodedImage {
 public:
  explicit SavevmLayer(std::shared_ptr<const FileMapping> file) : DecodedImage("QEMU savevm", std::move(file)) {}
  std::string_view format() const override { return "qemu-savevm"; }
  Expected<std::size_t> read(Addr addr, std::span<std::byte> dst) const override;

  Expected<void> parse();

 private:
  Error truncated(std::uint64_t at, const std::string& what) const {
    return fail(Errc::truncated, what + " at " + hex(at) + " runs past end of file (" + hex(file_->size()) + ")");
  }
  Expected<void> parse_ram(Cursor& in);
  Expected<void> map_guest_ram();
  void find_cpu_states(std::uint64_t from);
  // The pc.ram offset of a guest-physical address, or nullopt in a hole.
  std::optional<std::uint64_t> ram_offset(Addr addr) const {
    if (addr < below_4g_) return addr;
    if (addr >= kFourGiB && addr - kFourGiB < ram_size_ - below_4g_) return below_4g_ + (addr - kFourGiB);
    return std::nullopt;
  }

  std::string machine_;
  std::vector<std::pair<std::string, std::uint64_t>> blocks_;  // idstr, length (setup order)
  std::string current_block_;
  std::uint64_t ram_size_ = 0;
  std::uint64_t below_4g_ = 0;
  PageIndex index_;  // per pc.ram page
  std::uint64_t records_ = 0;
  std::uint64_t released_ = 0;
};

// Device state after the RAM has no lengths to skip by, so the "cpu" sections (one per vCPU,
// instance = vCPU index) are found by their full header: type FULL, id, "\x03cpu", instance,
// version 12. Only the first kMaxDeviceStateScan bytes after the RAM are searched.
void SavevmLayer::find_cpu_states(std::uint64_t from) {
  const auto bytes = file_->bytes();
  const std::uint64_t end = std::min<std::uint64_t>(bytes.size(), from + kMaxDeviceStateScan);
  constexpr std::string_view kIdstr(
      "\x03"
      "cpu",
      4);
  for (std::uint64_t at = from + 5; at + kIdstr.size() + 8 + kCpuStateMinSize <= end; ++at) {
    if (std::memcmp(bytes.data() + at, kIdstr.data(), kIdstr.size()) != 0 ||
        std::to_integer<std::uint8_t>(bytes[at - 5]) != kSectionFull) {
      continue;
    }
    Cursor in(bytes, at + kIdstr.size());
    const auto instance = static_cast<std::uint32_t>(in.be(4));
    if (in.be(4) != kCpuStateVersion || instance >= kMaxCpus || instance != cpus_.size()) continue;
    CpuState cpu;
    cpu.index = instance;
    const std::uint64_t base = in.at();
    auto be64 = [&](std::size_t offset) { return Cursor(bytes, base + offset).be(8); };
    for (std::size_t r = 0; r < std::size(kCpuGeneralRegs); ++r) cpu.registers[kCpuGeneralRegs[r]] = be64(r * 8);
    cpu.registers["rip"] = be64(kCpuRipOffset);
    cpu.registers["rflags"] = be64(kCpuRflagsOffset);
    for (std::size_t g = 0; g < std::size(kCpuSegments); ++g) {
      const std::size_t segment = kCpuSegmentsOffset + g * kCpuSegmentSize;
      cpu.registers[std::string(kCpuSegments[g]) + "_base"] = be64(segment + 4);
      // The selector of the six segment registers, as the ELF notes name it ("cs": its low two
      // bits are the privilege level the vCPU ran at).
      if (g < kSegmentRegisters) cpu.registers[kCpuSegments[g]] = Cursor(bytes, base + segment).be(4);
    }
    for (const auto& [n, offset] : kCpuCrOffsets) cpu.registers["cr" + std::to_string(n)] = be64(offset);
    cpus_.push_back(std::move(cpu));
    at = base + kCpuStateMinSize - 1;
  }
  file_->release(from, end - from);
}

Expected<void> SavevmLayer::parse_ram(Cursor& in) {
  while (true) {
    if (!in.has(8)) return truncated(in.at(), "RAM record");
    const std::uint64_t record_at = in.at();
    const std::uint64_t header = in.be(8);
    const std::uint64_t offset = header & ~kFlagMask;
    const std::uint64_t flags = header & kFlagMask;
    if (++records_ > kMaxStreamRecords)
      return fail(Errc::limit_exceeded, "more than " + std::to_string(kMaxStreamRecords) + " RAM records");
    if (in.at() - released_ >= (std::uint64_t{8} << 20)) {  // keep RSS flat while streaming
      file_->release(released_, in.at() - released_);
      released_ = in.at();
    }
    const std::uint64_t kind = flags & ~kFlagContinue;
    if (kind == kFlagEos) return {};
    if (kind == kFlagMemSize) {
      std::uint64_t left = offset;
      if (left > kMaxGuestRam * 2)
        return fail(Errc::limit_exceeded,
                    "RAM total " + hex(left) + " at " + hex(record_at) + " (cap " + hex(kMaxGuestRam * 2) + ")");
      while (left > 0) {
        const std::uint64_t block_at = in.at();
        if (blocks_.size() >= kMaxRamBlocks)
          return fail(Errc::limit_exceeded,
                      "more than " + std::to_string(kMaxRamBlocks) + " RAM blocks at " + hex(block_at));
        if (!in.has(1)) return truncated(block_at, "RAM block name");
        const auto length = static_cast<std::size_t>(in.be(1));
        if (!in.has(length + 8)) return truncated(block_at, "RAM block entry");
        std::string id(in.text(length));
        const std::uint64_t used = in.be(8);
        if (used > left) {
          return fail(Errc::bad_format, "RAM block '" + id + "' at " + hex(block_at) + " has length " + hex(used) +
                                            ", more than the " + hex(left) + " bytes left of the announced total " +
                                            hex(offset));
        }
        left -= used;
        blocks_.emplace_back(id, used);
        if (id == kGuestRamBlock) {
          if (used > kMaxGuestRam || used % kPageSize != 0) {
            return fail(Errc::limit_exceeded, "guest RAM block length " + hex(used) + " at " + hex(block_at) +
                                                  " (must be whole pages, cap " + hex(kMaxGuestRam) + ")");
          }
          ram_size_ = used;
          index_.reset(used / kPageSize);
        }
      }
      continue;
    }
    if ((flags & kFlagContinue) == 0) {
      if (!in.has(1)) return truncated(in.at(), "RAM block name");
      const auto length = static_cast<std::size_t>(in.be(1));
      if (!in.has(length)) return truncated(in.at() - 1, "RAM block name");
      current_block_ = std::string(in.text(length));
    } else if (current_block_.empty()) {
      return fail(Errc::bad_format, "RAM record at " + hex(record_at) + " continues a block but none was named before");
    }
    if (kind != kFlagZero && kind != kFlagPage) {
      const std::string what = kind == kFlagXbzrle ? "is a XBZRLE-compressed page (disable the xbzrle capability)"
                               : kind == kFlagCompressPage
                                   ? "is a zlib-compressed page (disable the compress capability)"
                               : kind == kFlagHook ? "is an RDMA hook"
                                                   : "has unknown flags " + hex(flags);
      return fail(Errc::unsupported, "RAM record at " + hex(record_at) + " " + what);
    }
    const bool guest_ram = current_block_ == kGuestRamBlock;
    if (guest_ram && offset / kPageSize >= index_.size()) {
      return fail(Errc::bad_format, "RAM record at " + hex(record_at) + " for offset " + hex(offset) +
                                        " lies outside block '" + current_block_ + "' (" + hex(ram_size_) + " bytes)");
    }
    if (kind == kFlagZero) {
      if (!in.has(1)) return truncated(in.at(), "fill byte of RAM record");
      const std::uint64_t fill = in.be(1);
      if (guest_ram) index_.set(offset / kPageSize, kFill | fill);
    } else {
      if (!in.has(kPageSize)) return truncated(in.at(), "page data of RAM record " + hex(record_at));
      if (guest_ram) index_.set(offset / kPageSize, in.at());
      in.skip(kPageSize);
    }
  }
}

Expected<void> SavevmLayer::map_guest_ram() {
  if (index_.size() == 0)
    return fail(Errc::bad_format, "the stream has no '" + std::string(kGuestRamBlock) + "' RAM block");
  // hw/i386/pc_q35.c and pc_piix.c: how much RAM sits below 4 GiB; the rest starts at 4 GiB.
  std::uint64_t lowmem = 0xb0000000;
  if (machine_.starts_with("pc-q35") || machine_ == "q35") {
    lowmem = ram_size_ >= 0xb0000000 ? 0x80000000 : 0xb0000000;
  } else if (machine_.starts_with("pc-i440fx") || machine_ == "pc") {
    lowmem = ram_size_ >= 0xe0000000 ? 0xc0000000 : 0xe0000000;
  } else if (ram_size_ > lowmem) {
    return fail(Errc::unsupported,
                "machine '" + machine_ + "' with " + hex(ram_size_) + " bytes of RAM: unknown split below/above 4 GiB");
  }
  below_4g_ = std::min(ram_size_, lowmem);
  index_.for_each_sent([&](std::uint64_t page, std::uint64_t) {
    const std::uint64_t offset = page * kPageSize;
    const Addr at = offset < below_4g_ ? offset : kFourGiB + (offset - below_4g_);
    if (!ranges_.empty() && ranges_.back().end == at) {
      ranges_.back().end += kPageSize;
    } else {
      ranges_.push_back({at, at + kPageSize});
    }
  });
  return {};
}

Expected<void> SavevmLayer::parse() {
  const auto bytes = file_->bytes();
  std::uint64_t start = 0;
  if (bytes.size() >= 16 && std::memcmp(bytes.data(), kLibvirtPartialMagic, 16) == 0) {
    return fail(Errc::bad_format, "libvirt save header at 0x0 says \"LibvirtQemudPart\": the save did not complete");
  }
  if (bytes.size() >= 16 && std::memcmp(bytes.data(), kLibvirtMagic, 16) == 0) {
    if (bytes.size() < sizeof(RawLibvirtHeader)) return truncated(0, "libvirt save header (92 bytes)");
    RawLibvirtHeader header;
    std::memcpy(&header, bytes.data(), sizeof header);
    if (header.version > 0xffff) {  // written on a host of the other endianness
      header.version = __builtin_bswap32(header.version);
      header.data_len = __builtin_bswap32(header.data_len);
      header.compressed = __builtin_bswap32(header.compressed);
    }
    if (header.compressed != 0) {
      return fail(Errc::unsupported, "libvirt save image at 0x0 is compressed (format " +
                                         std::to_string(header.compressed) +
                                         "); decompress the stream after the XML first");
    }
    if (header.data_len > bytes.size() - sizeof header)
      return truncated(sizeof header, "libvirt XML of " + hex(header.data_len) + " bytes");
    start = sizeof header + header.data_len;
    facts_.emplace_back("libvirt save header", "version " + std::to_string(header.version) + ", " +
                                                   std::to_string(header.data_len) + " bytes of XML");
  }
  Cursor in(bytes, start);
  if (!in.has(8)) return truncated(start, "QEVM header");
  const std::uint64_t magic = in.be(4);
  const std::uint64_t version = in.be(4);
  if (magic != kFileMagic)
    return fail(Errc::bad_format, "no \"QEVM\" magic at " + hex(start) + " (found " + hex(magic) + ")");
  if (version != kFileVersion)
    return fail(Errc::unsupported,
                "stream version " + std::to_string(version) + " at " + hex(start + 4) + " (only 3 is read)");

  std::uint32_t ram_section = 0;
  bool ram_seen = false;
  bool ram_done = false;
  std::string stopped_at;
  while (!ram_done) {
    if (!in.has(1)) return truncated(in.at(), "section type");
    const std::uint64_t section_at = in.at();
    const auto type = static_cast<std::uint8_t>(in.be(1));
    if (type == kEof) break;
    if (type == kConfiguration) {
      if (!in.has(4)) return truncated(section_at, "configuration section");
      const std::uint64_t length = in.be(4);
      if (length > 256 || !in.has(length))
        return fail(Errc::bad_format, "configuration section at " + hex(section_at) + ": machine name of " +
                                          std::to_string(length) + " bytes");
      machine_ = std::string(in.text(length));
      if (in.has(1) && std::to_integer<std::uint8_t>(bytes[in.at()]) == kSubsection) {
        return fail(Errc::unsupported,
                    "configuration subsection at " + hex(in.at()) + " (capabilities/uuid) is not read");
      }
      continue;
    }
    if (type == kCommand) {
      if (!in.has(4)) return truncated(section_at, "command");
      in.be(2);
      const std::uint64_t length = in.be(2);
      if (!in.has(length)) return truncated(section_at, "command");
      in.skip(length);
      continue;
    }
    std::uint32_t id = 0;
    if (type == kSectionStart || type == kSectionFull) {
      if (!in.has(5)) return truncated(section_at, "section header");
      id = static_cast<std::uint32_t>(in.be(4));
      const auto length = static_cast<std::size_t>(in.be(1));
      if (!in.has(length + 8)) return truncated(section_at, "section header");
      const std::string idstr(in.text(length));
      in.be(4);  // instance id
      in.be(4);  // version id
      if (idstr != "ram" || type == kSectionFull) {
        if (type == kSectionFull && ram_seen) {  // device state follows RAM; it has no length to skip
          stopped_at = "'" + idstr + "' at " + hex(section_at);
          break;
        }
        return fail(Errc::unsupported, "section '" + idstr + "' (type " + std::to_string(type) + ") at " +
                                           hex(section_at) +
                                           " before the RAM section completed: its contents cannot be skipped");
      }
      if (ram_seen) return fail(Errc::bad_format, "second RAM section start at " + hex(section_at));
      ram_seen = true;
      ram_section = id;
    } else if (type == kSectionPart || type == kSectionEnd) {
      if (!in.has(4)) return truncated(section_at, "section header");
      id = static_cast<std::uint32_t>(in.be(4));
      if (!ram_seen || id != ram_section) {
        return fail(Errc::unsupported,
                    "section part for id " + std::to_string(id) + " at " + hex(section_at) + " is not the RAM section");
      }
      ram_done = type == kSectionEnd;
    } else {
      return fail(Errc::bad_format, "unknown section type " + hex(type) + " at " + hex(section_at));
    }
    VMI_TRY_VOID(parse_ram(in));
    if (in.has(1) && std::to_integer<std::uint8_t>(bytes[in.at()]) == kFooter) {
      const std::uint64_t footer_at = in.at();
      if (!in.has(5)) return truncated(footer_at, "section footer");
      in.be(1);
      if (in.be(4) != id)
        return fail(Errc::bad_format,
                    "section footer at " + hex(footer_at) + " does not close section " + std::to_string(id));
    }
  }
  file_->release(released_, in.at() - released_);
  if (!ram_seen) return fail(Errc::bad_format, "no RAM section before " + hex(in.at()));
  if (!ram_done) facts_.emplace_back("savevm warning", "the RAM section has no end record: the stream was cut short");
  VMI_TRY_VOID(map_guest_ram());
  std::uint64_t sent = 0;
  std::uint64_t filled = 0;
  index_.for_each_sent([&](std::uint64_t, std::uint64_t entry) {
    ++sent;
    filled += (entry & kFill) != 0;
  });
  std::string block_list;
  for (const auto& [id, length] : blocks_) block_list += (block_list.empty() ? "" : ", ") + id + " " + hex(length);
  facts_.emplace_back("savevm machine", machine_.empty() ? "(no configuration section)" : machine_);
  facts_.emplace_back("savevm RAM blocks", block_list);
  facts_.emplace_back("savevm guest RAM", hex(ram_size_) + " bytes (" + hex(below_4g_) + " below 4 GiB)");
  facts_.emplace_back("savevm pages", std::to_string(sent) + " of " + std::to_string(index_.size()) + " sent, " +
                                          std::to_string(filled) + " as fill pages, " + std::to_string(records_) +
                                          " records");
  if (!stopped_at.empty()) facts_.emplace_back("savevm device state", "from " + stopped_at + " on, not interpreted");
  find_cpu_states(in.at());
  facts_.emplace_back("savevm device state", "not interpreted, except the registers of " +
                                                 std::to_string(cpus_.size()) + " \"cpu\" section(s)");
  return {};
}

Expected<std::size_t> SavevmLayer::read(Addr addr, std::span<std::byte> dst) const {
  const auto bytes = file_->bytes();
  std::size_t done = 0;
  while (done < dst.size()) {
    const Addr at = addr + done;
    const auto offset = ram_offset(at);
    const std::uint64_t entry = offset ? index_.get(*offset / kPageSize) : 0;
    if (entry == 0) {
      if (done == 0) return make_error(Errc::unmapped, name_ + ": no data at physical " + hex(addr));
      break;
    }
    const auto in_page = static_cast<std::size_t>(at % kPageSize);
    const std::size_t count = std::min<std::size_t>(kPageSize - in_page, dst.size() - done);
    if (entry & kFill) {
      std::memset(dst.data() + done, static_cast<int>(entry & 0xff), count);
    } else {
      std::memcpy(dst.data() + done, bytes.data() + entry + in_page, count);
    }
    done += count;
  }
  return done;
}

}  // namespace

bool probe_qemu_savevm(const FileMapping& file) {
  const auto bytes = file.bytes();
  if (bytes.size() >= 16 &&
      (std::memcmp(bytes.data(), kLibvirtMagic, 16) == 0 || std::memcmp(bytes.data(), kLibvirtPartialMagic, 16) == 0))
    return true;
  return bytes.size() >= 4 && std::memcmp(bytes.data(), "QEVM", 4) == 0;
}

Expected<std::unique_ptr<PhysicalImage>> open_qemu_savevm(std::shared_ptr<const FileMapping> file) {
  auto layer = std::make_unique<SavevmLayer>(std::move(file));
  VMI_TRY_VOID(layer->parse());
  return std::unique_ptr<PhysicalImage>(std::move(layer));
}

}  // namespace vmi
