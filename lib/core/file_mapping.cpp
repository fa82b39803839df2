// Read-only file mappings: the only way the library touches evidence files.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "vmi/image.hpp"

namespace vmi {

namespace {
constexpr std::size_t kMaxExtents = 1u << 16;  // a pathologically fragmented file counts as dense

std::string file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a file";
}
}  // namespace

Expected<std::shared_ptr<const FileMapping>> FileMapping::open(const std::filesystem::path& path) {
  // Refused before opening: open() on a FIFO blocks until a writer appears, and a device or
  // socket is no snapshot. O_NONBLOCK also keeps a FIFO swapped in after the check from blocking.
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0)
    return make_error(Errc::io, "cannot open '" + path.string() + "': " + std::strerror(errno));
  if (!S_ISREG(info.st_mode))
    return make_error(Errc::io, "'" + path.string() + "' is not a regular file (" + file_kind(info.st_mode) + ")");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return make_error(Errc::io, "cannot open '" + path.string() + "': " + std::strerror(errno));
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return make_error(Errc::io, "'" + path.string() + "' is not a regular file");
  }
  if (info.st_size == 0) {
    ::close(fd);
    return make_error(Errc::truncated, "'" + path.string() + "' is empty");
  }
  void* data = ::mmap(nullptr, static_cast<std::size_t>(info.st_size), PROT_READ, MAP_SHARED, fd, 0);
  if (data == MAP_FAILED) {
    int saved = errno;
    ::close(fd);
    return make_error(Errc::io, "cannot map '" + path.string() + "': " + std::strerror(saved));
  }
  ::madvise(data, static_cast<std::size_t>(info.st_size), MADV_RANDOM);  // no read-ahead of evidence we won't use
  std::shared_ptr<FileMapping> mapping(new FileMapping());
  mapping->path_ = path;
  mapping->data_ = static_cast<const std::byte*>(data);
  mapping->size_ = static_cast<std::uint64_t>(info.st_size);
  mapping->fd_ = fd;
  return std::shared_ptr<const FileMapping>(std::move(mapping));
}

FileMapping::~FileMapping() {
  if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
  if (fd_ >= 0) ::close(fd_);
}

std::vector<Range> FileMapping::data_extents() const {
  std::vector<Range> extents;
  off_t cursor = 0;
  const auto end = static_cast<off_t>(size_);
  while (cursor < end) {
    off_t data = ::lseek(fd_, cursor, SEEK_DATA);
    if (data < 0) break;  // ENXIO: only a hole remains
    off_t hole = ::lseek(fd_, data, SEEK_HOLE);
    if (hole < 0 || hole <= data) hole = end;
    extents.push_back({static_cast<Addr>(data), static_cast<Addr>(hole)});
    cursor = hole;
    if (extents.size() > kMaxExtents) return {{0, size_}};
  }
  if (extents.empty() && cursor == 0 && ::lseek(fd_, 0, SEEK_DATA) < 0 && errno != ENXIO) return {{0, size_}};
  return extents;
}

void FileMapping::release(std::uint64_t offset, std::uint64_t length) const {
  const std::uint64_t page = 4096;
  std::uint64_t begin = (offset + page - 1) / page * page;
  std::uint64_t end = std::min(size_, offset + length) / page * page;
  if (end > begin) ::madvise(const_cast<std::byte*>(data_) + begin, end - begin, MADV_DONTNEED);
}

}  // namespace vmi
