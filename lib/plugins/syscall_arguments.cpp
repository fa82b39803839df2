// The argument kinds of the common x86-64 system calls, and how each is shown. Constants are the
// x86-64 ABI's (include/uapi/asm-generic/fcntl.h, linux/futex.h, linux/wait.h, bits/socket.h).
#include "plugins/syscall_arguments.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "vmi/layer.hpp"
#include "vmi/text.hpp"
#include "vmi/value.hpp"

namespace vmi {

namespace {

enum class Kind : std::uint8_t {
  integer,        // int, shown signed
  unsigned_,      // unsigned long, decimal
  size,           // size_t, decimal
  bits,           // flags or bits without names here, in hex
  pointer,        // NULL or hex: a buffer the call fills or this decoder does not follow
  fd,             // 3<pipe:[10294]>
  dirfd,          // AT_FDCWD or an fd
  path,           // a NUL-terminated string in the caller's memory
  open_flags,     // O_RDONLY|O_CLOEXEC
  mode,           // 0644, shown only when the flags create a file
  timespec,       // {tv_sec=1, tv_nsec=0}
  sockaddr,       // followed by its length: {sa_family=AF_INET, ...}
  futex_op,       // FUTEX_WAIT_PRIVATE
  futex_timeout,  // a timespec for the waiting operations, else a value
  wait_options,   // WNOHANG|WUNTRACED
  signal,         // SIGKILL
  clock,          // CLOCK_MONOTONIC
  pid,            // int
};

struct Signature {
  std::string_view name;
  std::initializer_list<Kind> kinds;
};

using enum Kind;
// The calls a task is found blocked in, or that name files and peers, by entry-point name.
const Signature kSignatures[] = {
    {"read", {fd, pointer, size}},
    {"write", {fd, pointer, size}},
    {"open", {path, open_flags, mode}},
    {"close", {fd}},
    {"newstat", {path, pointer}},
    {"newfstat", {fd, pointer}},
    {"newlstat", {path, pointer}},
    {"poll", {pointer, unsigned_, integer}},
    {"lseek", {fd, integer, integer}},
    {"ioctl", {fd, bits, bits}},
    {"pread64", {fd, pointer, size, integer}},
    {"pwrite64", {fd, pointer, size, integer}},
    {"readv", {fd, pointer, integer}},
    {"writev", {fd, pointer, integer}},
    {"access", {path, integer}},
    {"select", {integer, pointer, pointer, pointer, pointer}},
    {"sched_yield", {}},
    {"pause", {}},
    {"nanosleep", {timespec, pointer}},
    {"connect", {fd, sockaddr, size}},
    {"accept", {fd, pointer, pointer}},
    {"sendto", {fd, pointer, size, bits, sockaddr, size}},
    {"recvfrom", {fd, pointer, size, bits, pointer, pointer}},
    {"sendmsg", {fd, pointer, bits}},
    {"recvmsg", {fd, pointer, bits}},
    {"bind", {fd, sockaddr, size}},
    {"listen", {fd, integer}},
    {"execve", {path, pointer, pointer}},
    {"exit", {integer}},
    {"wait4", {pid, pointer, wait_options, pointer}},
    {"kill", {pid, signal}},
    {"fcntl", {fd, integer, bits}},
    {"flock", {fd, integer}},
    {"fsync", {fd}},
    {"chdir", {path}},
    {"mkdir", {path, mode}},
    {"rmdir", {path}},
    {"unlink", {path}},
    {"readlink", {path, pointer, size}},
    {"rt_sigsuspend", {pointer, size}},
    {"rt_sigtimedwait", {pointer, pointer, timespec, size}},
    {"futex", {pointer, futex_op, unsigned_, futex_timeout, pointer, unsigned_}},
    {"epoll_wait", {fd, pointer, integer, integer}},
    {"clock_nanosleep", {clock, bits, timespec, pointer}},
    {"exit_group", {integer}},
    {"tgkill", {pid, pid, signal}},
    {"waitid", {integer, pid, pointer, wait_options, pointer}},
    {"openat", {dirfd, path, open_flags, mode}},
    {"mkdirat", {dirfd, path, mode}},
    {"newfstatat", {dirfd, path, pointer, bits}},
    {"unlinkat", {dirfd, path, bits}},
    {"pselect6", {integer, pointer, pointer, pointer, timespec, pointer}},
    {"ppoll", {pointer, unsigned_, timespec, pointer, size}},
    {"epoll_pwait", {fd, pointer, integer, integer, pointer, size}},
    {"accept4", {fd, pointer, pointer, bits}},
    {"getrandom", {pointer, size, bits}},
    {"statx", {dirfd, path, bits, bits, pointer}},
    {"openat2", {dirfd, path, pointer, size}},
};

constexpr std::size_t kMaxPath = 4096;  // PATH_MAX
constexpr std::int32_t kAtFdcwd = -100;
constexpr std::uint64_t kCreatingFlags = 0100 | 020000000;  // O_CREAT, __O_TMPFILE

struct NamedBit {
  std::uint64_t bits;
  std::string_view name;
};

// Named bits, then what is left in hex; `zero` when nothing is set.
std::string bit_names(std::uint64_t value, std::span<const NamedBit> names, std::string_view zero = "0") {
  std::string text;
  for (const NamedBit& bit : names) {
    if ((value & bit.bits) != bit.bits) continue;
    text += (text.empty() ? "" : "|") + std::string(bit.name);
    value &= ~bit.bits;
  }
  if (value != 0) text += (text.empty() ? "" : "|") + hex(value);
  return text.empty() ? std::string(zero) : text;
}

std::string open_flag_names(std::uint64_t flags) {
  static constexpr std::string_view kAccess[] = {"O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"};
  static constexpr NamedBit kFlags[] = {
      {04010000, "O_SYNC"},     {0100, "O_CREAT"},       {0200, "O_EXCL"},         {0400, "O_NOCTTY"},
      {01000, "O_TRUNC"},       {02000, "O_APPEND"},     {04000, "O_NONBLOCK"},    {010000, "O_DSYNC"},
      {020000, "O_ASYNC"},      {040000, "O_DIRECT"},    {0100000, "O_LARGEFILE"}, {0200000, "O_DIRECTORY"},
      {0400000, "O_NOFOLLOW"},  {01000000, "O_NOATIME"}, {02000000, "O_CLOEXEC"},  {010000000, "O_PATH"},
      {020000000, "O_TMPFILE"},
  };
  std::string text(kAccess[flags & 3]);
  if (const std::uint64_t rest = flags & ~std::uint64_t{3}; rest != 0) text += "|" + bit_names(rest, kFlags);
  return text;
}

std::string futex_op_name(std::uint64_t op) {
  static constexpr std::string_view kCommands[] = {"FUTEX_WAIT",           "FUTEX_WAKE",        "FUTEX_FD",
                                                   "FUTEX_REQUEUE",        "FUTEX_CMP_REQUEUE", "FUTEX_WAKE_OP",
                                                   "FUTEX_LOCK_PI",        "FUTEX_UNLOCK_PI",   "FUTEX_TRYLOCK_PI",
                                                   "FUTEX_WAIT_BITSET",    "FUTEX_WAKE_BITSET", "FUTEX_WAIT_REQUEUE_PI",
                                                   "FUTEX_CMP_REQUEUE_PI", "FUTEX_LOCK_PI2"};
  const std::uint64_t command = op & 127;
  if (command >= std::size(kCommands) || (op & ~std::uint64_t{127 | 128 | 256}) != 0) return hex(op);
  std::string text(kCommands[command]);
  if ((op & 128) != 0) text += "_PRIVATE";
  if ((op & 256) != 0) text += "|FUTEX_CLOCK_REALTIME";
  return text;
}

bool futex_waits(std::uint64_t op) {
  const std::uint64_t command = op & 127;
  return command == 0 || command == 6 || command == 9 || command == 11 || command == 13;
}

std::string signal_name(std::int32_t number) {
  static constexpr std::string_view kSignals[] = {
      "0",         "SIGHUP",  "SIGINT",    "SIGQUIT", "SIGILL",   "SIGTRAP", "SIGABRT", "SIGBUS",
      "SIGFPE",    "SIGKILL", "SIGUSR1",   "SIGSEGV", "SIGUSR2",  "SIGPIPE", "SIGALRM", "SIGTERM",
      "SIGSTKFLT", "SIGCHLD", "SIGCONT",   "SIGSTOP", "SIGTSTP",  "SIGTTIN", "SIGTTOU", "SIGURG",
      "SIGXCPU",   "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO",   "SIGPWR",  "SIGSYS"};
  if (number >= 0 && static_cast<std::size_t>(number) < std::size(kSignals)) return std::string(kSignals[number]);
  if (number >= 32 && number <= 64) return "SIGRT_" + std::to_string(number - 32);
  return std::to_string(number);
}

std::string clock_name(std::int32_t id) {
  static constexpr std::string_view kClocks[] = {"CLOCK_REALTIME",
                                                 "CLOCK_MONOTONIC",
                                                 "CLOCK_PROCESS_CPUTIME_ID",
                                                 "CLOCK_THREAD_CPUTIME_ID",
                                                 "CLOCK_MONOTONIC_RAW",
                                                 "CLOCK_REALTIME_COARSE",
                                                 "CLOCK_MONOTONIC_COARSE",
                                                 "CLOCK_BOOTTIME",
                                                 "CLOCK_REALTIME_ALARM",
                                                 "CLOCK_BOOTTIME_ALARM",
                                                 "10",
                                                 "CLOCK_TAI"};
  if (id >= 0 && static_cast<std::size_t>(id) < std::size(kClocks)) return std::string(kClocks[id]);
  return std::to_string(id);
}

std::string quoted(std::string_view bytes) { return "\"" + escaped_text(bytes) + "\""; }

class ArgumentFormatter {
 public:
  ArgumentFormatter(const std::array<std::uint64_t, 6>& values, const CallerView& caller)
      : values_(values), caller_(caller) {}

