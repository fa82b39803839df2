// A process's handle table and what each handle points at. The table (ObjectTable->TableCode) is
// a page of 16-byte _HANDLE_TABLE_ENTRYs when TableCode's low bits are 0, a page of pointers to
// such pages when 1, a page of pointers to those when 2; handle h is entry h / 4 across the
// pages. Each entry names an _OBJECT_HEADER: directly up to Windows 8 (flag bits in the low 3),
// as ObjectPointerBits (bits 20..63, shifted left 4, sign-extended) since. The header's TypeIndex
// is an index into ObTypeIndexTable, XORed since Windows 10 with the second byte of the header's
// address and ObHeaderCookie's low byte. Optional headers lie below the header in InfoMask bit
// order: creator info nearest, then the name info.
#include <array>
#include <map>

#include "os/windows/windows_fields.hpp"
#include "os/windows/windows_kernel.hpp"
#include "vmi/object.hpp"
#include "vmi/windows.hpp"

namespace vmi::windows_objects {

namespace {

constexpr std::size_t kEntrySize = 16, kPageSize = 0x1000;
constexpr std::size_t kEntriesPerPage = kPageSize / kEntrySize, kPointersPerPage = kPageSize / 8;
constexpr std::size_t kMaxTypes = 256;    // TypeIndex is a byte
constexpr std::size_t kMaxKeyDepth = 64;  // registry paths nest far less deeply
constexpr std::size_t kImageNameSize = 15;
constexpr std::uint8_t kCreatorInfo = 0x01, kNameInfo = 0x02;

struct HandleLayout {
  std::uint32_t table_code = 0, header_body = 0, type_index = 0, info_mask = 0;
  bool pointer_bits = false;  // entries hold ObjectPointerBits (Windows 8.1 and later)
  std::uint32_t creator_info_size = 0, name_info_size = 0, name_info_name = 0;
  std::uint32_t type_name = 0, file_name = 0, process_name = 0, process_pid = 0, thread_cid = 0;
  std::uint32_t cid_process = 0, cid_thread = 0;
  std::uint32_t key_kcb = 0, kcb_parent = 0, kcb_name_block = 0, ncb_length = 0, ncb_name = 0;
  UnicodeStringLayout unicode;

