// Class 2, "check, then open by name": a path checked inside the roots and then opened again by
// name lets a symlink swapped in between read a file outside them, and a FIFO given as a path (or
// swapped in for a file) blocks whatever opens it. Through the real mcpd: a thread swapping a
// symlink for a file and for a directory component while code_query and search_text read them
// (zero reads of the outside file's marker), FIFOs as `path` for every tool that takes one, and a
// FIFO swapped in for a file the search indexer has queued.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "eventually.h"
#include "hostile_support.h"

namespace {

namespace fs = std::filesystem;
using mcpd::json;
using mcpd::McpClient;
using mcpd::test::check_still_serves;
using mcpd::test::eventually;
using mcpd::test::start_mcpd;
using mcpd::test::TempDir;
using mcpd::test::text_of;
using namespace std::chrono_literals;

// Only ever in the file outside the roots; never in a request, so an answer holding it read there.
const std::string kMarker = "OUTSIDE_ROOTS_MARKER_7f3a";

std::unique_ptr<McpClient> start_with_root(const fs::path& root, const std::string& mode = "pool") {
  auto client = start_mcpd({"--root", root.string(), "--cache_enabled", "false", "--mode", mode});
  client->initialize();
  return client;
}

/// Exchanges two names atomically (renameat2 RENAME_EXCHANGE: either may be a file, a directory or
/// a symlink), as fast as it can, until destroyed; then leaves them as they were.
class Swapper {
 public:
  Swapper(fs::path a, fs::path b) : a_(std::move(a)), b_(std::move(b)), thread_([this] { run(); }) {}
  ~Swapper() {
    stop_ = true;
    thread_.join();
    if (swaps_ % 2) ::renameat2(AT_FDCWD, a_.c_str(), AT_FDCWD, b_.c_str(), RENAME_EXCHANGE);
  }
  long swaps() const { return swaps_.load(); }

 private:
  void run() {
    // The lowest priority for this thread (nice applies per thread on Linux): it swaps with what
    // CPU the tools leave, instead of starving them of one of two cores for the whole test.
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 19);
    while (!stop_) {
      if (::renameat2(AT_FDCWD, a_.c_str(), AT_FDCWD, b_.c_str(), RENAME_EXCHANGE) == 0) ++swaps_;
      sched_yield();
    }
  }
  fs::path a_, b_;
  std::atomic<bool> stop_{false};
  std::atomic<long> swaps_{0};
  std::thread thread_;
};

/// A root whose `file.c` and `dir` are swapped for symlinks to a directory outside holding the
/// marker, and the swapping thread.
struct RaceTree {
  TempDir root, outside;
  RaceTree() {
    root.write("file.c", "int inside_visible;\n");
    root.write("dir/x.c", "int inside_visible;\n");
    outside.write("secret.c", "int " + kMarker + ";\n");
    outside.write("x.c", "int " + kMarker + ";\n");
    // Hidden names: the search's default walk skips them; the swaps put them under the public names.
    fs::create_symlink(outside.path / "secret.c", root.path / ".swap_file.c");
    fs::create_symlink(outside.path, root.path / ".swap_dir");
  }
};

}  // namespace

TEST_CASE("a symlink swapped in for a file or a directory component never leads code_query outside") {
  RaceTree t;
  auto client = start_with_root(t.root.path);
  int answered = 0, inside = 0, leaked = 0;
  long swaps = 0;
  {
    Swapper file(t.root.path / "file.c", t.root.path / ".swap_file.c");
    Swapper dir(t.root.path / "dir", t.root.path / ".swap_dir");
    for (int i = 0; i < 400; ++i) {
      std::string path = (t.root.path / (i % 2 ? "file.c" : "dir/x.c")).string();
      json result = client->call_tool("code_query", {{"path", path}, {"query", "(identifier) @id"}}, 10s);
      ++answered;
      std::string text = result.dump();
      if (text.find(kMarker) != std::string::npos) ++leaked;
      if (result["isError"] == false && text.find("inside_visible") != std::string::npos) ++inside;
    }
    swaps = file.swaps() + dir.swaps();
  }
  CHECK(answered == 400);
  CHECK(leaked == 0);
  CHECK_MESSAGE(inside > 0, "no call read the file inside: the race proved nothing");
  CHECK(swaps > 0);
  check_still_serves(*client, "code_query",
                     {{"path", (t.root.path / "file.c").string()}, {"query", "(identifier) @id"}});
}

TEST_CASE("a symlink swapped in for a file or a directory component never leads search_text outside") {
  RaceTree t;
  auto client = start_with_root(t.root.path);
  int leaked = 0, inside = 0;
  long swaps = 0;
  {
    Swapper file(t.root.path / "file.c", t.root.path / ".swap_file.c");
    Swapper dir(t.root.path / "dir", t.root.path / ".swap_dir");
    const std::string paths[] = {t.root.path.string(), (t.root.path / "dir").string(),
                                 (t.root.path / "file.c").string(), (t.root.path / "dir/x.c").string()};
    for (int i = 0; i < 200; ++i) {
      json result = client->call_tool("search_text", {{"pattern", "int [A-Za-z_0-9]+;"}, {"path", paths[i % 4]}}, 60s);
      std::string text = result.dump();
      if (text.find(kMarker) != std::string::npos) ++leaked;
      if (result["isError"] == false && text.find("inside_visible") != std::string::npos) ++inside;
    }
    swaps = file.swaps() + dir.swaps();
  }
  CHECK(leaked == 0);
  CHECK_MESSAGE(inside > 0, "no search read the files inside: the race proved nothing");
  CHECK(swaps > 0);
  check_still_serves(*client, "search_text", {{"pattern", "inside_visible"}, {"path", t.root.path.string()}});
}

