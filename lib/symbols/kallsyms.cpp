// Recovers the kernel's kallsyms tables from memory by their shape, with no profile.
//
// Linux 6.1 (scripts/kallsyms.c, write_src) emits into .rodata, each label aligned to 8 on
// 64-bit, in this order:
//   kallsyms_offsets (u32 x n) + kallsyms_relative_base (u64)   CONFIG_KALLSYMS_BASE_RELATIVE
//     or kallsyms_addresses (u64 x n)                          otherwise
//   kallsyms_num_syms (u32), kallsyms_names (len-prefixed token codes),
//   kallsyms_markers (u32 per 256 names), kallsyms_token_table (256 NUL-terminated tokens),
//   kallsyms_token_index (256 x u16 offsets into the token table).
// We find the token table by the tokens of the digits '0'..'9' (codes 0x30..0x39 keep their own
// character because symbols use them), prove it with the token index that follows, then walk
// back to the markers, names and count, and from the count to the addresses.
//
// Other versions (not exercised by the samples; noted for whoever extends this):
//  - 4.x/5.x: same order; before 4.20 or so markers were pointer-sized (PTR) rather than u32,
//    and names always had a one-byte length (the two-byte "big symbol" length is 6.1+).
//    Kernels without BASE_RELATIVE (rare on x86-64 after 4.6) have absolute kallsyms_addresses,
//    which we also try.
//  - 6.2/6.3 (and stable kernels that took the backport, such as Debian's 6.1.1xx, the
//    samples): kallsyms_seqs_of_names (3 bytes per symbol, big-endian indexes sorted by name)
//    sits between the markers and the token table; we step over it (find_names tries both).
//  - 6.4+ (Debian's 6.12 backport kernel, tested): num_syms, names, markers, token_table,
//    token_index, offsets, relative_base, seqs_of_names: the addresses follow the token index
//    instead of preceding the count; recover_addresses tries both places. 6.11 dropped absolute
//    kallsyms_addresses.
#include "vmi/kallsyms.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <string_view>