  static Expected<HandleLayout> bind(const Profile& p) {
    HandleLayout l;
    l.table_code = VMI_TRY(bind_offset(p, "_HANDLE_TABLE", "TableCode"));
    l.pointer_bits = p.field("_HANDLE_TABLE_ENTRY", "ObjectPointerBits").has_value();
    l.header_body = VMI_TRY(bind_offset(p, "_OBJECT_HEADER", "Body"));
    l.type_index = VMI_TRY(bind_offset(p, "_OBJECT_HEADER", "TypeIndex"));
    l.info_mask = VMI_TRY(bind_offset(p, "_OBJECT_HEADER", "InfoMask"));
    auto size_of = [&](std::string_view type) -> Expected<std::uint32_t> {
      const Aggregate* aggregate = p.find_aggregate(type);
      if (aggregate == nullptr) return make_error(Errc::not_found, "the profile has no " + std::string(type));
      return aggregate->size;
    };
    l.creator_info_size = VMI_TRY(size_of("_OBJECT_HEADER_CREATOR_INFO"));
    l.name_info_size = VMI_TRY(size_of("_OBJECT_HEADER_NAME_INFO"));
    l.name_info_name = VMI_TRY(bind_offset(p, "_OBJECT_HEADER_NAME_INFO", "Name"));
    l.type_name = VMI_TRY(bind_offset(p, "_OBJECT_TYPE", "Name"));
    l.file_name = VMI_TRY(bind_offset(p, "_FILE_OBJECT", "FileName"));
    l.process_name = VMI_TRY(bind_offset(p, "_EPROCESS", "ImageFileName"));
    l.process_pid = VMI_TRY(bind_offset(p, "_EPROCESS", "UniqueProcessId"));
    l.thread_cid = VMI_TRY(bind_offset(p, "_ETHREAD", "Cid"));
    l.cid_process = VMI_TRY(bind_offset(p, "_CLIENT_ID", "UniqueProcess"));
    l.cid_thread = VMI_TRY(bind_offset(p, "_CLIENT_ID", "UniqueThread"));
    l.key_kcb = VMI_TRY(bind_offset(p, "_CM_KEY_BODY", "KeyControlBlock"));
    l.kcb_parent = VMI_TRY(bind_offset(p, "_CM_KEY_CONTROL_BLOCK", "ParentKcb"));
    l.kcb_name_block = VMI_TRY(bind_offset(p, "_CM_KEY_CONTROL_BLOCK", "NameBlock"));
    l.ncb_length = VMI_TRY(bind_offset(p, "_CM_NAME_CONTROL_BLOCK", "NameLength"));
    l.ncb_name = VMI_TRY(bind_offset(p, "_CM_NAME_CONTROL_BLOCK", "Name"));
    l.unicode = VMI_TRY(UnicodeStringLayout::bind(p));
    return l;
  }
};

// Reads one process's handles: the object types are looked up once per index.
class HandleReader {
 public:
  HandleReader(const Kernel& kernel, const HandleLayout& l, const Process& process, Diagnostics& diagnostics)
      : l_(l),
        diagnostics_(diagnostics),
        owner_(process_owner(process.address, process.pid)),
        layer_(kernel.kernel_memory()),
        f_(layer_, diagnostics, [this] { return owner_ + " handle table"; }) {
    const auto* windows = dynamic_cast<const os_windows::WindowsKernel*>(&kernel);
    if (windows != nullptr && windows->placement().header_cookie) {
      cookie_ = windows->placement().header_cookie;  // derived: no profile gives its address
    } else if (auto cookie = kernel.symbol("ObHeaderCookie")) {
      cookie_at_ = *cookie;
    }
    type_table_ = kernel.symbol("ObTypeIndexTable");
  }

  // Walks the table below TableCode; false once `visit` wants no more.
  Expected<void> walk(Addr table, const std::function<bool(Handle&&)>& visit) {
    if (cookie_at_) {
      cookie_ = f_.read<std::uint8_t>("ObHeaderCookie", *cookie_at_);
      if (!cookie_) return make_error(Errc::unmapped, "ObHeaderCookie at " + hex(*cookie_at_) + " is unreadable");
    }
    const auto code = f_.read<std::uint64_t>("TableCode", table + l_.table_code);
    if (!code)
      return make_error(Errc::unmapped, owner_ + ": TableCode at " + hex(table + l_.table_code) + " is unreadable");
    const unsigned level = *code & 3;
    if (level > 2) return make_error(Errc::bad_format, owner_ + ": TableCode " + hex(*code) + " names level 3");
    visit_ = &visit;
    walk_level(*code & ~Addr{3}, level, 0);
    return {};
  }

 private:
  // The table page at `page` of `level` whose first handle index is `first`.
  void walk_level(Addr page, unsigned level, std::uint64_t first) {
    if (stopped_) return;
    if (level == 0) {
      std::array<std::uint64_t, kEntriesPerPage * 2> entries{};
      if (!read_exact(layer_, page, std::as_writable_bytes(std::span(entries)))) {
        diagnostics_.warn(owner_ + ": handle-table page at " + hex(page) + " is unreadable; handles " +
                          std::to_string(first * 4) + " to " + std::to_string((first + kEntriesPerPage - 1) * 4) +
                          " are not shown");
        return;
      }
      for (std::size_t i = 0; i < kEntriesPerPage && !stopped_; ++i) {
        if (++examined_ > kMaxHandleEntries) {
          if (examined_ == kMaxHandleEntries + 1)
            diagnostics_.warn(owner_ + ": more than " + std::to_string(kMaxHandleEntries) +
                              " handle-table entries; the rest are not shown");
          stopped_ = true;
          return;
        }
        entry(first + i, entries[i * 2], entries[i * 2 + 1]);
      }
      return;
    }
    std::array<std::uint64_t, kPointersPerPage> pointers{};
    if (!read_exact(layer_, page, std::as_writable_bytes(std::span(pointers)))) {
      diagnostics_.warn(owner_ + ": handle-table directory at " + hex(page) + " (level " + std::to_string(level) +
                        ") is unreadable");
      return;
    }
    const std::uint64_t span = level == 1 ? kEntriesPerPage : kEntriesPerPage * kPointersPerPage;
    for (std::size_t i = 0; i < kPointersPerPage && !stopped_; ++i) {
      if (pointers[i] != 0) walk_level(pointers[i], level - 1, first + i * span);
    }
  }

