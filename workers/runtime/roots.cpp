#include "roots.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "tool.h"

namespace mcpd {

namespace fs = std::filesystem;

static_assert(kResolveBeneath == RESOLVE_BENEATH && kResolveNoMagiclinks == RESOLVE_NO_MAGICLINKS &&
              kResolveNoSymlinks == RESOLVE_NO_SYMLINKS);

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

RootDirs::RootDirs(std::vector<fs::path> roots) : paths_(std::move(roots)) {
  for (const auto& root : paths_) {
    int fd = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    errors_.push_back(fd < 0 ? errno : 0);
    fds_.emplace_back(fd);
  }
}

int openat_beneath(int dirfd, const char* relative, int flags, std::uint64_t resolve) {
  open_how how{};
  how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
  how.resolve = resolve;
  // glibc 2.36 (Debian 12) has no openat2() wrapper: the system call directly.
  for (int attempt = 0;; ++attempt) {
    long fd = ::syscall(SYS_openat2, dirfd, relative, &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    // EAGAIN: a rename raced a ".." lookup, which the kernel refuses to guess about; try again.
    if ((errno != EAGAIN && errno != EINTR) || attempt >= 16) return -1;
  }
}

namespace {

/// Opens the inode behind the O_PATH fd `path_fd` for reading: through its /proc/self/fd magic
/// link, which names that open file itself, so no path is looked up again and nothing swapped in
/// meanwhile can be reached. (openat2 of "" with AT_EMPTY_PATH does not exist, and reopening by
/// the name would reopen the window this closes.)
int reopen_for_reading(int path_fd, int flags) {
  std::string self = "/proc/self/fd/" + std::to_string(path_fd);
  return ::open(self.c_str(), flags | O_RDONLY | O_CLOEXEC | O_NOCTTY);
}

const char* kind_of(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

}  // namespace

OpenStatus open_regular_at(int dirfd, const char* relative, std::uint64_t resolve, Fd& out, struct stat& st,
                           int& err, RegularOpen how) {
  err = 0;
  if (how == RegularOpen::nonblocking) {
    Fd fd(openat_beneath(dirfd, relative, O_RDONLY | O_NONBLOCK | O_NOCTTY, resolve));
    if (!fd) {
      err = errno;
      if (err == ENOENT || err == ENOTDIR) return OpenStatus::missing;
      if (err == EXDEV || err == ELOOP) return OpenStatus::outside;
      if (err == ENXIO) return OpenStatus::not_regular;  // a socket
      return OpenStatus::error;
    }
    if (::fstat(fd.get(), &st) != 0) {
      err = errno;
      return OpenStatus::error;
    }
    if (!S_ISREG(st.st_mode)) return OpenStatus::not_regular;
    out = std::move(fd);
    return OpenStatus::ok;
  }
  Fd path_fd(openat_beneath(dirfd, relative, O_PATH, resolve));
  if (!path_fd) {
    err = errno;
    if (err == ENOENT || err == ENOTDIR) return OpenStatus::missing;
    if (err == EXDEV || err == ELOOP) return OpenStatus::outside;
    return OpenStatus::error;
  }
  if (::fstat(path_fd.get(), &st) != 0) {
    err = errno;
    return OpenStatus::error;
  }
  if (!S_ISREG(st.st_mode)) return OpenStatus::not_regular;
  Fd fd(reopen_for_reading(path_fd.get(), 0));
  if (!fd) {
    err = errno;
    return OpenStatus::error;
  }
  out = std::move(fd);
  return OpenStatus::ok;
}

namespace {

/// Where a user path lies: the index of its root and the path relative to that root, found
/// lexically ("a/../b" is "b"; the kernel then resolves symlinks beneath the root).
struct Located {
  std::size_t root = 0;
  std::string relative;
};

Located locate(const std::string& path, const std::vector<fs::path>& roots) {
  if (path.empty()) throw ToolError("path is empty");
  if (roots.empty()) throw ToolError("no roots are configured, so no file can be read");
  if (path.find('\0') != std::string::npos) throw ToolError("path contains a NUL byte");
  fs::path candidate(path);
  if (candidate.is_relative()) candidate = roots.front() / candidate;
  fs::path lexical = candidate.lexically_normal();
  for (std::size_t i = 0; i < roots.size(); ++i) {
    if (!is_within(lexical, roots[i])) continue;
    std::string relative = lexical.lexically_relative(roots[i]).string();
    return {i, relative.empty() ? "." : relative};
  }
  throw ToolError("path '" + path + "' is outside the allowed roots");
}

std::string kernel_path(int fd, const std::string& fallback) {
  char buffer[PATH_MAX + 1];
  std::string self = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(self.c_str(), buffer, PATH_MAX);
  if (n <= 0 || buffer[0] != '/') return fallback;
  return std::string(buffer, static_cast<std::size_t>(n));
}

}  // namespace

OpenedPath open_in_roots(const std::string& path, const ToolContext& context, PathKind kind) {
  std::shared_ptr<const RootDirs> dirs = context.root_dirs;
  if (!dirs || dirs->paths() != context.roots) dirs = std::make_shared<const RootDirs>(context.roots);
  Located at = locate(path, dirs->paths());
  const fs::path& root = dirs->paths()[at.root];
  if (dirs->fd(at.root) < 0)
    throw ToolError("root '" + root.string() + "' cannot be opened: " + std::strerror(dirs->error(at.root)));

  Fd path_fd(openat_beneath(dirs->fd(at.root), at.relative.c_str(), O_PATH, kResolveBeneath | kResolveNoMagiclinks));
  if (!path_fd) {
    int err = errno;
    // EXDEV: a "..", an absolute symlink or a symlink leading out of the root, refused by the
    // kernel. Said before "missing", so probing for files outside the roots learns nothing.
    if (err == EXDEV) throw ToolError("path '" + path + "' is outside the allowed roots");
    if (err == ENOENT || err == ENOTDIR) throw ToolError("path '" + path + "' does not exist");
    if (err == ELOOP)
      throw ToolError("path '" + path + "' cannot be opened: too many levels of symbolic links, or a /proc magic link");
    if (err == ENOSYS) throw ToolError("cannot open '" + path + "': openat2 is not available (Linux 5.6 or later)");
    throw ToolError("cannot open '" + path + "': " + std::strerror(err));
  }
  OpenedPath opened;
  if (::fstat(path_fd.get(), &opened.st) != 0)
    throw ToolError("cannot read '" + path + "': " + std::strerror(errno));
  std::string lexical = at.relative == "." ? root.string() : (root / at.relative).string();
  const mode_t mode = opened.st.st_mode;
  if (S_ISDIR(mode)) {
    if (kind == PathKind::file) throw ToolError("'" + path + "' is not a regular file (it is a directory)");
    // "." of the O_PATH fd is that directory itself, not a name looked up again.
    opened.fd = Fd(openat_beneath(path_fd.get(), ".", O_RDONLY | O_DIRECTORY, kResolveBeneath));
  } else if (S_ISREG(mode)) {
    if (kind == PathKind::directory) throw ToolError("path '" + path + "' is not a directory");
    opened.fd = Fd(reopen_for_reading(path_fd.get(), 0));
  } else {
    // Never opened for reading: a FIFO would block the open until a writer comes, a device's open
    // has effects of its own.
    if (kind == PathKind::directory) throw ToolError("path '" + path + "' is not a directory (it is " + kind_of(mode) + ")");
    throw ToolError("'" + path + "' is not a regular file (it is " + kind_of(mode) + ")");
  }
  if (!opened.fd) throw ToolError("cannot open '" + path + "': " + std::strerror(errno));
  opened.display = kernel_path(opened.fd.get(), lexical);
  return opened;
}

std::optional<struct stat> stat_in_roots(const std::string& path, const RootDirs& dirs, std::string* where) {
  try {
    Located at = locate(path, dirs.paths());
    if (dirs.fd(at.root) < 0) return std::nullopt;
    // The same resolution open_in_roots makes, without opening the file itself: an O_PATH fd
    // beneath the root, and its fstat.
    Fd fd(openat_beneath(dirs.fd(at.root), at.relative.c_str(), O_PATH, kResolveBeneath | kResolveNoMagiclinks));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0) return std::nullopt;
    if (where) *where = std::to_string(at.root) + ':' + at.relative;
    return st;
  } catch (const ToolError&) {
    return std::nullopt;
  }
}

ReadStatus read_bounded(int fd, const struct stat& st, std::uint64_t max_bytes, bool stop_at_nul,
                        std::vector<char>& buffer, std::size_t& size, std::uint64_t* bytes_read) {
  // The first chunk decides about a binary file; later ones are larger to save system calls.
  constexpr std::size_t kFirstChunk = 64 << 10, kChunk = 1 << 20;
  size = 0;
  const std::uint64_t announced = st.st_size > 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
  if (announced > max_bytes) return ReadStatus::too_large;
  if (announced && buffer.capacity() < announced + kFirstChunk) buffer.reserve(announced + kFirstChunk);
  while (true) {
    std::uint64_t want = size < kFirstChunk ? kFirstChunk - size : kChunk;
    if (announced) {
      // All that fstat announced is in: no further read() just to see EOF (a file growing
      // meanwhile is read as it was).
      if (size >= announced) break;
      want = std::min<std::uint64_t>(want, announced - size);
    } else {
      // Size unknown (0, as in /proc): read to EOF, but one byte past the limit at most (size is
      // within the limit here, and no +1 can wrap a limit of UINT64_MAX).
      std::uint64_t left = max_bytes - size;
      if (left < want) want = left + 1;
    }
    if (buffer.size() < size + want) buffer.resize(size + want);
    ssize_t n = ::read(fd, buffer.data() + size, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ReadStatus::error;
    }
    if (n == 0) break;
    if (bytes_read) *bytes_read += static_cast<std::uint64_t>(n);
    bool nul = stop_at_nul && std::memchr(buffer.data() + size, '\0', static_cast<std::size_t>(n)) != nullptr;
    size += static_cast<std::size_t>(n);
    if (nul) return ReadStatus::binary;
    if (size > max_bytes) return ReadStatus::too_large;
  }
  return ReadStatus::ok;
}

bool is_within(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (r->empty()) continue;  // trailing separator of the root
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

fs::path resolve_in_roots(const std::string& path, const std::vector<fs::path>& roots) {
  if (path.empty()) throw ToolError("path is empty");
  if (roots.empty()) throw ToolError("no roots are configured, so no file can be read");
  if (path.find('\0') != std::string::npos) throw ToolError("path contains a NUL byte");
  fs::path candidate(path);
  if (candidate.is_relative()) candidate = roots.front() / candidate;
  std::error_code ec;
  fs::path canonical = fs::canonical(candidate, ec);
  if (ec) {
    // Say "outside the roots" before "missing" when the lexical path already escapes them, so
    // probing for files outside the roots learns nothing.
    fs::path lexical = candidate.lexically_normal();
    bool inside = false;
    for (const auto& root : roots) inside = inside || is_within(lexical, root);
    if (!inside) throw ToolError("path '" + path + "' is outside the allowed roots");
    throw ToolError("path '" + path + "' does not exist");
  }
  for (const auto& root : roots)
    if (is_within(canonical, root)) return canonical;
  throw ToolError("path '" + path + "' is outside the allowed roots");
}

std::string read_text_file(const OpenedPath& file, std::uint64_t max_bytes) {
  const std::string& path = file.display;
  if (!S_ISREG(file.st.st_mode)) throw ToolError("'" + path + "' is not a regular file");
  std::vector<char> data;
  std::size_t size = 0;
  switch (read_bounded(file.fd.get(), file.st, max_bytes, false, data, size)) {
    case ReadStatus::ok:
    case ReadStatus::binary:
      break;
    case ReadStatus::too_large:
      throw ToolError("file '" + path + "' is " +
                      (file.st.st_size > 0 ? std::to_string(file.st.st_size) : "more than " + std::to_string(max_bytes)) +
                      " bytes, over the limit of " + std::to_string(max_bytes) + " (max_file_bytes)");
    case ReadStatus::error:
      throw ToolError("cannot read '" + path + "': " + std::strerror(errno));
  }
  std::size_t probe = std::min<std::size_t>(size, 8192);
  if (std::memchr(data.data(), '\0', probe) != nullptr)
    throw ToolError("file '" + path + "' looks binary (it contains NUL bytes)");
  return std::string(data.data(), size);
}

}  // namespace mcpd
