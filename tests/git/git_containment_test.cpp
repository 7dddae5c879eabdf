// Specifies that the git tools never reach a repository outside the roots, whichever way the
// repository inside them points there: a .git file, commondir, alternates (nested too), a symbolic
// link in the git directory, a config include or core.worktree. Each escape is refused by the read
// tools and, with writes on, by a write tool, naming the directory, and the outside repository is
// left untouched. Linked worktrees and alternates that stay inside the roots keep working.
#include <sys/stat.h>

#include <chrono>
#include <thread>

#include "containment.h"
#include "git_fixture.h"
#include "history_state.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;

/// A repository outside the roots with one commit, and what its files look like, to prove that
/// nothing wrote to it.
struct Outside {
  GitRepo repo;
  Outside() {
    repo.write("secret.txt", "outside the roots\n");
    repo.commit("outside commit");
  }
  fs::path git_dir() const { return repo.path() / ".git"; }
  std::string fingerprint() const {
    int status = 0;
    std::string out = run_shell(repo.path(), "find . -print0 | sort -z | xargs -0 stat -c '%n %s %Y %i' && git --no-optional-locks status --porcelain", &status);
    REQUIRE(status == 0);
    return out;
  }
};

/// The roots' repository with one commit of its own.
struct Inside {
  GitRepo repo;
  Inside() {
    repo.write("file.txt", "inside\n");
    repo.commit("inside commit");
  }
  ToolContext context(bool writes = false) const { return context_for(repo.root(), writes); }
};

void sh(const fs::path& dir, const std::string& command) {
  int status = 0;
  run_shell(dir, command, &status);
  REQUIRE_MESSAGE(status == 0, command << " failed with " << status);
}

/// Every read tool and one write tool (with writes on) refuse `repo_path`, naming `directory` and
/// `via`; the outside repository is untouched.
/// With `no_key`, the history cache key is withheld too (where computing it would have to look
/// outside the roots; elsewhere it only stats files inside them).
void refused_everywhere(const Inside& inside, const Outside& outside, const fs::path& repo_path,
                        const std::string& directory, const std::string& via, bool no_key = false) {
  std::string before = outside.fingerprint();
  json args = {{"repo_path", repo_path.string()}};
  auto expect_refused = [&](const std::string& tool, json arguments, bool writes) {
    CAPTURE(tool);
    std::string error = error_of(tool, arguments, inside.context(writes));
    CHECK_MESSAGE(contains(error, "is outside the allowed roots"), error);
    CHECK_MESSAGE(contains(error, "'" + directory), error);
    CHECK_MESSAGE(contains(error, via), error);
  };
  expect_refused("git_status", args, false);
  expect_refused("git_log", args, false);
  json show = args;
  show["revision"] = "HEAD";
  expect_refused("git_show", show, false);
  expect_refused("git_branches", args, false);
  json commit = args;
  commit["message"] = "written through the escape";
  expect_refused("git_commit", commit, true);
  json branch = args;
  branch["name"] = "escaped";
  expect_refused("git_create_branch", branch, true);
  CHECK(outside.fingerprint() == before);
  if (no_key)
    CHECK_FALSE(git::history_state(args, {fs::canonical(inside.repo.root())},
                                   std::chrono::system_clock::now() + std::chrono::seconds(10)));
}

TEST_CASE("a .git file whose gitdir points outside the roots is refused") {
  Inside inside;
  Outside outside;
  fs::path work = inside.repo.root() / "work";
  fs::create_directories(work);
  std::ofstream(work / ".git") << "gitdir: " << outside.git_dir().string() << "\n";
  refused_everywhere(inside, outside, work, outside.git_dir().string(), "the .git file '" + (work / ".git").string() + "'", true);
}

