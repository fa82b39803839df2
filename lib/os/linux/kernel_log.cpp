// The kernel log from the printk ring buffer of 5.10 and later (kernel/printk/printk_ringbuffer.c):
// a ring of descriptors (state and id in one word, then the text block's logical positions), a
// parallel array of printk_info (sequence, time, facility, level, caller, dictionary), and a
// data ring of text blocks each prefixed by its descriptor's id.
//
// Older layouts, not read here: 3.5 to 5.9 keep one byte array, log_buf, of variable-length struct
// printk_log records (ts_nsec, len, text_len, dict_len, facility, flags:5, level:3) followed by
// the text and a NUL-separated dictionary, from log_first_idx up to log_next_idx, wrapping where
// a record has len 0; continuation fragments (LOG_CONT) are separate records there, joined by
// readers. Since 5.10 a continuation is appended to its record before the record is finalized,
// so each record here is whole.
#include <algorithm>
#include <cstring>

#include "os/field_reader.hpp"
#include "vmi/linux.hpp"
#include "vmi/object.hpp"

namespace vmi::linux_objects {

namespace {

constexpr unsigned kStateShift = 62;  // DESC_FLAGS_SHIFT: the top two bits of state_var
constexpr std::uint64_t kIdMask = (std::uint64_t{1} << kStateShift) - 1;
enum DescriptorState : unsigned { reserved = 0, committed = 1, finalized = 2, reusable = 3 };
constexpr unsigned kMaxCountBits = 24;  // descriptors: more is not a ring a kernel makes
constexpr unsigned kMaxSizeBits = 30;   // text bytes
constexpr std::size_t kMaxText = 1u << 16;
constexpr std::size_t kDictionaryField = 64;  // dev_printk_info's subsystem[16] and device[48] and some

struct LogLayout {
  std::uint32_t desc_ring = 0, count_bits = 0, descs = 0, infos = 0, head_id = 0, tail_id = 0;
  std::uint32_t text_ring = 0, size_bits = 0, data = 0;
  std::uint32_t desc_size = 0, state_var = 0, text_begin = 0, text_next = 0;
  std::uint32_t info_size = 0, seq = 0, ts_nsec = 0, text_len = 0, facility = 0, level_byte = 0, caller_id = 0;
  std::uint32_t subsystem = 0, subsystem_size = 0, device = 0, device_size = 0;

  static Expected<LogLayout> bind(const Profile& p) {
    LogLayout l;
    l.desc_ring = VMI_TRY(bind_offset(p, "printk_ringbuffer", "desc_ring"));
    l.count_bits = VMI_TRY(bind_offset(p, "prb_desc_ring", "count_bits"));
    l.descs = VMI_TRY(bind_offset(p, "prb_desc_ring", "descs"));
    l.infos = VMI_TRY(bind_offset(p, "prb_desc_ring", "infos"));
    l.head_id = VMI_TRY(bind_offset(p, "prb_desc_ring", "head_id"));
    l.tail_id = VMI_TRY(bind_offset(p, "prb_desc_ring", "tail_id"));
    l.text_ring = VMI_TRY(bind_offset(p, "printk_ringbuffer", "text_data_ring"));
    l.size_bits = VMI_TRY(bind_offset(p, "prb_data_ring", "size_bits"));
    l.data = VMI_TRY(bind_offset(p, "prb_data_ring", "data"));
    l.desc_size = VMI_TRY(type_size(p, "prb_desc"));
    l.state_var = VMI_TRY(bind_offset(p, "prb_desc", "state_var"));
    const auto lpos = VMI_TRY(bind_offset(p, "prb_desc", "text_blk_lpos"));
    l.text_begin = lpos + VMI_TRY(bind_offset(p, "prb_data_blk_lpos", "begin"));
    l.text_next = lpos + VMI_TRY(bind_offset(p, "prb_data_blk_lpos", "next"));
    l.info_size = VMI_TRY(type_size(p, "printk_info"));
    l.seq = VMI_TRY(bind_offset(p, "printk_info", "seq"));
    l.ts_nsec = VMI_TRY(bind_offset(p, "printk_info", "ts_nsec"));
    l.text_len = VMI_TRY(bind_offset(p, "printk_info", "text_len"));
    l.facility = VMI_TRY(bind_offset(p, "printk_info", "facility"));
    // `u8 flags:5; u8 level:3;` share one byte: flags in its low bits, level in its top three.
    l.level_byte = VMI_TRY(bind_offset(p, "printk_info", "level"));
    l.caller_id = VMI_TRY(bind_offset(p, "printk_info", "caller_id"));
    const auto dev_info = VMI_TRY(bind_offset(p, "printk_info", "dev_info"));
    l.subsystem = dev_info + VMI_TRY(bind_offset(p, "dev_printk_info", "subsystem"));
    l.device = dev_info + VMI_TRY(bind_offset(p, "dev_printk_info", "device"));
    l.subsystem_size = l.device - l.subsystem;
    l.device_size = l.info_size - l.device;
    if (l.subsystem_size > kDictionaryField || l.device_size > kDictionaryField)
      return make_error(Errc::not_found, "dev_printk_info's layout is not the one this reader knows");
    return l;
  }

