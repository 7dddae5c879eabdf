// Specifies the history cache key (history_state.h): it changes whenever the answer of a history
// tool could, stays the same while nothing changed, and is withheld while the state is too fresh for
// file times to tell two states apart.
#include <chrono>
#include <thread>

#include "git_fixture.h"
#include "history_state.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;
using std::chrono::system_clock;

// Far enough ahead that every file the test just wrote counts as settled.
system_clock::time_point settled() { return system_clock::now() + std::chrono::seconds(10); }

std::string key_of(const GitRepo& repo, json extra = json::object()) {
  extra["repo_path"] = repo.path().string();
  auto key = git::history_state(extra, {fs::canonical(repo.root())}, settled());
  REQUIRE(key.has_value());
  return *key;
}

TEST_CASE("the history key is stable while nothing changes") {
  GitRepo repo;
  build_rich_history(repo);
  std::string key = key_of(repo);
  CHECK(key_of(repo) == key);
  // Reading with git does not change it, nor does editing or staging a file: history does not
  // depend on the work tree or the index.
  repo.git("log --oneline");
  repo.git("status");
  repo.write("README.md", "edited\n");
  CHECK(key_of(repo) == key);
  repo.git("add README.md");
  CHECK(key_of(repo) == key);
}

TEST_CASE("the history key changes after a commit, a new branch, a checkout, a tag and a pack-refs") {
  GitRepo repo;
  build_rich_history(repo);
  std::string key = key_of(repo);
  auto changed = [&](const char* what) {
    CAPTURE(what);
    std::string next = key_of(repo);
    CHECK(next != key);
    key = next;
  };
  repo.write("README.md", "edited\n");
  repo.commit("a new commit");
  changed("commit on the current branch");
  repo.git("branch another");
  changed("new branch");
  repo.git("checkout -q another");
  changed("checkout (HEAD moves to another branch at the same commit)");
  repo.git("checkout -q --detach HEAD");
  changed("detached HEAD");
  repo.git("checkout -q main");
  changed("back on main");
  repo.git("tag t1");
  changed("new tag");
  repo.git("pack-refs --all");
  changed("refs packed");
  repo.tick();
  repo.git("commit -q --allow-empty -m 'on top of packed refs'");
  changed("commit on a packed branch");
  repo.git("branch -f feature HEAD");
  changed("another branch moved");
  repo.git("config branch.main.remote origin");
  changed("config (upstreams)");
  repo.git("update-ref refs/remotes/origin/nested/deep HEAD");
  changed("a ref in a new nested directory");
  repo.git("update-ref refs/remotes/origin/nested/deep HEAD~1");
  changed("a ref in a nested directory moved");
}

TEST_CASE("the history key depends on the repository, found from any directory inside it") {
  GitRepo one, two;
  build_rich_history(one);
  build_rich_history(two);
  CHECK(key_of(one) != key_of(two));
  json from_subdir = {{"repo_path", (one.path() / "src").string()}};
  CHECK(git::history_state(from_subdir, {fs::canonical(one.root())}, settled()) == key_of(one));
}

TEST_CASE("no history key when the state is too fresh to tell apart, or the call reads more than refs") {
  GitRepo repo;
  build_rich_history(repo);
  json args = {{"repo_path", repo.path().string()}};
  std::vector<fs::path> roots = {fs::canonical(repo.root())};
  // Just written: every mtime is within the racy window of the real clock.
  CHECK(!git::history_state(args, roots, system_clock::now()).has_value());
  CHECK(git::history_state(args, roots, settled()).has_value());
  for (const char* revision : {"HEAD@{1}", "@{-1}", ":README.md", "main@{upstream}"}) {
    CAPTURE(revision);
    json with = args;
    with["revision"] = revision;
    CHECK(!git::history_state(with, roots, settled()).has_value());
  }
  CHECK(!git::history_state({{"repo_path", "/"}}, roots, settled()).has_value());
  fs::create_directories(repo.root() / "plain");
  CHECK(!git::history_state({{"repo_path", (repo.root() / "plain").string()}}, roots, settled()).has_value());
}

TEST_CASE("the tools' cache keys: history tools keyed, status never, diff only between revisions") {
  GitRepo repo;
  build_rich_history(repo);
  std::vector<fs::path> roots = {fs::canonical(repo.root())};
  json args = {{"repo_path", repo.path().string()}};
  // Wait out the racy window once so that the real clock gives keys.
  std::this_thread::sleep_for(git::kRacyWindow + std::chrono::milliseconds(100));
  for (const char* tool : {"git_log", "git_show", "git_blame", "git_branches"}) {
    CAPTURE(tool);
    REQUIRE(git_tool(tool).cache == CachePolicy::custom);
    CHECK(git_tool(tool).cache_key(args, roots).has_value());
  }
  CHECK(git_tool("git_status").cache == CachePolicy::never);
  const Tool& diff = git_tool("git_diff");
  CHECK(!diff.cache_key(args, roots).has_value());
  CHECK(!diff.cache_key({{"repo_path", repo.path().string()}, {"from", "HEAD~1"}}, roots).has_value());
  CHECK(diff.cache_key({{"repo_path", repo.path().string()}, {"from", "HEAD~1"}, {"to", "HEAD"}}, roots).has_value());

  // Right after a commit the key is withheld, so the new commit cannot be missed.
  repo.write("README.md", "edited\n");
  repo.commit("new");
  CHECK(!git_tool("git_log").cache_key(args, roots).has_value());
}

}  // namespace

#include "history_watch.h"

namespace {

TEST_CASE("the history watch reports a repository whose refs changed, and not one whose index did") {
  GitRepo repo;
  build_rich_history(repo);
  git::HistoryWatch watch;
  std::vector<std::filesystem::path> roots = {fs::canonical(repo.root())};
  json args = {{"repo_path", repo.path().string()}};
  auto tag = watch.tag(args, roots);
  REQUIRE(tag.has_value());
  CHECK(*tag == fs::canonical(repo.path() / ".git").string());
  CHECK(watch.watched() == 1);
  CHECK(watch.changed().empty());
  // The work tree and the index are nobody's history: the kernel queued their events before git
  // returned, and the watch passes over them.
  repo.write("README.md", "edited\n");
  repo.git("add README.md");
  repo.git("status");
  CHECK(watch.changed().empty());
  CHECK(watch.watched() == 1);
  // A new branch is: reported once, and the repository is watched afresh at its next tag.
  repo.git("branch watched-branch");
  CHECK(watch.changed() == std::vector<std::string>{*tag});
  CHECK(watch.changed().empty());
  CHECK(watch.watched() == 0);
  REQUIRE(watch.tag(args, roots) == tag);
  repo.write("README.md", "committed\n");
  repo.commit("moves the branch");
  CHECK(watch.changed() == std::vector<std::string>{*tag});
  // No repository: no tag, nothing watched.
  CHECK_FALSE(watch.tag({{"repo_path", "/"}}, roots).has_value());
}

}  // namespace