namespace vmi {
namespace {

constexpr std::size_t kMaxKallsymsSymbols = 2u << 20;  // a kernel has ~100k-300k
constexpr std::size_t kMaxMarkers = (kMaxKallsymsSymbols + 255) / 256;
constexpr std::size_t kMaxTokenTableBytes = 16u << 10;  // 256 tokens, each a few bytes
constexpr std::uint64_t kMaxNamesBytes = 64ull << 20;   // compressed names of all symbols
constexpr std::size_t kMaxSymbolName = 1024;            // KSYM_NAME_LEN is 512 in 6.1
constexpr std::size_t kScanChunk = 1u << 20;
constexpr std::size_t kPageSize = 4096;

// The tokens of codes '0'..'9': "0\0" "1\0" ... "9\0".
constexpr std::string_view kDigitTokens{"0\0001\0002\0003\0004\0005\0006\0007\0008\0009\000", 20};

Addr align8(Addr value) { return (value + 7) & ~Addr{7}; }

std::uint16_t load_u16(const std::byte* p) {
  std::uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
std::uint32_t load_u32(const std::byte* p) {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
std::uint64_t load_u64(const std::byte* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Bytes of [addr, addr + size) with holes left as zeros (they then fail every shape check).
std::vector<std::byte> read_with_holes(const Layer& layer, Addr addr, std::size_t size) {
  std::vector<std::byte> out(size);
  std::size_t done = 0;
  while (done < size) {
    auto got = layer.read(addr + done, std::span(out).subspan(done));
    if (!got || *got == 0) {
      const Addr at = addr + done;
      done += static_cast<std::size_t>(std::min<Addr>(kPageSize - (at & (kPageSize - 1)), size - done));
      continue;
    }
    done += *got;
  }
  return out;
}

// A window of memory we read once and index by virtual address, bounds-checked.
struct Window {
  Addr base = 0;
  std::vector<std::byte> bytes;
  bool has(Addr addr, std::size_t size) const {
    return addr >= base && addr - base <= bytes.size() && bytes.size() - (addr - base) >= size;
  }
  const std::byte* at(Addr addr) const { return bytes.data() + (addr - base); }
};

Window read_window(const Layer& layer, Addr begin, Addr end) {
  return Window{begin, read_with_holes(layer, begin, static_cast<std::size_t>(end - begin))};
}

struct TokenTable {
  Addr table = 0, index = 0;
  std::array<std::string, 256> tokens;
};

// Proves that the digit tokens at `digits` belong to a token table followed by its index.
std::optional<TokenTable> token_table_around(const Layer& layer, Addr digits) {
  if (digits < kMaxTokenTableBytes) return std::nullopt;
  const Window w = read_window(layer, digits - kMaxTokenTableBytes, digits + kMaxTokenTableBytes + 520);
  // Tokens '0'..'255': step forward over the 208 tokens from '0' to the end of the table.
  Addr pos = digits;
  for (int code = '0'; code < 256; ++code) {
    while (true) {
      if (!w.has(pos, 1)) return std::nullopt;
      if (*w.at(pos++) == std::byte{0}) break;
    }
  }
  const Addr index = align8(pos);
  if (!w.has(index, 512)) return std::nullopt;
  const Addr table = digits - load_u16(w.at(index + Addr{2} * '0'));
  if (table % 8 != 0 || load_u16(w.at(index)) != 0) return std::nullopt;
  TokenTable out{table, index, {}};
  Addr at = table;
  for (int code = 0; code < 256; ++code) {
    if (load_u16(w.at(index + Addr{2} * code)) != at - table) return std::nullopt;
    std::string& token = out.tokens[code];
    while (true) {
      if (!w.has(at, 1) || token.size() > kMaxSymbolName) return std::nullopt;
      const char c = static_cast<char>(*w.at(at++));
      if (c == '\0') break;
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) return std::nullopt;
      token.push_back(c);
    }
  }
  if (at != pos) return std::nullopt;
  return out;
}

// One names entry's length header: one byte, or two when the first has bit 7 (6.1+).
std::optional<std::pair<std::size_t, std::size_t>> entry_header(const Window& w, Addr at) {
  if (!w.has(at, 1)) return std::nullopt;
  std::size_t len = static_cast<std::uint8_t>(*w.at(at));
  if ((len & 0x80) == 0) return std::pair{len, std::size_t{1}};
  if (!w.has(at + 1, 1)) return std::nullopt;
  len = (len & 0x7f) | (std::size_t{static_cast<std::uint8_t>(*w.at(at + 1))} << 7);
  return std::pair{len, std::size_t{2}};
}

// Walks n names from names_start checking every 256th against the markers; returns the end.
std::optional<Addr> walk_names(const Window& w, Addr names_start, std::size_t n, const Window& mw, Addr markers) {
  Addr at = names_start;
  for (std::size_t i = 0; i < n; ++i) {
    if (i % 256 == 0 && load_u32(mw.at(markers + 4 * (i / 256))) != at - names_start) return std::nullopt;
    auto header = entry_header(w, at);
    if (!header || header->first == 0) return std::nullopt;
    at += header->second + header->first;
    if (!w.has(at, 0)) return std::nullopt;
  }
  return at;
}

struct NamesLayout {
  Addr num_syms = 0, names = 0, markers = 0, seqs_of_names = 0;
  std::size_t count = 0;
};

// kallsyms_markers at `markers` (m entries, mw holds them) and a count in [n_low, n_high]:
// looks for kallsyms_num_syms and kallsyms_names before them and proves them by walking the
// names against every marker. The names end in (markers - 8, markers]; the count sits 8 bytes
// before the names, which hold the last marker's offset plus at most 256 entries.
std::optional<NamesLayout> names_before_markers(const Layer& layer, Addr text, const Window& mw, Addr markers,
                                                std::size_t m, std::size_t n_low, std::size_t n_high) {
  if (!mw.has(markers, 4 * m) || load_u32(mw.at(markers)) != 0) return std::nullopt;
  for (std::size_t k = 1; k < m; ++k)
    if (load_u32(mw.at(markers + 4 * k)) <= load_u32(mw.at(markers + 4 * (k - 1)))) return std::nullopt;
  const std::uint64_t last_marker = load_u32(mw.at(markers + 4 * (m - 1)));
  if (markers < text || markers - text < last_marker + 16) return std::nullopt;
  const std::uint64_t span =
      std::min<std::uint64_t>(last_marker + std::uint64_t{256} * (2 + 0x7fff) + 64, kMaxNamesBytes);
  const Addr floor = markers - std::min<Addr>(markers - text, span);
  const Window w = read_window(layer, floor, markers);
  for (Addr p = (markers - 16 - last_marker) & ~Addr{7}; p >= floor + 8; p -= 8) {
    const std::uint32_t n = load_u32(w.at(p));
    if (n < n_low || n > n_high || load_u32(w.at(p + 4)) != 0) continue;
    auto end = walk_names(w, p + 8, n, mw, markers);
    if (end && align8(*end) == markers) return NamesLayout{p, p + 8, markers, 0, n};
  }
  return std::nullopt;
}

// From the token table back to kallsyms_markers, kallsyms_names and kallsyms_num_syms.
Expected<NamesLayout> find_names(const Layer& layer, Addr text, const TokenTable& tokens) {
  const Addr token_table = tokens.table;
  if (token_table < text + 16)
    return make_error(Errc::bad_format,
                      "kallsyms: token table at " + hex(token_table) + " lies before _text " + hex(text));
  const Addr floor = token_table - std::min<Addr>(token_table - text, 3 * kMaxKallsymsSymbols + 4 * kMaxMarkers + 64);
  const Window mw = read_window(layer, floor, token_table);
  // Up to 6.1: the markers end right before the token table.
  for (std::size_t m = 1; m <= kMaxMarkers; ++m) {
    const Addr markers = token_table - align8(4 * m);
    if (markers < floor) break;
    if (auto found = names_before_markers(layer, text, mw, markers, m, 256 * (m - 1) + 1, 256 * m)) return *found;
  }
  // 6.2/6.3 and stable kernels with the backport (Debian 6.1.1xx has it): kallsyms_seqs_of_names,
  // 3 bytes per symbol, sits between the markers and the token table, which fixes the count.
  for (Addr seqs_bytes = 8; seqs_bytes <= align8(3 * Addr{kMaxKallsymsSymbols}); seqs_bytes += 8) {
    const Addr seqs = token_table - seqs_bytes;
    if (seqs < floor) break;
    for (std::size_t n = (seqs_bytes - 7 + 2) / 3; 3 * n <= seqs_bytes; ++n) {
      if (n == 0 || align8(3 * n) != seqs_bytes) continue;
      const std::size_t m = (n + 255) / 256;
      if (seqs < floor + align8(4 * m)) continue;
      const Addr markers = seqs - align8(4 * m);
      if (load_u32(mw.at(markers)) != 0) continue;  // cheap filter before the full proof
      if (auto found = names_before_markers(layer, text, mw, markers, m, n, n)) {
        found->seqs_of_names = seqs;
        return *found;
      }
    }
  }
  return make_error(Errc::bad_format, "kallsyms: token table at " + hex(token_table) +
                                          " has no kallsyms_markers/kallsyms_names/kallsyms_num_syms before it");
}

Expected<std::vector<KallsymsSymbol>> expand_names(const Layer& layer, const NamesLayout& names,
                                                   const TokenTable& tokens) {
  const Window w = read_window(layer, names.names, names.markers);
  std::vector<KallsymsSymbol> symbols;
  symbols.reserve(names.count);
  Addr at = names.names;
  for (std::size_t i = 0; i < names.count; ++i) {
    auto header = entry_header(w, at);
    if (!header || !w.has(at + header->second, header->first))
      return make_error(Errc::bad_format,
                        "kallsyms: name " + std::to_string(i) + " at " + hex(at) + " runs past the names table");
    std::string expanded;
    for (std::size_t k = 0; k < header->first; ++k) {
      expanded += tokens.tokens[static_cast<std::uint8_t>(*w.at(at + header->second + k))];
      if (expanded.size() > kMaxSymbolName)
        return make_error(Errc::limit_exceeded, "kallsyms: name " + std::to_string(i) + " at " + hex(at) +
                                                    " expands past " + std::to_string(kMaxSymbolName) + " bytes");
    }
    if (expanded.size() < 2)
      return make_error(Errc::bad_format, "kallsyms: name " + std::to_string(i) + " at " + hex(at) + " is empty");
    symbols.push_back(KallsymsSymbol{expanded.substr(1), 0, expanded[0]});
    at += header->second + header->first;
  }
  return symbols;
}

// _text, the anchor we were given, must come out at text_virtual.
bool anchors_text(const std::vector<KallsymsSymbol>& symbols, Addr text) {
  for (const auto& symbol : symbols)
    if (symbol.name == "_text") return symbol.address == text;
  return false;
}

// Decodes kallsyms_offsets at offsets_at against kallsyms_relative_base at relative_base_at; true
// when that puts _text where it is.
bool decode_offsets(const Layer& layer, Addr text, Addr offsets_at, Addr relative_base_at,
                    std::vector<KallsymsSymbol>& symbols, KallsymsTables& tables) {
  const std::size_t n = symbols.size();
  auto base = read_value<std::uint64_t>(layer, relative_base_at);
  if (!base) return false;
  const Window w = read_window(layer, offsets_at, offsets_at + 4 * Addr{n});
  bool negative = false;
  for (std::size_t i = 0; i < n; ++i) negative |= static_cast<std::int32_t>(load_u32(w.at(offsets_at + 4 * i))) < 0;
  // ABSOLUTE_PERCPU (x86-64 SMP): offsets >= 0 are absolute (per-CPU), negative ones are
  // relative_base - 1 - offset. Otherwise every offset is relative_base + (u32)offset.
  for (std::size_t i = 0; i < n; ++i) {
    const auto offset = static_cast<std::int32_t>(load_u32(w.at(offsets_at + 4 * i)));
    symbols[i].address = !negative     ? *base + static_cast<std::uint32_t>(offset)
                         : offset >= 0 ? static_cast<Addr>(offset)
                                       : *base - 1 - static_cast<Addr>(static_cast<std::int64_t>(offset));
  }
  if (!anchors_text(symbols, text)) return false;
  tables.offsets = offsets_at;
  tables.relative_base = relative_base_at;
  tables.absolute_percpu = negative;
  return true;
}

// Addresses from kallsyms_offsets + kallsyms_relative_base, before kallsyms_num_syms (up to 6.3)
// or after kallsyms_token_index (6.4+, where kallsyms_seqs_of_names follows them), or from
// absolute kallsyms_addresses (kernels without KALLSYMS_BASE_RELATIVE, before 6.11).
Expected<void> recover_addresses(const Layer& layer, Addr text, const NamesLayout& names, const TokenTable& tokens,
                                 std::vector<KallsymsSymbol>& symbols, KallsymsTables& tables) {
  const std::size_t n = names.count;
  const Addr offsets_bytes = align8(4 * Addr{n});
  const Addr relative_base_at = names.num_syms - 8;
  const Addr offsets_at = relative_base_at - offsets_bytes;
  if (offsets_at >= text && offsets_at < relative_base_at &&
      decode_offsets(layer, text, offsets_at, relative_base_at, symbols, tables)) {
    return {};
  }
  const Addr late_offsets_at = align8(tokens.index + 512);
  if (decode_offsets(layer, text, late_offsets_at, late_offsets_at + offsets_bytes, symbols, tables)) {
    if (names.seqs_of_names == 0) tables.seqs_of_names = late_offsets_at + offsets_bytes + 8;
    return {};
  }
  const Addr addresses_at = names.num_syms - 8 * Addr{n};
  if (addresses_at >= text && addresses_at < names.num_syms) {
    const Window w = read_window(layer, addresses_at, names.num_syms);
    for (std::size_t i = 0; i < n; ++i) symbols[i].address = load_u64(w.at(addresses_at + 8 * i));
    if (anchors_text(symbols, text)) {
      tables.addresses = addresses_at;
      return {};
    }
  }
  return make_error(Errc::bad_format, "kallsyms: neither kallsyms_offsets+kallsyms_relative_base at " +
                                          hex(offsets_at) + " or " + hex(late_offsets_at) +
                                          " nor kallsyms_addresses at " + hex(addresses_at) + " put _text at " +
                                          hex(text));
}

}  // namespace

Expected<KallsymsResult> recover_kallsyms(const Layer& kernel_space, Addr text_virtual,
                                          const KallsymsOptions& options) {
  if (options.scan_bytes == 0 || text_virtual + options.scan_bytes < text_virtual)
    return make_error(Errc::invalid_argument, "kallsyms: empty or wrapping scan range at " + hex(text_virtual));
  const Addr scan_end = text_virtual + options.scan_bytes;
  std::optional<Error> first_error;
  std::vector<std::byte> chunk(kScanChunk + kDigitTokens.size());
  const std::string_view needle = kDigitTokens;
  for (Addr at = text_virtual; at < scan_end; at += std::min<Addr>(kScanChunk, scan_end - at)) {
    const std::size_t size = static_cast<std::size_t>(std::min<Addr>(chunk.size(), scan_end - at));
    chunk = read_with_holes(kernel_space, at, size);
    const std::string_view view(reinterpret_cast<const char*>(chunk.data()), chunk.size());
    for (std::size_t hit = view.find(needle); hit != std::string_view::npos; hit = view.find(needle, hit + 1)) {
      if (hit >= kScanChunk) break;  // the overlap belongs to the next chunk
      const Addr digits = at + hit;
      auto tokens = token_table_around(kernel_space, digits);
      if (!tokens) continue;
      auto names = find_names(kernel_space, text_virtual, *tokens);
      if (!names) {
        if (!first_error) first_error = std::move(names).error();
        continue;
      }
      if (names->count > kMaxKallsymsSymbols)
        return make_error(Errc::limit_exceeded, "kallsyms: kallsyms_num_syms at " + hex(names->num_syms) + " is " +
                                                    std::to_string(names->count));
      KallsymsResult result;
      result.tables = KallsymsTables{tokens->table,        tokens->index, names->markers,
                                     names->seqs_of_names, names->names,  names->num_syms};
      result.symbols = VMI_TRY(expand_names(kernel_space, *names, *tokens));
      VMI_TRY_VOID(recover_addresses(kernel_space, text_virtual, *names, *tokens, result.symbols, result.tables));
      return result;
    }
  }
  if (first_error) return *first_error;
  return make_error(Errc::not_found, "kallsyms: no token table in " + std::string(kernel_space.name()) + " between " +
                                         hex(text_virtual) + " and " + hex(scan_end));
}

}  // namespace vmi