TEST_CASE("a linked worktree whose commondir points outside the roots is refused") {
  Inside inside;
  Outside outside;
  // A worktree of the outside repository, with its private git directory copied into the roots.
  outside.repo.git("worktree add -q " + shell_quote((outside.repo.root() / "linked").string()));
  fs::path private_dir = inside.repo.root() / "private";
  sh(inside.repo.root(), "cp -r " + shell_quote((outside.git_dir() / "worktrees" / "linked").string()) + " private");
  std::ofstream(private_dir / "commondir") << outside.git_dir().string() << "\n";
  fs::path work = inside.repo.root() / "work";
  fs::create_directories(work);
  std::ofstream(work / ".git") << "gitdir: " << private_dir.string() << "\n";
  refused_everywhere(inside, outside, work, outside.git_dir().string(), "commondir", true);
}

TEST_CASE("alternates pointing outside the roots are refused") {
  Inside inside;
  Outside outside;
  std::ofstream(inside.repo.path() / ".git" / "objects" / "info" / "alternates")
      << "# borrowed objects\n" << (outside.git_dir() / "objects").string() << "\n";
  refused_everywhere(inside, outside, inside.repo.path(), (outside.git_dir() / "objects").string(),
                     "objects/info/alternates of '" + (inside.repo.path() / ".git" / "objects").string() + "'");
}

TEST_CASE("nested alternates that lead outside the roots are refused") {
  Inside inside;
  Outside outside;
  // inside -> middle (inside the roots) -> outside.
  fs::path middle_objects = inside.repo.root() / "middle.git";
  sh(inside.repo.root(), "git init -q --bare middle.git");
  std::ofstream(middle_objects / "objects" / "info" / "alternates") << (outside.git_dir() / "objects").string() << "\n";
  std::ofstream(inside.repo.path() / ".git" / "objects" / "info" / "alternates")
      << (middle_objects / "objects").string() << "\n";
  refused_everywhere(inside, outside, inside.repo.path(), (outside.git_dir() / "objects").string(),
                     "objects/info/alternates of '" + (middle_objects / "objects").string() + "'");
}

TEST_CASE("a symlinked objects directory outside the roots is refused") {
  Inside inside;
  Outside outside;
  fs::path objects = inside.repo.path() / ".git" / "objects";
  fs::remove_all(objects);
  fs::create_directory_symlink(outside.git_dir() / "objects", objects);
  refused_everywhere(inside, outside, inside.repo.path(), (outside.git_dir() / "objects").string(),
                     "the symbolic link '" + objects.string() + "'");
}

TEST_CASE("a symlinked refs directory outside the roots is refused") {
  Inside inside;
  Outside outside;
  fs::path refs = inside.repo.path() / ".git" / "refs";
  fs::remove_all(refs);
  fs::create_directory_symlink(outside.git_dir() / "refs", refs);
  refused_everywhere(inside, outside, inside.repo.path(), (outside.git_dir() / "refs").string(),
                     "the symbolic link '" + refs.string() + "'", true);
}

TEST_CASE("a symlinked loose ref or pack file outside the roots is refused") {
  Inside inside;
  Outside outside;
  fs::path ref = inside.repo.path() / ".git" / "refs" / "heads" / "stolen";
  fs::create_symlink(outside.git_dir() / "refs" / "heads" / "main", ref);
  refused_everywhere(inside, outside, inside.repo.path(), (outside.git_dir() / "refs" / "heads" / "main").string(),
                     "the symbolic link '" + ref.string() + "'", true);
}

TEST_CASE("a config include.path outside the roots is refused") {
  Inside inside;
  Outside outside;
  fs::path included = outside.repo.root() / "included.cfg";
  std::ofstream(included) << "[user]\n\tname = Outsider\n";
  std::ofstream(inside.repo.path() / ".git" / "config", std::ios::app)
      << "[include]\n\tpath = \"" << included.string() << "\" ; a comment\n";
  refused_everywhere(inside, outside, inside.repo.path(), included.string(), "include.path in '");

  SUBCASE("also after a byte order mark, in mixed case, without blanks") {
    Inside second;
    std::ofstream(second.repo.path() / ".git" / "config", std::ios::binary | std::ios::trunc)
        << "\xEF\xBB\xBF[InClude]PATH=" << included.string() << "\n[core]\n\tbare = false\n";
    refused_everywhere(second, outside, second.repo.path(), included.string(), "include.path in '");
  }
  SUBCASE("also through an includeIf, and through a file included from inside the roots") {
    Inside second;
    fs::path hop = second.repo.root() / "hop.cfg";
    std::ofstream(hop) << "[includeIf \"onbranch:main\"]\n  path = " << included.string() << "\n";
    std::ofstream(second.repo.path() / ".git" / "config", std::ios::app) << "[include]\n  path = ../../hop.cfg\n";
    refused_everywhere(second, outside, second.repo.path(), included.string(), "includeif.path in '" + hop.string() + "'");
  }
}

