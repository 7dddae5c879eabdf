// Specifies the runtime's one way of opening user paths (workers/runtime/roots.h): beneath a root's
// directory fd, symlinks resolved by the kernel and never out of the root, FIFOs, sockets and
// devices refused without being opened for reading, and bounded reads through the fd.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "roots.h"
#include "temp_dir.h"
#include "tool.h"

namespace {

namespace fs = std::filesystem;
using mcpd::OpenedPath;
using mcpd::PathKind;
using mcpd::ToolContext;
using mcpd::ToolError;
using mcpd::test::TempDir;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

/// The message of the ToolError that opening `path` throws, "" if it opens.
std::string open_error(const std::string& path, const ToolContext& context, PathKind kind = PathKind::file) {
  try {
    mcpd::open_in_roots(path, context, kind);
  } catch (const ToolError& e) {
    return e.what();
  }
  return "";
}

std::string read(const std::string& path, const ToolContext& context) {
  return mcpd::read_text_file(mcpd::open_in_roots(path, context, PathKind::file), context.max_file_bytes);
}

/// A root with one file, and a directory outside it holding a secret.
struct Roots {
  TempDir root, outside;
  ToolContext context;
  Roots() {
    root.write("src/main.c", "int main;\n");
    outside.write("secret.c", "int secret;\n");
    context.roots = {root.path};
    context.root_dirs = std::make_shared<const mcpd::RootDirs>(context.roots);
  }
};

}  // namespace

TEST_CASE("absolute and relative paths inside the root open, read through the fd") {
  Roots r;
  CHECK(read((r.root.path / "src/main.c").string(), r.context) == "int main;\n");
  CHECK(read("src/main.c", r.context) == "int main;\n");
  CHECK(read("./src/../src/main.c", r.context) == "int main;\n");
  OpenedPath opened = mcpd::open_in_roots("src/main.c", r.context, PathKind::file);
  CHECK(opened.display == (r.root.path / "src/main.c").string());
  CHECK(S_ISREG(opened.st.st_mode));
  OpenedPath dir = mcpd::open_in_roots("src", r.context, PathKind::directory);
  CHECK(dir.is_dir());
  CHECK(dir.display == (r.root.path / "src").string());
  OpenedPath root = mcpd::open_in_roots(r.root.path.string(), r.context, PathKind::file_or_directory);
  CHECK(root.display == r.root.path.string());
}

TEST_CASE("without root fds opened ahead, the roots are opened for the call") {
  Roots r;
  r.context.root_dirs.reset();
  CHECK(read("src/main.c", r.context) == "int main;\n");
}

TEST_CASE("'..' out of the root is refused as outside, lexically or by the kernel") {
  Roots r;
  std::string secret = (r.outside.path / "secret.c").string();
  CHECK(contains(open_error(secret, r.context), "is outside the allowed roots"));
  CHECK(contains(open_error("../" + r.outside.path.filename().string() + "/secret.c", r.context),
                 "is outside the allowed roots"));
  CHECK(contains(open_error("src/../../x.c", r.context), "is outside the allowed roots"));
  // A symlink to the root's parent, then a walk down: no lexical escape, the kernel's refusal.
  fs::create_symlink("..", r.root.path / "up");
  CHECK(contains(open_error("up/" + r.outside.path.filename().string() + "/secret.c", r.context),
                 "is outside the allowed roots"));
}

TEST_CASE("a symlink inside the root is followed; one leading out is refused") {
  Roots r;
  fs::create_symlink("main.c", r.root.path / "src/link.c");
  fs::create_symlink("src", r.root.path / "srclink");
  CHECK(read("src/link.c", r.context) == "int main;\n");
  CHECK(read("srclink/main.c", r.context) == "int main;\n");
  CHECK(mcpd::open_in_roots("src/link.c", r.context, PathKind::file).display == (r.root.path / "src/main.c").string());

  fs::create_symlink(r.outside.path / "secret.c", r.root.path / "abs_out.c");
  fs::create_symlink(fs::relative(r.outside.path / "secret.c", r.root.path), r.root.path / "rel_out.c");
  fs::create_symlink(r.outside.path, r.root.path / "outdir");
  for (const std::string path : {"abs_out.c", "rel_out.c", "outdir/secret.c"}) {
    CAPTURE(path);
    CHECK(contains(open_error(path, r.context), "is outside the allowed roots"));
  }
}