  static Expected<std::uint32_t> type_size(const Profile& p, std::string_view type) {
    const Aggregate* aggregate = p.find_aggregate(type);
    if (aggregate == nullptr) return make_error(Errc::not_found, "the profile has no struct " + std::string(type));
    return aggregate->size;
  }
};

std::string until_nul(std::string_view bytes) { return std::string(bytes.substr(0, bytes.find('\0'))); }

}  // namespace

Expected<void> for_each_log_record(const Kernel& kernel, Diagnostics& diagnostics,
                                   const std::function<bool(LogRecord&&)>& visit) {
  const auto& bound = kernel.layout<LogLayout>();
  if (!bound) return bound.error();
  const LogLayout& l = *bound;
  const auto prb_symbol = kernel.symbol("prb");
  if (!prb_symbol) return make_error(Errc::not_found, "the kernel has no 'prb' (printk ring buffer) symbol");
  const Layer& layer = kernel.kernel_layer();
  const FieldReader ring(layer, diagnostics, [] { return std::string("printk ring buffer"); });
  const auto prb = ring.pointer("prb", *prb_symbol);
  if (!prb)
    return make_error(Errc::unmapped, "the printk ring buffer pointer at " + hex(*prb_symbol) + " is unreadable");
  const Addr desc_ring = *prb + l.desc_ring;
  const Addr text_ring = *prb + l.text_ring;
  const auto count_bits = ring.read<std::uint32_t>("desc_ring.count_bits", desc_ring + l.count_bits);
  const auto descs = ring.pointer("desc_ring.descs", desc_ring + l.descs);
  const auto infos = ring.pointer("desc_ring.infos", desc_ring + l.infos);
  const auto head = ring.read<std::uint64_t>("desc_ring.head_id", desc_ring + l.head_id);
  const auto tail = ring.read<std::uint64_t>("desc_ring.tail_id", desc_ring + l.tail_id);
  const auto size_bits = ring.read<std::uint32_t>("text_data_ring.size_bits", text_ring + l.size_bits);
  const auto data = ring.pointer("text_data_ring.data", text_ring + l.data);
  if (!count_bits || !descs || !infos || !head || !tail || !size_bits || !data)
    return make_error(Errc::unmapped, "the printk ring buffer at " + hex(*prb) + " is unreadable");
  if (*count_bits > kMaxCountBits || *size_bits > kMaxSizeBits)
    return make_error(Errc::bad_format, "the printk ring buffer at " + hex(*prb) + " claims 2^" +
                                            std::to_string(*count_bits) + " descriptors and 2^" +
                                            std::to_string(*size_bits) + " text bytes");
  const std::uint64_t count = std::uint64_t{1} << *count_bits;
  const std::uint64_t data_size = std::uint64_t{1} << *size_bits;
  // Ids run from the tail to the head, modulo the id mask; at most one ring's worth.
  const std::uint64_t span = ((*head - *tail) & kIdMask) + 1;
  if (span > count) {
    diagnostics.warn("printk ring buffer at " + hex(*prb) + ": head id " + std::to_string(*head) + " and tail id " +
                     std::to_string(*tail) + " are more than a ring apart; only the newest " + std::to_string(count) +
                     " descriptors are read");
  }
  const std::uint64_t records = std::min({span, count, std::uint64_t{kMaxLogRecords}});
  std::vector<std::byte> info(l.info_size);
  std::vector<std::byte> text;
  for (std::uint64_t i = 0; i < records; ++i) {
    const std::uint64_t id = (*head - (records - 1) + i) & kIdMask;
    const Addr desc = *descs + (id & (count - 1)) * l.desc_size;
    const FieldReader fields(layer, diagnostics, [desc] { return "printk descriptor " + hex(desc); });
    const auto state_var = fields.read<std::uint64_t>("state_var", desc + l.state_var);
    if (!state_var) continue;
    const auto state = static_cast<unsigned>(*state_var >> kStateShift);
    // A descriptor being written (reserved) or given up (reusable) holds no record; one whose id
    // is not this one was reused for a newer record since.
    if ((*state_var & kIdMask) != id || (state != committed && state != finalized)) continue;
    const auto begin = fields.read<std::uint64_t>("text_blk_lpos.begin", desc + l.text_begin);
    const auto next = fields.read<std::uint64_t>("text_blk_lpos.next", desc + l.text_next);
    const Addr info_at = *infos + (id & (count - 1)) * l.info_size;
    if (!begin || !next) continue;
    if (!read_exact(layer, info_at, info)) {
      fields.warn("printk_info", info_at);
      continue;
    }
    auto at = [&](std::uint32_t offset, auto value) {
      std::memcpy(&value, info.data() + offset, sizeof value);
      return value;
    };
    LogRecord record;
    record.sequence = at(l.seq, std::uint64_t{});
    record.timestamp_ns = at(l.ts_nsec, std::uint64_t{});
    record.facility = at(l.facility, std::uint8_t{});
    record.level = static_cast<std::uint8_t>(at(l.level_byte, std::uint8_t{}) >> 5);
    record.caller_id = at(l.caller_id, std::uint32_t{});
    record.finalized = state == finalized;
    const auto text_len = at(l.text_len, std::uint16_t{});
    const auto* dictionary = reinterpret_cast<const char*>(info.data());
    record.subsystem = until_nul({dictionary + l.subsystem, l.subsystem_size});
    record.device = until_nul({dictionary + l.device, l.device_size});
    // get_data(): a block lies between begin and next in one wrap of the ring, or, when it would
    // straddle the end, wholly at the ring's start; either way it begins with the descriptor's id.
    // Both positions odd: a record without text.
    if ((*begin & 1) != 0 && (*next & 1) != 0) {
      if (!visit(std::move(record))) return {};
      continue;
    }
    Addr block = 0;
    std::uint64_t size = 0;
    if ((*begin >> *size_bits) == (*next >> *size_bits) && *begin < *next) {
      block = *data + (*begin & (data_size - 1));
      size = *next - *begin;
    } else if (((*begin + data_size) >> *size_bits) == (*next >> *size_bits)) {
      block = *data;
      size = *next & (data_size - 1);
    }
    const auto block_id = size >= 8 ? fields.read<std::uint64_t>("text block id", block) : std::nullopt;
    if (block == 0 || size < 8 || size - 8 > kMaxText || !block_id || *block_id != id) {
      fields.warn("text_blk_lpos", desc + l.text_begin,
                  "(" + std::to_string(*begin) + ", " + std::to_string(*next) +
                      ") does not lead to a text block of this record; record " + std::to_string(record.sequence) +
                      " skipped");
      continue;
    }
    if (text_len > size - 8) {
      fields.warn("printk_info.text_len", info_at + l.text_len,
                  "is " + std::to_string(text_len) + " but the record's text block holds " + std::to_string(size - 8) +
                      " bytes; record " + std::to_string(record.sequence) + "'s text is cut there");
    }
    text.resize(std::min<std::uint64_t>(text_len, size - 8));
    if (!read_exact(layer, block + 8, text)) {
      fields.warn("text", block + 8);
      continue;
    }
    record.text.assign(reinterpret_cast<const char*>(text.data()), text.size());
    if (!visit(std::move(record))) return {};
  }
  return {};
}

}  // namespace vmi::linux_objects