TEST_CASE("core.worktree outside the roots is refused") {
  Inside inside;
  Outside outside;
  inside.repo.git("config core.worktree " + shell_quote(outside.repo.path().string()));
  refused_everywhere(inside, outside, inside.repo.path(), outside.repo.path().string(), "core.worktree in '");
}

TEST_CASE("a .git symlink and a symlinked repo_path component are refused") {
  Inside inside;
  Outside outside;
  fs::path work = inside.repo.root() / "work";
  fs::create_directories(work);
  fs::create_directory_symlink(outside.git_dir(), work / ".git");
  refused_everywhere(inside, outside, work, outside.git_dir().string(), "the symbolic link '", true);
}

TEST_CASE("a linked worktree and alternates inside the roots still work, reads and writes") {
  Inside inside;
  inside.repo.git("worktree add -q ../linked");
  fs::path linked = inside.repo.root() / "linked";
  json status = call("git_status", {{"repo_path", linked.string()}}, inside.context());
  CHECK(status["clean"] == true);
  json log = call("git_log", {{"repo_path", linked.string()}}, inside.context());
  REQUIRE(log["commits"].size() == 1);
  CHECK(log["commits"][0]["summary"] == "inside commit");
  std::ofstream(linked / "new.txt") << "new\n";
  call("git_add", {{"repo_path", linked.string()}, {"paths", {"new.txt"}}}, inside.context(true));
  json commit = call("git_commit", {{"repo_path", linked.string()}, {"message", "in the linked worktree"}},
                     inside.context(true));
  CHECK(commit["id"].is_string());

  // A clone that borrows the objects of the repository above (git clone --shared).
  sh(inside.repo.root(), "git clone -q --shared repo shared");
  fs::path shared = inside.repo.root() / "shared";
  REQUIRE(fs::exists(shared / ".git" / "objects" / "info" / "alternates"));
  json shared_log = call("git_log", {{"repo_path", shared.string()}}, inside.context());
  REQUIRE(shared_log["commits"].size() == 1);

  // A symbolic link that stays inside the roots is fine too.
  fs::path objects = shared / ".git" / "objects";
  fs::rename(objects, inside.repo.root() / "moved-objects");
  fs::create_directory_symlink(inside.repo.root() / "moved-objects", objects);
  CHECK(call("git_log", {{"repo_path", shared.string()}}, inside.context())["commits"].size() == 1);
}

TEST_CASE("a repository checked once is checked again when its layout changes") {
  Inside inside;
  Outside outside;
  // Let every file settle so the check is remembered, then reuse it.
  std::this_thread::sleep_for(git::kRacyWindow + std::chrono::milliseconds(200));
  git::forget_containment_checks();
  json args = {{"repo_path", inside.repo.path().string()}};
  call("git_log", args, inside.context());
  CHECK(git::containment_checks_remembered() == 1);
  call("git_log", args, inside.context());

  // The pooled, remembered repository gets a refs link out of the roots.
  fs::path refs = inside.repo.path() / ".git" / "refs";
  fs::rename(refs, inside.repo.root() / "old-refs");
  fs::create_directory_symlink(outside.git_dir() / "refs", refs);
  std::string error = error_of("git_log", args, inside.context());
  CHECK_MESSAGE(contains(error, "'" + (outside.git_dir() / "refs").string() + "'"), error);

  // And a new link deep inside objects/, where only the fan-out directory's ctime changes.
  fs::remove(refs);
  fs::rename(inside.repo.root() / "old-refs", refs);
  std::this_thread::sleep_for(git::kRacyWindow + std::chrono::milliseconds(200));
  call("git_log", args, inside.context());
  fs::path fanout = inside.repo.path() / ".git" / "objects" / "ab";
  fs::create_directories(fanout);
  std::this_thread::sleep_for(git::kRacyWindow + std::chrono::milliseconds(200));
  call("git_log", args, inside.context());
  REQUIRE(git::containment_checks_remembered() >= 1);
  fs::create_symlink(outside.git_dir() / "HEAD", fanout / "cdef");
  error = error_of("git_log", args, inside.context());
  CHECK_MESSAGE(contains(error, "the symbolic link '" + (fanout / "cdef").string() + "'"), error);
}

}  // namespace

