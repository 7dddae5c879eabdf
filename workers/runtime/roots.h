// Keeps file access inside the configured roots. Every tool that takes a path opens it here, once,
// beneath a directory fd of its root (openat2 with RESOLVE_BENEATH), and reads it through that fd:
// no name is resolved twice, so a symlink swapped in after a check cannot lead a tool outside what
// the user allowed. FIFOs, sockets and devices are refused before their content is ever opened.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mcpd {

struct ToolContext;

/// An owned file descriptor, closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

/// The configured roots, each opened once as an O_PATH directory fd. A root that cannot be opened
/// keeps an invalid fd, and every path below it is refused with the reason.
class RootDirs {
 public:
  explicit RootDirs(std::vector<std::filesystem::path> roots);
  const std::vector<std::filesystem::path>& paths() const { return paths_; }
  int fd(std::size_t i) const { return fds_[i].get(); }
  int error(std::size_t i) const { return errors_[i]; }

 private:
  std::vector<std::filesystem::path> paths_;
  std::vector<Fd> fds_;
  std::vector<int> errors_;
};

/// openat2(2) flags of the helpers below (from linux/openat2.h).
constexpr std::uint64_t kResolveBeneath = 0x08;       // RESOLVE_BENEATH
constexpr std::uint64_t kResolveNoMagiclinks = 0x02;  // RESOLVE_NO_MAGICLINKS
constexpr std::uint64_t kResolveNoSymlinks = 0x04;    // RESOLVE_NO_SYMLINKS

/// openat2(dirfd, relative, {flags | O_CLOEXEC, resolve}); -1 with errno on failure. Retries the
/// EAGAIN the kernel returns when a rename races a ".." lookup.
int openat_beneath(int dirfd, const char* relative, int flags, std::uint64_t resolve);

/// Why open_regular_at failed.
enum class OpenStatus { ok, missing, outside, not_regular, error };

/// How open_regular_at opens.
enum class RegularOpen {
  // O_PATH, fstat, and only a regular file reopened for reading: nothing else is ever opened.
  path_first,
  // One O_RDONLY|O_NONBLOCK|O_NOCTTY open, then fstat: a FIFO swapped in opens without blocking
  // and is refused before any read, a socket cannot be opened at all, a terminal never becomes the
  // controlling one. For the bulk reads of files a directory listing just showed as regular, where
  // the reopen would double the cost of a small file; only a device node swapped in (which takes
  // CAP_MKNOD) would see its open.
  nonblocking,
};

/// Opens the regular file `relative` beneath `dirfd` for reading, refusing anything else (`st`
/// then tells what it is). path_first: an O_PATH open, fstat on it, and then that very inode
/// reopened for reading through /proc/self/fd (a magic link to the opened file, not a name:
/// nothing is resolved again). `err` gets errno on error.
OpenStatus open_regular_at(int dirfd, const char* relative, std::uint64_t resolve, Fd& out, struct stat& st,
                           int& err, RegularOpen how = RegularOpen::path_first);

/// A user path opened beneath the roots.
struct OpenedPath {
  Fd fd;                // readable: O_RDONLY for a file, O_RDONLY|O_DIRECTORY for a directory
  struct stat st {};
  std::string display;  // the absolute path the kernel knows it by (symlinks inside resolved)
  bool is_dir() const { return S_ISDIR(st.st_mode); }
};

/// What open_in_roots accepts.
enum class PathKind { file, directory, file_or_directory };

/// Opens `path` (absolute, or relative to the first root) beneath the root it lexically lies in.
/// Throws ToolError naming the path when it is outside the roots (a lexical escape, a ".." or a
/// symlink that leaves the root, an absolute symlink), does not exist, or is not of `kind` (FIFOs,
/// sockets and devices are refused without being opened for reading). Uses context.root_dirs, or
/// opens context.roots for this call when none were opened ahead.
OpenedPath open_in_roots(const std::string& path, const ToolContext& context, PathKind kind);

/// The stat of `path` as open_in_roots would resolve it beneath `dirs` (an O_PATH open, so a FIFO
/// or device is never opened), and in `where` the root's index and the path relative to it; nullopt
/// when open_in_roots would refuse the path or it does not exist. For cache keys: three system
/// calls, where a canonical path costs one per component.
std::optional<struct stat> stat_in_roots(const std::string& path, const RootDirs& dirs, std::string* where);

/// What read_bounded found.
enum class ReadStatus { ok, too_large, binary, error };

/// Reads the regular file `fd` (its fstat in `st`) into `buffer` (grown, never shrunk) in chunks,
/// at most `max_bytes` whatever st_size says (a /proc-like file reports 0); `size` gets the bytes
/// read. With `stop_at_nul`, reading stops at the first chunk holding a NUL (ReadStatus::binary).
/// The buffer never holds more than the file's size plus one chunk. `bytes_read`, when given, is
/// increased by what was read.
ReadStatus read_bounded(int fd, const struct stat& st, std::uint64_t max_bytes, bool stop_at_nul,
                        std::vector<char>& buffer, std::size_t& size, std::uint64_t* bytes_read = nullptr);

/// Resolves `path` (absolute, or relative to the first root) to a canonical path that exists and
/// lies inside one of `roots`; throws ToolError naming the path otherwise. Only for callers that
/// open nothing afterwards (cache keys that stat a path): the answer may be stale by the time it is
/// used, so whatever reads a file uses open_in_roots instead.
std::filesystem::path resolve_in_roots(const std::string& path,
                                       const std::vector<std::filesystem::path>& roots);

/// True when canonical `path` equals `root` or lies below it.
bool is_within(const std::filesystem::path& path, const std::filesystem::path& root);

/// Reads a whole regular file opened by open_in_roots, of at most `max_bytes`; throws ToolError if
/// it is larger than the limit or looks binary (a NUL byte in its first 8 KiB, as git and ripgrep
/// decide).
std::string read_text_file(const OpenedPath& file, std::uint64_t max_bytes);

}  // namespace mcpd