  // The argument at `index` of kind `kind`; empty when the call's other arguments say it is not
  // passed (open's mode without O_CREAT).
  std::optional<std::string> format(std::span<const Kind> kinds, std::size_t index) const {
    const std::uint64_t value = values_[index];
    const auto as_int = static_cast<std::int32_t>(static_cast<std::uint32_t>(value));  // an int argument's register
    switch (kinds[index]) {
      case integer:
      case pid:
        return std::to_string(as_int);
      case unsigned_:
      case size:
        return std::to_string(value);
      case bits:
        return hex(value);
      case pointer:
        return value == 0 ? std::string("NULL") : hex(value);
      case fd:
        return descriptor(as_int);
      case dirfd:
        return as_int == kAtFdcwd ? std::string("AT_FDCWD") : descriptor(as_int);
      case path:
        return string_at(value);
      case open_flags:
        return open_flag_names(value);
      case mode: {
        const auto flags =
            index > 0 && kinds[index - 1] == open_flags ? std::optional(values_[index - 1]) : std::nullopt;
        if (flags && (*flags & kCreatingFlags) == 0) return std::nullopt;
        return octal(value);
      }
      case timespec:
        return timespec_at(value);
      case sockaddr:
        return sockaddr_at(value, index + 1 < values_.size() ? values_[index + 1] : 0);
      case futex_op:
        return futex_op_name(value);
      case futex_timeout:
        return index > 0 && futex_waits(values_[1]) ? timespec_at(value) : std::to_string(value);
      case wait_options: {
        static constexpr NamedBit kOptions[] = {{1, "WNOHANG"},          {2, "WUNTRACED"},
                                                {4, "WEXITED"},          {8, "WCONTINUED"},
                                                {0x01000000, "WNOWAIT"}, {0x20000000, "__WNOTHREAD"},
                                                {0x40000000, "__WALL"},  {0x80000000, "__WCLONE"}};
        return bit_names(value & 0xffffffff, kOptions);
      }
      case signal:
        return signal_name(as_int);
      case clock:
        return clock_name(as_int);
    }
    return hex(value);
  }