  void entry(std::uint64_t index, std::uint64_t low, std::uint64_t high) {
    if (index == 0 || low == 0) return;  // entry 0 is never a handle; 0 is a free entry
    Addr header = 0;
    std::uint64_t access = 0;
    if (l_.pointer_bits) {
      header = ((low >> 20) << 4) | 0xffff000000000000ull;
      access = high & 0x1ffffff;  // GrantedAccessBits
    } else {
      header = low & ~Addr{7};
      access = high & 0xffffffff;
    }
    if ((header >> 47) != 0x1ffff) return;  // a free entry's link, not an object
    Handle handle;
    handle.value = index * 4;
    handle.object = header + l_.header_body;
    handle.granted_access = access;
    const FieldReader o(layer_, diagnostics_,
                        [&] { return owner_ + " handle " + hex(handle.value) + " object " + hex(handle.object); });
    const auto type_index = o.read<std::uint8_t>("_OBJECT_HEADER.TypeIndex", header + l_.type_index);
    const auto info_mask = o.read<std::uint8_t>("_OBJECT_HEADER.InfoMask", header + l_.info_mask);
    handle.type = Absence::unreadable;
    handle.name = Absence::unreadable;
    if (type_index) {
      const std::uint8_t index_decoded =
          cookie_ ? static_cast<std::uint8_t>(*type_index ^ ((header >> 8) & 0xff) ^ *cookie_) : *type_index;
      handle.type = type_name(o, index_decoded, header);
    }
    if (const auto* type = std::get_if<std::string>(&handle.type); type != nullptr && info_mask)
      handle.name = object_name(o, *type, header, handle.object, *info_mask);
    if (!(*visit_)(std::move(handle))) stopped_ = true;
  }

  Maybe<std::string> type_name(const FieldReader& o, std::uint8_t index, Addr header) {
    if (auto cached = types_.find(index); cached != types_.end()) return cached->second;
    Maybe<std::string> name = Absence::unreadable;
    if (!type_table_) {
      o.warn("TypeIndex", header + l_.type_index, "cannot be looked up: the profile has no ObTypeIndexTable");
    } else if (auto type = o.read<std::uint64_t>("ObTypeIndexTable[" + std::to_string(index) + "]",
                                                 *type_table_ + std::uint64_t{index} * 8);
               type && *type == 0) {
      o.warn("TypeIndex", header + l_.type_index,
             "decodes to " + std::to_string(index) + ", which ObTypeIndexTable does not hold (a wrong cookie?)");
    } else if (type) {
      name = read_unicode_string(o, l_.unicode, "_OBJECT_TYPE.Name", *type + l_.type_name);
    }
    if (types_.size() < kMaxTypes) types_.emplace(index, name);
    return name;
  }