TEST_CASE("a FIFO as `path` is refused at once by every tool that takes a path, in the pool and in mcpd") {
  TempDir root;
  root.write("ok.c", "int ok;\n");
  REQUIRE(::mkfifo((root.path / "pipe.c").c_str(), 0644) == 0);
  fs::create_symlink("pipe.c", root.path / "pipe_link.c");
  // legacy: the tools run in mcpd's own process, which a blocked open would hang.
  for (const std::string mode : {"pool", "legacy"}) {
    CAPTURE(mode);
    auto client = start_with_root(root.path, mode);
    const std::string ok = (root.path / "ok.c").string();
    struct Case {
      std::string tool;
      json extra;  // arguments besides `path`
      json normal;
    };
    const Case cases[] = {
        {"code_parse", json::object(), {{"path", ok}}},
        {"code_outline", json::object(), {{"path", ok}}},
        {"code_query", {{"query", "(identifier) @id"}}, {{"path", ok}, {"query", "(identifier) @id"}}},
        {"search_text", {{"pattern", "x"}}, {{"pattern", "ok"}, {"path", root.path.string()}}},
        {"search_files", {{"pattern", "x"}}, {{"pattern", "ok"}, {"path", root.path.string()}}},
    };
    for (const auto& c : cases) {
      for (const std::string name : {"pipe.c", "pipe_link.c"}) {
        CAPTURE(c.tool);
        CAPTURE(name);
        json args = c.extra;
        args["path"] = (root.path / name).string();
        // Well within any deadline: an open of the FIFO would block until the call's deadline.
        json result = client->call_tool(c.tool, args, 5s);
        CHECK(result["isError"] == true);
        CHECK_MESSAGE(text_of(result).find("FIFO") != std::string::npos, text_of(result));
      }
      check_still_serves(*client, c.tool, c.normal);
    }
    // A FIFO met while walking is skipped, never opened.
    json all = client->call_tool("search_text", {{"pattern", "int"}, {"path", root.path.string()}}, 5s);
    CHECK(all["isError"] == false);
    CHECK(all["structuredContent"]["matches"].size() == 1);
    CHECK(all["structuredContent"]["stats"]["special_skipped"] == 1);
    // Again, from the listing the first search left.
    all = client->call_tool("search_text", {{"pattern", "int"}, {"path", root.path.string()}}, 5s);
    CHECK(all["structuredContent"]["stats"]["special_skipped"] == 1);
    check_still_serves(*client, "search_files", {{"pattern", "ok"}, {"path", root.path.string()}});
  }
}

TEST_CASE("a file replaced by a FIFO under the search index: answers stay prompt, the index is not stuck") {
  TempDir root;
  const int files = 20;
  for (int i = 0; i < files; ++i) root.write("t/f" + std::to_string(i) + ".txt", "alpha token " + std::to_string(i) + "\n");
  auto client = start_with_root(root.path);
  const json args = {{"pattern", "alpha"}, {"path", (root.path / "t").string()}, {"output", "files"}};
  auto replace_by_fifo = [&](const std::string& name) {
    fs::remove(root.path / "t" / name);
    REQUIRE(::mkfifo((root.path / "t" / name).c_str(), 0644) == 0);
  };
  // The first search queues every file for the indexer, which starts reading shortly after the
  // answer: f0.txt becomes a FIFO while it is queued.
  json first = client->call_tool("search_text", args, 5s);
  REQUIRE(first["isError"] == false);
  replace_by_fifo("f0.txt");
  auto settled = [&](int expected) {
    return eventually([&] {
      json r = client->call_tool("search_text", args, 5s);
      const json& index = r["structuredContent"]["stats"]["index"];
      return r["isError"] == false && index["pending_files"] == 0 && index["indexed_files"] == expected;
    });
  };
  CHECK_MESSAGE(settled(files - 1), "the indexer never finished after f0.txt became a FIFO");

  // Index built: another file becomes a FIFO, and a new file must still make it into the index.
  replace_by_fifo("f1.txt");
  json next = client->call_tool("search_text", args, 5s);
  CHECK(next["isError"] == false);
  CHECK(next["structuredContent"]["files"].size() == files - 2);
  root.write("t/new.txt", "alpha fresh\n");
  CHECK_MESSAGE(settled(files - 1), "the indexer never took new.txt after f1.txt became a FIFO");
  json last = client->call_tool("search_text", args, 5s);
  CHECK(last["structuredContent"]["files"].size() == files - 1);
  check_still_serves(*client, "search_text", args);
}