namespace {

TEST_CASE("a submodule whose .git leads outside the roots is refused by the work-tree tools") {
  Inside inside;
  Outside outside;
  // A gitlink in the index and a checked-out submodule whose .git file points outside.
  inside.repo.git("update-index --add --cacheinfo 160000," + outside.repo.head() + ",sub");
  fs::create_directories(inside.repo.path() / "sub");
  std::ofstream(inside.repo.path() / "sub" / ".git") << "gitdir: " << outside.git_dir().string() << "\n";
  std::string before = outside.fingerprint();
  json args = {{"repo_path", inside.repo.path().string()}};
  for (const char* tool : {"git_status", "git_diff"}) {
    CAPTURE(tool);
    std::string error = error_of(tool, args, inside.context());
    CHECK_MESSAGE(contains(error, "submodule 'sub'"), error);
    CHECK_MESSAGE(contains(error, "'" + outside.git_dir().string() + "'"), error);
  }
  std::string error = error_of("git_add", {{"repo_path", inside.repo.path().string()}, {"paths", {"sub"}}},
                               inside.context(true));
  CHECK_MESSAGE(contains(error, "submodule 'sub'"), error);
  CHECK(outside.fingerprint() == before);

  // A submodule whose repository is inside the roots is fine.
  Inside other;
  fs::remove_all(inside.repo.path() / "sub");
  inside.repo.git("rm -q --cached sub");
  inside.repo.git("-c protocol.file.allow=always submodule add -q " + shell_quote(other.repo.path().string()) +
                  " inner");
  json status = call("git_status", args, inside.context());
  CHECK(status["staged"].size() >= 1);
}

}  // namespace

namespace {

TEST_CASE("a .gitignore symlinked outside the roots is refused by git_status") {
  Inside inside;
  Outside outside;
  fs::create_directories(inside.repo.path() / "sub");
  std::ofstream(inside.repo.path() / "sub" / "untracked.txt") << "u\n";
  fs::create_symlink(outside.repo.path() / "secret.txt", inside.repo.path() / "sub" / ".gitignore");
  std::string error = error_of("git_status", {{"repo_path", inside.repo.path().string()}}, inside.context());
  CHECK_MESSAGE(contains(error, "outside the allowed roots"), error);
  CHECK_MESSAGE(contains(error, (outside.repo.path() / "secret.txt").string()), error);
}

}  // namespace

namespace {

TEST_CASE("a FIFO in the git directory or as an included config is refused at once, not waited on") {
  Inside inside;
  fs::path fifo = inside.repo.path() / ".git" / "refs" / "heads" / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::string error = error_of("git_log", {{"repo_path", inside.repo.path().string()}}, inside.context());
  CHECK_MESSAGE(contains(error, "is not a regular file or directory"), error);
  CHECK_MESSAGE(contains(error, fifo.string()), error);
  fs::remove(fifo);

  fs::path included = inside.repo.root() / "included.fifo";
  REQUIRE(::mkfifo(included.c_str(), 0600) == 0);
  std::ofstream(inside.repo.path() / ".git" / "config", std::ios::app) << "[include]\n\tpath = " << included.string() << "\n";
  error = error_of("git_log", {{"repo_path", inside.repo.path().string()}}, inside.context());
  CHECK_MESSAGE(contains(error, "is not a regular file or directory"), error);
}

}  // namespace