TEST_CASE("missing paths and wrong kinds are errors naming the path") {
  Roots r;
  CHECK(contains(open_error("nope.c", r.context), "path 'nope.c' does not exist"));
  CHECK(contains(open_error("src/main.c/x", r.context), "does not exist"));
  CHECK(contains(open_error("src", r.context, PathKind::file), "'src' is not a regular file"));
  CHECK(contains(open_error("src/main.c", r.context, PathKind::directory), "'src/main.c' is not a directory"));
  CHECK(open_error("", r.context) == "path is empty");
  CHECK(contains(open_error(std::string("a\0b", 3), r.context), "NUL"));
}

TEST_CASE("a FIFO, a socket and a symlink to a FIFO are refused, without blocking") {
  Roots r;
  REQUIRE(::mkfifo((r.root.path / "pipe.c").c_str(), 0644) == 0);
  fs::create_symlink("pipe.c", r.root.path / "pipe_link.c");
  int sock = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(sock >= 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::string socket_path = (r.root.path / "sock.c").string();
  REQUIRE(socket_path.size() < sizeof address.sun_path);
  socket_path.copy(address.sun_path, socket_path.size());
  REQUIRE(::bind(sock, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  ::listen(sock, 1);

  for (PathKind kind : {PathKind::file, PathKind::file_or_directory}) {
    CHECK(contains(open_error("pipe.c", r.context, kind), "'pipe.c' is not a regular file (it is a FIFO)"));
    CHECK(contains(open_error("pipe_link.c", r.context, kind), "is not a regular file (it is a FIFO)"));
    CHECK(contains(open_error("sock.c", r.context, kind), "'sock.c' is not a regular file (it is a socket)"));
  }
  CHECK(contains(open_error("pipe.c", r.context, PathKind::directory), "'pipe.c' is not a directory (it is a FIFO)"));

  // The lower-level open used for every file a search reads says the same without opening it.
  mcpd::Fd fd;
  struct stat st;
  int err = 0;
  CHECK(mcpd::open_regular_at(r.context.root_dirs->fd(0), "pipe.c", mcpd::kResolveBeneath, fd, st, err) ==
        mcpd::OpenStatus::not_regular);
  CHECK(S_ISFIFO(st.st_mode));
  CHECK_FALSE(fd);
  // The single nonblocking open of the search's bulk reads: the FIFO opens without a writer and is
  // refused by its fstat; a socket cannot be opened.
  for (const char* name : {"pipe.c", "sock.c"}) {
    CAPTURE(name);
    CHECK(mcpd::open_regular_at(r.context.root_dirs->fd(0), name, mcpd::kResolveBeneath, fd, st, err,
                                mcpd::RegularOpen::nonblocking) == mcpd::OpenStatus::not_regular);
    CHECK_FALSE(fd);
  }
  CHECK(mcpd::open_regular_at(r.context.root_dirs->fd(0), "src/main.c", mcpd::kResolveBeneath, fd, st, err,
                              mcpd::RegularOpen::nonblocking) == mcpd::OpenStatus::ok);
  CHECK(fd);
  ::close(sock);
}

TEST_CASE("open_regular_at: RESOLVE_NO_SYMLINKS refuses a symlink anywhere on the way") {
  Roots r;
  fs::create_symlink("src", r.root.path / "srclink");
  int root = r.context.root_dirs->fd(0);
  mcpd::Fd fd;
  struct stat st;
  int err = 0;
  const std::uint64_t strict = mcpd::kResolveBeneath | mcpd::kResolveNoSymlinks;
  CHECK(mcpd::open_regular_at(root, "src/main.c", strict, fd, st, err) == mcpd::OpenStatus::ok);
  CHECK(fd);
  CHECK(mcpd::open_regular_at(root, "srclink/main.c", strict, fd, st, err) == mcpd::OpenStatus::outside);
  CHECK(mcpd::open_regular_at(root, "srclink/main.c", mcpd::kResolveBeneath, fd, st, err) == mcpd::OpenStatus::ok);
  CHECK(mcpd::open_regular_at(root, "../x", strict, fd, st, err) == mcpd::OpenStatus::outside);
  CHECK(mcpd::open_regular_at(root, "nope", strict, fd, st, err) == mcpd::OpenStatus::missing);
}

TEST_CASE("read_text_file keeps its limits: max_file_bytes and binary") {
  Roots r;
  r.root.write("big.py", std::string(2000, '#'));
  r.root.write("blob.c", std::string("int x;\0\0\0\x01", 10));
  r.context.max_file_bytes = 1000;
  std::string big;
  try {
    read("big.py", r.context);
  } catch (const ToolError& e) {
    big = e.what();
  }
  CHECK(contains(big, "is 2000 bytes, over the limit of 1000 (max_file_bytes)"));
  std::string blob;
  try {
    read("blob.c", r.context);
  } catch (const ToolError& e) {
    blob = e.what();
  }
  CHECK(contains(blob, "looks binary"));
}

TEST_CASE("read_bounded: a file reporting size 0 is read up to the bound, never beyond") {
  mcpd::Fd fd(::open("/proc/self/maps", O_RDONLY | O_CLOEXEC));
  REQUIRE(fd);
  struct stat st;
  REQUIRE(::fstat(fd.get(), &st) == 0);
  REQUIRE(st.st_size == 0);
  std::vector<char> buffer;
  std::size_t size = 0;
  std::uint64_t bytes = 0;
  CHECK(mcpd::read_bounded(fd.get(), st, 16, false, buffer, size, &bytes) == mcpd::ReadStatus::too_large);
  CHECK(bytes <= 17);
  CHECK(buffer.size() <= 17);

  mcpd::Fd again(::open("/proc/self/maps", O_RDONLY | O_CLOEXEC));
  CHECK(mcpd::read_bounded(again.get(), st, 64 << 20, false, buffer, size) == mcpd::ReadStatus::ok);
  CHECK(size > 0);
  CHECK(std::string(buffer.data(), size).find('\n') != std::string::npos);
}

TEST_CASE("read_bounded stops at the first chunk holding a NUL") {
  TempDir dir;
  std::string content(8 << 20, 'a');
  content[100] = '\0';
  dir.write("early.bin", content);
  content[100] = 'a';
  content[3 << 20] = '\0';
  dir.write("late.bin", content);
  for (const auto& [name, most] : std::vector<std::pair<std::string, std::uint64_t>>{
           {"early.bin", 64u << 10}, {"late.bin", (3u << 20) + (1u << 20) + (64u << 10)}}) {
    const std::string& file = name;  // clang 14 cannot capture a structured binding in CAPTURE's lambda
    CAPTURE(file);
    mcpd::Fd fd(::open((dir.path / name).c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st;
    REQUIRE(::fstat(fd.get(), &st) == 0);
    std::vector<char> buffer;
    std::size_t size = 0;
    std::uint64_t bytes = 0;
    CHECK(mcpd::read_bounded(fd.get(), st, 1ull << 30, true, buffer, size, &bytes) == mcpd::ReadStatus::binary);
    CHECK(bytes <= most);
    CHECK(buffer.capacity() <= static_cast<std::size_t>(st.st_size) + (64u << 10));
  }
}