  Maybe<std::string> object_name(const FieldReader& o, const std::string& type, Addr header, Addr body,
                                 std::uint8_t info_mask) {
    if (type == "File") return read_unicode_string(o, l_.unicode, "_FILE_OBJECT.FileName", body + l_.file_name);
    if (type == "Process") {
      const auto name = o.bytes("_EPROCESS.ImageFileName", body + l_.process_name, kImageNameSize);
      const auto pid = o.read<std::uint64_t>("_EPROCESS.UniqueProcessId", body + l_.process_pid);
      if (!name || !pid) return Absence::unreadable;
      return name->substr(0, name->find('\0')) + " Pid " + std::to_string(*pid);
    }
    if (type == "Thread") {
      const auto tid = o.read<std::uint64_t>("_ETHREAD.Cid.UniqueThread", body + l_.thread_cid + l_.cid_thread);
      const auto pid = o.read<std::uint64_t>("_ETHREAD.Cid.UniqueProcess", body + l_.thread_cid + l_.cid_process);
      if (!tid || !pid) return Absence::unreadable;
      return "Tid " + std::to_string(*tid) + " Pid " + std::to_string(*pid);
    }
    if (type == "Key") return key_path(o, body);
    if ((info_mask & kNameInfo) == 0) return Absence::not_applicable;
    const Addr name_info = header - ((info_mask & kCreatorInfo) != 0 ? l_.creator_info_size : 0) - l_.name_info_size;
    return read_unicode_string(o, l_.unicode, "_OBJECT_HEADER_NAME_INFO.Name", name_info + l_.name_info_name);
  }

  // "\REGISTRY\MACHINE\SOFTWARE\...": the names of the key's control blocks, root first.
  Maybe<std::string> key_path(const FieldReader& o, Addr body) const {
    auto kcb = o.pointer("_CM_KEY_BODY.KeyControlBlock", body + l_.key_kcb);
    std::string path;
    for (std::size_t depth = 0; kcb && *kcb != 0; ++depth) {
      if (depth == kMaxKeyDepth) {
        o.warn("_CM_KEY_CONTROL_BLOCK.ParentKcb", *kcb + l_.kcb_parent,
               "leads more than " + std::to_string(kMaxKeyDepth) + " keys up (a cycle?)");
        return Absence::unreadable;
      }
      const auto block = o.pointer("_CM_KEY_CONTROL_BLOCK.NameBlock", *kcb + l_.kcb_name_block);
      if (!block) return Absence::unreadable;
      const auto flags = o.read<std::uint32_t>("_CM_NAME_CONTROL_BLOCK.Compressed", *block);
      const auto length = o.read<std::uint16_t>("_CM_NAME_CONTROL_BLOCK.NameLength", *block + l_.ncb_length);
      if (!flags || !length) return Absence::unreadable;
      const auto bytes = o.bytes("_CM_NAME_CONTROL_BLOCK.Name", *block + l_.ncb_name, *length);
      if (!bytes) return Absence::unreadable;
      std::string name;
      if ((*flags & 1) != 0) {
        name = *bytes;  // compressed: one byte per character
      } else {
        for (std::size_t i = 0; i + 1 < bytes->size(); i += 2) name += (*bytes)[i];  // registry names are ASCII
      }
      path.insert(0, "\\" + name);
      kcb = o.read<std::uint64_t>("_CM_KEY_CONTROL_BLOCK.ParentKcb", *kcb + l_.kcb_parent);
    }
    if (!kcb) return Absence::unreadable;
    return path;
  }

  const HandleLayout& l_;
  Diagnostics& diagnostics_;
  std::string owner_;
  const Layer& layer_;
  FieldReader f_;
  std::optional<Addr> cookie_at_, type_table_;
  std::optional<std::uint8_t> cookie_;
  std::map<std::uint8_t, Maybe<std::string>> types_;
  const std::function<bool(Handle&&)>* visit_ = nullptr;
  std::size_t examined_ = 0;
  bool stopped_ = false;
};

}  // namespace

Expected<void> for_each_handle(const Kernel& kernel, const Process& process, Diagnostics& diagnostics,
                               const std::function<bool(Handle&&)>& visit) {
  if (kernel.os() != "windows") return make_error(Errc::invalid_argument, "not a Windows kernel");
  const auto& bound = kernel.layout<HandleLayout>();
  if (!bound) return bound.error();
  const auto* table = std::get_if<std::uint64_t>(&process.object_table);
  if (table == nullptr) {
    return make_error(
        std::get<Absence>(process.object_table) == Absence::not_applicable ? Errc::not_found : Errc::unmapped,
        process_owner(process.address, process.pid) + " has no readable handle table");
  }
  HandleReader reader(kernel, *bound, process, diagnostics);
  return reader.walk(*table, visit);
}

}  // namespace vmi::windows_objects