 private:
  static std::string octal(std::uint64_t value) {
    std::string digits;
    do {
      digits.insert(digits.begin(), static_cast<char>('0' + (value & 7)));
      value >>= 3;
    } while (value != 0);
    return "0" + digits;
  }

  static std::string unreadable(std::uint64_t address) { return hex(address) + "<unreadable>"; }

  std::string descriptor(std::int32_t number) const {
    const auto what = number >= 0 ? caller_.descriptor(number) : std::nullopt;
    return std::to_string(number) + (what ? "<" + *what + ">" : "");
  }

  std::string string_at(std::uint64_t address) const {
    if (address == 0) return "NULL";
    const auto text = caller_.string(address, kMaxPath);
    return text ? quoted(*text) : unreadable(address);
  }

  std::string timespec_at(std::uint64_t address) const {
    if (address == 0) return "NULL";
    std::array<std::int64_t, 2> time{};
    if (!caller_.bytes(address, std::as_writable_bytes(std::span(time)))) return unreadable(address);
    return "{tv_sec=" + std::to_string(time[0]) + ", tv_nsec=" + std::to_string(time[1]) + "}";
  }

  std::string sockaddr_at(std::uint64_t address, std::uint64_t length) const {
    if (address == 0) return "NULL";
    constexpr std::uint64_t kMaxSockaddr = 128;  // sizeof(struct sockaddr_storage)
    std::vector<std::byte> bytes(std::min(length, kMaxSockaddr));
    if (bytes.size() < 2) return hex(address);
    if (!caller_.bytes(address, bytes)) return unreadable(address);
    const auto byte = [&](std::size_t i) { return std::to_integer<std::uint8_t>(bytes[i]); };
    const unsigned family = byte(0) | (byte(1) << 8);
    if (family == 2 && bytes.size() >= 8) {  // AF_INET
      return "{sa_family=AF_INET, sin_port=htons(" + std::to_string((byte(2) << 8) | byte(3)) +
             "), sin_addr=inet_addr(\"" + std::to_string(byte(4)) + "." + std::to_string(byte(5)) + "." +
             std::to_string(byte(6)) + "." + std::to_string(byte(7)) + "\")}";
    }
    if (family == 1) {  // AF_UNIX: a path, or '\0' and an abstract name
      std::string name(reinterpret_cast<const char*>(bytes.data()) + 2, bytes.size() - 2);
      const bool abstract = !name.empty() && name.front() == '\0';
      if (!abstract) name = name.substr(0, name.find('\0'));
      return "{sa_family=AF_UNIX, sun_path=" + std::string(abstract ? "@" : "") +
             quoted(abstract ? std::string_view(name).substr(1) : std::string_view(name)) + "}";
    }
    if (family == 10 && bytes.size() >= 24) {  // AF_INET6
      std::string address_text;
      for (std::size_t i = 8; i < 24; i += 2) {
        char group[8];
        std::snprintf(group, sizeof group, "%x", (byte(i) << 8) | byte(i + 1));
        address_text += (i == 8 ? "" : ":") + std::string(group);
      }
      return "{sa_family=AF_INET6, sin6_port=htons(" + std::to_string((byte(2) << 8) | byte(3)) +
             "), sin6_addr=" + address_text + "}";
    }
    return "{sa_family=" + std::to_string(family) + ", ...}";
  }

  const std::array<std::uint64_t, 6>& values_;
  const CallerView& caller_;
};

}  // namespace

std::string decoded_arguments(std::string_view name, const std::array<std::uint64_t, 6>& arguments,
                              const CallerView& caller) {
  const auto* signature = std::ranges::find(kSignatures, name, &Signature::name);
  std::string text;
  const auto append = [&](const std::string& argument) { text += (text.empty() ? "" : ", ") + argument; };
  if (signature == std::end(kSignatures)) {
    for (const std::uint64_t value : arguments) append(hex(value));
    return text;
  }
  const std::vector<Kind> kinds(signature->kinds);
  const ArgumentFormatter formatter(arguments, caller);
  for (std::size_t i = 0; i < kinds.size(); ++i) {
    if (auto argument = formatter.format(kinds, i)) append(*argument);
  }
  return text;
}

}  // namespace vmi
