// Specifies the read-only git tools against real repositories, with the git CLI as the oracle.
#include <algorithm>
#include <atomic>
#include <thread>

#include "git_fixture.h"
#include "repository.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;

// --------------------------------------------------------------------------------------- oracles

/// git status --porcelain=v1 -z as a set of "XY path" entries.
std::set<std::string> porcelain_status(const GitRepo& repo) {
  std::vector<std::string> fields = split(repo.git("status --porcelain=v1 -z"), '\0');
  std::set<std::string> out;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].empty()) continue;
    out.insert(fields[i]);
    if (fields[i][0] == 'R' || fields[i][0] == 'C') ++i;  // the old path follows
  }
  return out;
}

char status_code(const std::string& status) {
  if (status == "added") return 'A';
  if (status == "deleted") return 'D';
  if (status == "renamed") return 'R';
  if (status == "typechange") return 'T';
  return 'M';
}

/// git_status's answer in the same form.
std::set<std::string> tool_status(const json& status) {
  std::map<std::string, std::string> codes;
  for (const auto& e : status["staged"]) {
    auto& code = codes.try_emplace(e["path"].get<std::string>(), "  ").first->second;
    code[0] = status_code(e["status"]);
  }
  for (const auto& e : status["unstaged"]) {
    auto& code = codes.try_emplace(e["path"].get<std::string>(), "  ").first->second;
    code[1] = status_code(e["status"]);
  }
  std::set<std::string> out;
  for (const auto& [path, code] : codes) out.insert(code + " " + path);
  for (const auto& path : status["untracked"]) out.insert("?? " + path.get<std::string>());
  for (const auto& e : status["conflicted"]) out.insert(e["code"].get<std::string>() + " " + e["path"].get<std::string>());
  return out;
}

/// git diff --numstat -z <args> as "added\tdeleted\tpath" lines (renames as "old => new").
std::multiset<std::string> git_numstat(const GitRepo& repo, const std::string& args) {
  std::vector<std::string> fields = split(repo.git("-c diff.renames=true diff --numstat -z " + args), '\0');
  std::multiset<std::string> out;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].empty()) continue;
    std::string entry = fields[i];
    if (entry.back() == '\t') {  // a rename: "a\td\t" then old and new paths
      entry += fields[i + 1] + " => " + fields[i + 2];
      i += 2;
    }
    out.insert(entry);
  }
  return out;
}

std::multiset<std::string> tool_numstat(const json& files) {
  std::multiset<std::string> out;
  for (const auto& f : files) {
    std::string counts = f.value("binary", false) ? "-\t-\t"
                                                  : std::to_string(f["additions"].get<int>()) + "\t" +
                                                        std::to_string(f["deletions"].get<int>()) + "\t";
    std::string path = f.contains("old_path") ? f["old_path"].get<std::string>() + " => " + f["path"].get<std::string>()
                                              : f["path"].get<std::string>();
    out.insert(counts + path);
  }
  return out;
}

/// git log's commits as "id\0author\0date\0summary".
std::vector<std::string> git_log_lines(const GitRepo& repo, const std::string& args) {
  std::vector<std::string> lines = split(repo.git("log --format=%H%x00%an%x00%aI%x00%s%x01 " + args), '\x01');
  std::vector<std::string> out;
  for (auto& line : lines) {
    while (!line.empty() && line.front() == '\n') line.erase(0, 1);
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

std::vector<std::string> tool_log_lines(const json& log) {
  std::vector<std::string> out;
  for (const auto& c : log["commits"]) {
    std::string line = c["id"].get<std::string>() + '\0' + c["author"].get<std::string>() + '\0' +
                       c["date"].get<std::string>() + '\0' + c["summary"].get<std::string>();
    out.push_back(line);
  }
  return out;
}

/// git blame --porcelain: the commit of each final line, in order.
std::vector<std::string> git_blame_commits(const GitRepo& repo, const std::string& args) {
  std::vector<std::string> out;
  std::istringstream in(repo.git("blame --porcelain " + args));
  std::string line;
  std::string current;
  while (std::getline(in, line)) {
    if (line.size() > 41 && line[40] == ' ' && line.find_first_not_of("0123456789abcdef") == 40) {
      current = line.substr(0, 40);
    } else if (!line.empty() && line[0] == '\t') {
      out.push_back(current);
    }
  }
  return out;
}

// --------------------------------------------------------------------------------------- status

TEST_CASE("git_status matches git status --porcelain for staged, unstaged, untracked and renamed files") {
  GitRepo repo;
  build_rich_history(repo);
  repo.write("README.md", "changed in the work tree\n");          // unstaged modification
  repo.write("src/main.c", "staged\n");
  repo.git("add src/main.c");                                      // staged modification
  repo.write("src/main.c", "staged, then changed again\n");        // ... and unstaged on top
  repo.git("rm -q --cached notes.txt");                            // staged deletion (file stays: untracked)
  repo.git("mv src/helpers.c src/renamed.c");                      // staged rename
  fs::remove(repo.path() / "data.bin");                            // unstaged deletion
  repo.write("new dir/a.txt", "untracked\n");                      // untracked directory
  repo.write("\xc3\xa9t\xc3\xa9.txt", "untracked unicode\n");      // untracked unicode name
  repo.write("added.txt", "new\n");
  repo.git("add added.txt");                                       // staged addition

  json status = call("git_status", repo_args(repo), context_for(repo.root()));
  CHECK(tool_status(status) == porcelain_status(repo));
  CHECK(status["branch"] == "main");
  CHECK(status["head"] == repo.head());
  CHECK(status["detached"] == false);
  CHECK(status["unborn"] == false);
  CHECK(status["state"] == "none");
  CHECK(status["clean"] == false);
  CHECK(status["truncated"] == false);
  bool rename_seen = false;
  for (const auto& e : status["staged"])
    if (e["status"] == "renamed") {
      rename_seen = true;
      CHECK(e["old_path"] == "src/helpers.c");
      CHECK(e["path"] == "src/renamed.c");
    }
  CHECK(rename_seen);
  CHECK(status["counts"]["untracked"] == status["untracked"].size());
}

TEST_CASE("git_status lists untracked and ignored files exactly as git status does") {
  GitRepo repo;
  repo.write(".gitignore", "*.log\n!keep.log\nbuild/\nvendor/cache/\n");
  repo.write("src/a.c", "a\n");
  repo.write("vendor/cache/tracked.txt", "tracked inside an ignored directory\n");
  repo.write("old/dir/file.txt", "becomes a file\n");
  repo.git("add -f vendor/cache/tracked.txt");
  repo.commit("base");
  repo.write("debug.log", "ignored\n");
  repo.write("keep.log", "not ignored: negated rule\n");
  repo.write("build/out.o", "ignored directory\n");
  repo.write("src/new.c", "untracked in a tracked directory\n");
  repo.write("src/deep/er/x.c", "a new directory inside a tracked one\n");
  repo.write("fresh/one/two.txt", "a new tree: listed once as fresh/\n");
  repo.write("only-ignored/a.log", "a directory of ignored files is not listed\n");
  fs::create_directories(repo.path() / "empty/dir");
  repo.write("vendor/cache/new.txt", "untracked but inside an ignored directory\n");
  repo.write("nested/file.txt", "x\n");
  int rc = 0;
  run_shell(repo.path() / "nested", "git -c init.defaultBranch=main init -q", &rc);
  REQUIRE(rc == 0);
  fs::remove_all(repo.path() / "old/dir");
  repo.write("old/dir", "a file where a tracked directory was\n");
  fs::create_symlink("src", repo.path() / "link");
  json status = call("git_status", repo_args(repo), context_for(repo.root()));
  CHECK(tool_status(status) == porcelain_status(repo));
  CHECK(status["untracked"].size() == status["counts"]["untracked"]);
}

TEST_CASE("git_status of a clean repository is clean, and paths narrow it") {
  GitRepo repo;
  build_rich_history(repo);
  json clean = call("git_status", repo_args(repo), context_for(repo.root()));
  CHECK(clean["clean"] == true);
  CHECK(clean["staged"].empty());

  repo.write("README.md", "x\n");
  repo.write("src/main.c", "y\n");
  json narrowed = call("git_status", repo_args(repo, {{"paths", {"src"}}}), context_for(repo.root()));
  REQUIRE(narrowed["unstaged"].size() == 1);
  CHECK(narrowed["unstaged"][0]["path"] == "src/main.c");
}

TEST_CASE("git_status reports a conflicted merge as git does") {
  GitRepo repo;
  repo.write("a.txt", "base\n");
  repo.write("b.txt", "base\n");
  repo.commit("base");
  repo.git("checkout -q -b other");
  repo.write("a.txt", "theirs\n");
  repo.write("c.txt", "added by them\n");
  fs::remove(repo.path() / "b.txt");
  repo.commit("other side");
  repo.git("checkout -q main");
  repo.write("a.txt", "ours\n");
  repo.write("b.txt", "modified by us\n");
  repo.write("c.txt", "added by us\n");
  repo.commit("our side");
  repo.tick();
  CHECK(repo.git_status("merge other") != 0);

  json status = call("git_status", repo_args(repo), context_for(repo.root()));
  CHECK(tool_status(status) == porcelain_status(repo));
  CHECK(status["state"] == "merge");
  std::map<std::string, std::string> kinds;
  for (const auto& e : status["conflicted"]) kinds[e["path"]] = e["kind"];
  CHECK(kinds["a.txt"] == "both modified");
  CHECK(kinds["b.txt"] == "deleted by them");
  CHECK(kinds["c.txt"] == "both added");
}

TEST_CASE("git_status in a repository without commits") {
  GitRepo repo;
  repo.write("first.txt", "hello\n");
  json status = call("git_status", repo_args(repo), context_for(repo.root()));
  CHECK(status["unborn"] == true);
  CHECK(status["branch"] == "main");
  CHECK(status["head"].is_null());
  CHECK(tool_status(status) == porcelain_status(repo));
  repo.git("add first.txt");
  status = call("git_status", repo_args(repo), context_for(repo.root()));
  CHECK(tool_status(status) == porcelain_status(repo));
}

TEST_CASE("git_status reports the upstream and how far ahead and behind the branch is") {
  GitRepo upstream;
  upstream.write("a.txt", "1\n");
  upstream.commit("one");
  upstream.write("a.txt", "2\n");
  upstream.commit("two");
  GitRepo clone(false);
  clone.clone_from(upstream);
  clone.tick();
  clone.git("reset -q --hard HEAD~1");
  clone.write("b.txt", "local\n");
  clone.commit("local one");
  clone.write("b.txt", "local 2\n");
  clone.commit("local two");

  json status = call("git_status", repo_args(clone), context_for(clone.root()));
  CHECK(status["upstream"] == "origin/main");
  std::vector<std::string> counts = split(GitRepo::trim(clone.git("rev-list --left-right --count main...origin/main")), '\t');
  REQUIRE(counts.size() == 2);
  CHECK(status["ahead"] == std::stoi(counts[0]));
  CHECK(status["behind"] == std::stoi(counts[1]));
  CHECK(status["ahead"] == 2);
  CHECK(status["behind"] == 1);
}

// ------------------------------------------------------------------------------------------ log

TEST_CASE("git_log lists the same commits as git log, in the same order") {
  GitRepo repo;
  build_rich_history(repo);
  json log = call("git_log", repo_args(repo), context_for(repo.root()));
  CHECK(tool_log_lines(log) == git_log_lines(repo, ""));
  CHECK(log["truncated"] == false);
  // The merge has two parents, the root none.
  CHECK(log["commits"].back()["parents"].empty());
  bool merge_seen = false;
  for (const auto& c : log["commits"]) merge_seen = merge_seen || c["parents"].size() == 2;
  CHECK(merge_seen);
}

TEST_CASE("git_log filters by path with git's history simplification") {
  GitRepo repo;
  build_rich_history(repo);
  for (const std::string path : {"src/main.c", "src", "README.md", "data.bin", "src/util.c", "*.c", "src/*.c", "docs/*", "no/such/path"}) {
    CAPTURE(path);
    json log = call("git_log", repo_args(repo, {{"paths", {path}}}), context_for(repo.root()));
    CHECK(tool_log_lines(log) == git_log_lines(repo, "-- " + shell_quote(path)));
  }
  json both = call("git_log", repo_args(repo, {{"paths", {"README.md", "data.bin"}}}), context_for(repo.root()));
  CHECK(tool_log_lines(both) == git_log_lines(repo, "-- README.md data.bin"));
}

TEST_CASE("git_log from a subdirectory takes paths relative to it") {
  GitRepo repo;
  build_rich_history(repo);
  json args = {{"repo_path", (repo.path() / "src").string()}, {"paths", {"main.c"}}};
  json log = call("git_log", args, context_for(repo.root()));
  CHECK(tool_log_lines(log) == git_log_lines(repo, "-- src/main.c"));
  CHECK(error_of("git_log", {{"repo_path", (repo.path() / "src").string()}, {"paths", {"../../x"}}},
                 context_for(repo.root()))
            .find("outside the repository") != std::string::npos);
}

TEST_CASE("git_log honours max_count, ranges, author and dates like git log") {
  GitRepo repo;
  build_rich_history(repo);
  repo.tick();
  repo.write("other.txt", "by someone else\n");
  repo.git("add other.txt");
  repo.git("-c user.name='Grace Hopper' -c user.email=grace@example.com commit -q -m 'Grace was here' "
           "--author='Grace Hopper <grace@example.com>'");
  auto ctx = context_for(repo.root());

  CHECK(tool_log_lines(call("git_log", repo_args(repo, {{"max_count", 3}}), ctx)) == git_log_lines(repo, "-n 3"));
  CHECK(tool_log_lines(call("git_log", repo_args(repo, {{"revision", "v1.0..HEAD"}}), ctx)) ==
        git_log_lines(repo, "v1.0..HEAD"));
  CHECK(tool_log_lines(call("git_log", repo_args(repo, {{"revision", "feature"}}), ctx)) ==
        git_log_lines(repo, "feature"));
  CHECK(tool_log_lines(call("git_log", repo_args(repo, {{"revision", "main..feature"}}), ctx)) ==
        git_log_lines(repo, "main..feature"));
  CHECK(tool_log_lines(call("git_log", repo_args(repo, {{"revision", "HEAD~2"}}), ctx)) ==
        git_log_lines(repo, "HEAD~2"));

  json grace = call("git_log", repo_args(repo, {{"author", "GRACE"}}), ctx);
  CHECK(tool_log_lines(grace) == git_log_lines(repo, "--author=Grace"));
  REQUIRE(grace["commits"].size() == 1);
  CHECK(grace["commits"][0]["author_email"] == "grace@example.com");

  // Commits are an hour apart from 2024-01-01T00:00Z.
  json window = call("git_log", repo_args(repo, {{"since", "2024-01-01T02:00:00Z"}, {"until", "2024-01-01T05:00:00+00:00"}}), ctx);
  CHECK(tool_log_lines(window) ==
        git_log_lines(repo, "--since=2024-01-01T02:00:00Z --until=2024-01-01T05:00:00Z"));
  CHECK(!window["commits"].empty());
  json day = call("git_log", repo_args(repo, {{"until", "2024-01-01"}}), ctx);
  CHECK(day["commits"].size() == git_log_lines(repo, "").size());  // a date alone includes that whole day
  CHECK(call("git_log", repo_args(repo, {{"since", "2024-01-02"}}), ctx)["commits"].empty());
  CHECK(contains(error_of("git_log", repo_args(repo, {{"since", "yesterday"}}), ctx), "ISO 8601"));
  CHECK(contains(error_of("git_log", repo_args(repo, {{"revision", "a...b"}}), ctx), "A..B"));
}

TEST_CASE("git_log include_files matches git log --numstat") {
  GitRepo repo;
  build_rich_history(repo);
  json log = call("git_log", repo_args(repo, {{"include_files", true}}), context_for(repo.root()));
  for (const auto& c : log["commits"]) {
    std::string id = c["id"];
    CAPTURE(id);
    REQUIRE(c.contains("files"));
    if (c["parents"].size() > 1) {
      CHECK(c["files"].empty());
      continue;
    }
    std::string range = c["parents"].empty() ? "$(git hash-object -t tree /dev/null) " + id : id + "^ " + id;
    CHECK(tool_numstat(c["files"]) == git_numstat(repo, range));
  }
}

TEST_CASE("git_log of a repository without commits is empty") {
  GitRepo repo;
  json log = call("git_log", repo_args(repo), context_for(repo.root()));
  CHECK(log["commits"].empty());
  CHECK(contains(error_of("git_log", repo_args(repo, {{"revision", "HEAD"}}), context_for(repo.root())),
                 "no commits yet"));
}

TEST_CASE("git_log stops at max_bytes and says so") {
  GitRepo repo;
  build_rich_history(repo);
  json log = call("git_log", repo_args(repo, {{"max_bytes", 1024}}), context_for(repo.root()));
  CHECK(log["truncated"] == true);
  CHECK(!log["commits"].empty());
  CHECK(log["commits"].size() < git_log_lines(repo, "").size());
  CHECK(log.dump().size() < 2048);
}

// ----------------------------------------------------------------------------------------- diff

TEST_CASE("git_diff of the work tree matches git diff, text and numstat") {
  GitRepo repo;
  build_rich_history(repo);
  repo.write("README.md", "# Demo\n\nA bigger project.\n\nBuild with make.\nTest with make test.\n");
  repo.write("src/main.c", "int main(void) { return 1; }\n");
  repo.write("data.bin", std::string("\x00\x09\x02", 3));
  fs::remove(repo.path() / "notes.txt");
  repo.write("untracked.txt", "not in the diff\n");

  json diff = call("git_diff", repo_args(repo), context_for(repo.root()));
  CHECK(tool_numstat(diff["files"]) == git_numstat(repo, ""));
  CHECK(diff["diff"] == repo.git("diff"));
  CHECK(diff["from"] == "index");
  CHECK(diff["to"] == "worktree");
  CHECK(diff["truncated"] == false);
  CHECK(diff["files_changed"] == 4);
  int additions = 0;
  for (const auto& f : diff["files"]) additions += f.value("additions", 0);
  CHECK(diff["additions"] == additions);

  json narrowed = call("git_diff", repo_args(repo, {{"paths", {"README.md"}}, {"context_lines", 0}}), context_for(repo.root()));
  CHECK(narrowed["diff"] == repo.git("diff -U0 -- README.md"));
}

TEST_CASE("git_diff of the work tree finds same-size edits made right after staging, and ignores touched files") {
  GitRepo repo;
  repo.write("a.txt", "aaaa\n");
  repo.write("b.txt", "bbbb\n");
  repo.write("dir/c.txt", "cccc\n");
  repo.commit("base");
  auto ctx = context_for(repo.root());
  // Same size, same second as the index write: only a content check can tell.
  repo.write("a.txt", "AAAA\n");
  repo.git("add a.txt");
  repo.write("a.txt", "zzzz\n");
  // A touched but unchanged file is no change.
  fs::last_write_time(repo.path() / "b.txt", fs::last_write_time(repo.path() / "b.txt") + std::chrono::seconds(5));
  json diff = call("git_diff", repo_args(repo), ctx);
  CHECK(diff["diff"] == repo.git("diff"));
  REQUIRE(diff["files"].size() == 1);
  CHECK(diff["files"][0]["path"] == "a.txt");
  // Deleted files and files under a wildcard pathspec.
  fs::remove(repo.path() / "dir/c.txt");
  CHECK(call("git_diff", repo_args(repo, {{"paths", {"dir/*"}}}), ctx)["diff"] == repo.git("diff -- 'dir/*'"));
  CHECK(call("git_diff", repo_args(repo, {{"from", "HEAD"}}), ctx)["diff"] == repo.git("diff HEAD"));
  CHECK(call("git_diff", repo_args(repo), ctx)["diff"] == repo.git("diff"));
}

TEST_CASE("git_diff of a large work tree (the stat check on several threads) matches git diff") {
  GitRepo repo;
  std::string stream = "commit refs/heads/main\ncommitter Ada Lovelace <ada@example.com> 1704067200 +0000\ndata 5\nlarge\n";
  for (int i = 0; i < 4000; ++i) {
    std::string content = "file " + std::to_string(i) + "\n";
    stream += "M 100644 inline d" + std::to_string(i % 40) + "/f" + std::to_string(i) + ".txt\ndata " +
              std::to_string(content.size()) + "\n" + content + "\n";
  }
  std::ofstream(repo.root() / "stream", std::ios::binary) << stream;
  repo.git("fast-import --quiet < " + shell_quote((repo.root() / "stream").string()));
  repo.git("reset -q --hard main");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // edits land after the index was written
  for (int i : {0, 1, 999, 1000, 2001, 3999}) repo.write("d" + std::to_string(i % 40) + "/f" + std::to_string(i) + ".txt", "edited\n");
  fs::remove(repo.path() / "d7/f1207.txt");
  json diff = call("git_diff", repo_args(repo), context_for(repo.root()));
  CHECK(diff["diff"] == repo.git("diff"));
  CHECK(diff["files_changed"] == 7);
}

TEST_CASE("git_diff staged matches git diff --cached, including a staged rename") {
  GitRepo repo;
  build_rich_history(repo);
  repo.write("README.md", "# Demo\n\nStaged.\n");
  repo.git("mv src/helpers.c src/math.c");
  repo.write("new.txt", "new file\n");
  repo.git("add README.md new.txt");
  repo.write("README.md", "unstaged on top\n");

  json diff = call("git_diff", repo_args(repo, {{"staged", true}}), context_for(repo.root()));
  CHECK(tool_numstat(diff["files"]) == git_numstat(repo, "--cached"));
  CHECK(diff["diff"] == repo.git("diff --cached"));
  CHECK(diff["to"] == "index");

  json against = call("git_diff", repo_args(repo, {{"staged", true}, {"from", "v1.0"}}), context_for(repo.root()));
  CHECK(tool_numstat(against["files"]) == git_numstat(repo, "--cached v1.0"));
}

TEST_CASE("git_diff between revisions matches git diff A B, with renames and binary files") {
  GitRepo repo;
  build_rich_history(repo);
  auto ctx = context_for(repo.root());
  for (auto [from, to] : {std::pair{"v1.0", "HEAD"}, std::pair{"HEAD~1", "HEAD"}, std::pair{"HEAD", "v1.0"},
                          std::pair{"feature", "main"}}) {
    const char *old_side = from, *new_side = to;  // clang 14 cannot capture a structured binding in CAPTURE
    CAPTURE(old_side);
    CAPTURE(new_side);
    json diff = call("git_diff", repo_args(repo, {{"from", from}, {"to", to}}), ctx);
    CHECK(tool_numstat(diff["files"]) == git_numstat(repo, std::string(from) + " " + to));
    CHECK(diff["diff"].get<std::string>() == repo.git(std::string("diff ") + from + " " + to));
  }
  json rename = call("git_diff", repo_args(repo, {{"from", "HEAD~1"}, {"to", "HEAD"}}), ctx);
  REQUIRE(rename["files"].size() == 1);
  CHECK(rename["files"][0]["status"] == "renamed");
  CHECK(rename["files"][0]["old_path"] == "src/util.c");
  json binary = call("git_diff", repo_args(repo, {{"from", "HEAD~2"}, {"to", "HEAD~1"}}), ctx);
  REQUIRE(binary["files"].size() == 1);
  CHECK(binary["files"][0]["binary"] == true);
  CHECK(contains(binary["diff"], "Binary files a/data.bin and b/data.bin differ"));

  // An explicit core.abbrev is honoured, as git does.
  repo.git("config core.abbrev 12");
  CHECK(call("git_diff", repo_args(repo, {{"from", "v1.0"}, {"to", "HEAD"}}), ctx)["diff"] == repo.git("diff v1.0 HEAD"));

  // From a revision to the work tree, as git diff REV.
  repo.write("README.md", "edited\n");
  json worktree = call("git_diff", repo_args(repo, {{"from", "v1.0"}}), ctx);
  CHECK(tool_numstat(worktree["files"]) == git_numstat(repo, "v1.0"));
}

TEST_CASE("git_diff cuts the text at max_bytes on a line boundary and keeps every file's counts") {
  GitRepo repo;
  std::string big;
  for (int i = 0; i < 2000; ++i) big += "line " + std::to_string(i) + "\n";
  repo.write("big.txt", big);
  repo.write("small.txt", "small\n");
  repo.commit("base");
  std::string changed;
  for (int i = 0; i < 2000; ++i) changed += "changed " + std::to_string(i) + "\n";
  repo.write("big.txt", changed);
  repo.write("small.txt", "smaller\n");

  json diff = call("git_diff", repo_args(repo, {{"max_bytes", 4096}}), context_for(repo.root()));
  CHECK(diff["truncated"] == true);
  std::string full = repo.git("diff");
  std::string text = diff["diff"];
  CHECK(!text.empty());
  CHECK(text.size() < 4096);
  CHECK(full.rfind(text, 0) == 0);  // a prefix of git's text
  CHECK(text.back() == '\n');
  CHECK(diff["files"].size() == 2);
  CHECK(diff["additions"] == 2001);
  CHECK(diff["deletions"] == 2001);
}

TEST_CASE("git_diff argument combinations that make no sense are refused") {
  GitRepo repo;
  build_rich_history(repo);
  auto ctx = context_for(repo.root());
  CHECK(contains(error_of("git_diff", repo_args(repo, {{"to", "HEAD"}}), ctx), "`to` needs `from`"));
  CHECK(contains(error_of("git_diff", repo_args(repo, {{"from", "HEAD~1"}, {"to", "HEAD"}, {"staged", true}}), ctx),
                 "staged"));
}

// ----------------------------------------------------------------------------------------- show

TEST_CASE("git_show of a commit gives its message, stats and diff against the first parent") {
  GitRepo repo;
  build_rich_history(repo);
  auto ctx = context_for(repo.root());
  json show = call("git_show", repo_args(repo), ctx);
  CHECK(show["type"] == "commit");
  CHECK(show["commit"]["id"] == repo.head());
  CHECK(show["commit"]["message"] == "Rename util.c to helpers.c\n");
  CHECK(show["commit"]["committer_date"] == GitRepo::trim(repo.git("log -1 --format=%cI")));
  CHECK(show["diff_base"] == GitRepo::trim(repo.git("rev-parse HEAD~1")));
  CHECK(show["diff"] == repo.git("diff HEAD~1 HEAD"));
  CHECK(tool_numstat(show["files"]) == git_numstat(repo, "HEAD~1 HEAD"));

  json root = call("git_show", repo_args(repo, {{"revision", "HEAD~5"}}), ctx);
  CHECK(root["commit"]["parents"].empty());
  CHECK(root["diff_base"].is_null());
  CHECK(root["files_changed"] == 5);

  json tag = call("git_show", repo_args(repo, {{"revision", "v1.0"}}), ctx);
  CHECK(tag["tag"]["name"] == "v1.0");
  CHECK(tag["tag"]["message"] == "Version 1.0\n");
  CHECK(tag["commit"]["id"] == GitRepo::trim(repo.git("rev-parse v1.0^{commit}")));
}

TEST_CASE("git_show of a path gives a file's content or a directory's entries at a revision") {
  GitRepo repo;
  build_rich_history(repo);
  auto ctx = context_for(repo.root());
  json file = call("git_show", repo_args(repo, {{"revision", "v1.0"}, {"path", "src/main.c"}}), ctx);
  CHECK(file["type"] == "blob");
  CHECK(file["content"] == repo.git("show v1.0:src/main.c"));
  CHECK(file["binary"] == false);

  json binary = call("git_show", repo_args(repo, {{"path", "data.bin"}}), ctx);
  CHECK(binary["binary"] == true);
  CHECK(!binary.contains("content"));
  CHECK(binary["size"] == 16);

  json dir = call("git_show", repo_args(repo, {{"path", "src"}}), ctx);
  CHECK(dir["type"] == "tree");
  std::set<std::string> names;
  for (const auto& e : dir["entries"]) names.insert(e["name"]);
  CHECK(names == std::set<std::string>{"helpers.c", "main.c"});

  json unicode = call("git_show", repo_args(repo, {{"path", kUnicodePath}}), ctx);
  CHECK(unicode["content"] == "unicode path\n");

  json relative = call("git_show", {{"repo_path", (repo.path() / "src").string()}, {"path", "main.c"}}, ctx);
  CHECK(relative["path"] == "src/main.c");

  CHECK(contains(error_of("git_show", repo_args(repo, {{"path", "nope.txt"}}), ctx), "does not exist"));
}

TEST_CASE("git_show cuts a long file at max_bytes") {
  GitRepo repo;
  std::string big;
  for (int i = 0; i < 5000; ++i) big += "line " + std::to_string(i) + "\n";
  repo.write("big.txt", big);
  repo.commit("big");
  json show = call("git_show", repo_args(repo, {{"path", "big.txt"}, {"max_bytes", 2000}}), context_for(repo.root()));
  CHECK(show["truncated"] == true);
  std::string content = show["content"];
  CHECK(big.rfind(content, 0) == 0);
  CHECK(content.size() <= 2000);
  CHECK(content.back() == '\n');
}

TEST_CASE("files over max_file_bytes are described, not read") {
  GitRepo repo;
  repo.write("big.txt", std::string(5000, 'x') + "\n");
  repo.commit("big");
  ToolContext ctx = context_for(repo.root());
  ctx.max_file_bytes = 1000;
  json show = call("git_show", repo_args(repo, {{"path", "big.txt"}}), ctx);
  CHECK(show["size"] == 5001);
  CHECK(!show.contains("content"));
  CHECK(show["truncated"] == true);
  CHECK(contains(error_of("git_blame", repo_args(repo, {{"path", "big.txt"}}), ctx), "max_file_bytes"));
}

TEST_CASE("invalid UTF-8 in a file comes out replaced, never as broken JSON") {
  GitRepo repo;
  repo.write("latin1.txt", "caf\xe9\n");
  repo.tick();
  repo.git("add latin1.txt");
  repo.git("-c i18n.commitEncoding=latin1 commit -q -m " + shell_quote("latin-1 \xe9"));
  json show = call("git_show", repo_args(repo, {{"path", "latin1.txt"}}), context_for(repo.root()));
  CHECK(show["content"] == "caf\xef\xbf\xbd\n");
  json log = call("git_log", repo_args(repo), context_for(repo.root()));
  CHECK(log["commits"][0]["summary"] == "latin-1 \xef\xbf\xbd");
}

// ---------------------------------------------------------------------------------------- blame

TEST_CASE("git_blame gives the same commit per line as git blame --porcelain") {
  GitRepo repo;
  build_rich_history(repo);
  repo.write("src/main.c", "#include <stdio.h>\n\nint main(void) {\n  printf(\"hello, world\\n\");\n  return 2;\n}\n");
  repo.commit("Return 2");
  auto ctx = context_for(repo.root());
  for (const std::string path : {"src/main.c", "src/helpers.c", "README.md", "notes.txt"}) {
    CAPTURE(path);
    json blame = call("git_blame", repo_args(repo, {{"path", path}}), ctx);
    std::vector<std::string> commits;
    for (const auto& line : blame["lines"]) commits.push_back(line["commit"]);
    CHECK(commits == git_blame_commits(repo, "HEAD -- " + path));
    CHECK(blame["line_count"] == commits.size());
    // Every commit named is described once.
    std::set<std::string> described;
    for (const auto& c : blame["commits"]) described.insert(c["id"]);
    CHECK(described == std::set<std::string>(commits.begin(), commits.end()));
  }
  // The renamed file's old lines come from util.c.
  json helpers = call("git_blame", repo_args(repo, {{"path", "src/helpers.c"}}), ctx);
  CHECK(helpers["lines"][0]["original_path"] == "src/util.c");
  CHECK(helpers["lines"][0]["text"] == "int add(int a, int b) {");
}

TEST_CASE("git_blame and git_diff align an ambiguous insertion as git does (indent heuristic)") {
  GitRepo repo;
  // Without the heuristic, xdiff shows the new block as "  two / } / {" after line 3; git shows "{ / two / }".
  repo.write("a.c", "{\n  one\n}\n{\n  three\n}\n");
  repo.commit("one and three");
  repo.write("a.c", "{\n  one\n}\n{\n  two\n}\n{\n  three\n}\n");
  repo.commit("insert two");
  repo.write("a.c", "{\n  one\n}\n{\n  two\n}\n{\n  2.5\n}\n{\n  three\n}\n");
  auto ctx = context_for(repo.root());
  json blame = call("git_blame", repo_args(repo, {{"path", "a.c"}}), ctx);
  std::vector<std::string> commits;
  for (const auto& line : blame["lines"]) commits.push_back(line["commit"]);
  CHECK(commits == git_blame_commits(repo, "HEAD -- a.c"));
  CHECK(blame["lines"][3]["commit"] == repo.head());  // the "{" opening "two"
  CHECK(call("git_diff", repo_args(repo, {{"from", "HEAD~1"}, {"to", "HEAD"}}), ctx)["diff"] == repo.git("diff HEAD~1 HEAD"));
  CHECK(call("git_diff", repo_args(repo), ctx)["diff"] == repo.git("diff"));
}

TEST_CASE("git_blame of a line range and at an older revision") {
  GitRepo repo;
  build_rich_history(repo);
  auto ctx = context_for(repo.root());
  json range = call("git_blame", repo_args(repo, {{"path", "src/main.c"}, {"start_line", 3}, {"end_line", 5}}), ctx);
  REQUIRE(range["lines"].size() == 3);
  CHECK(range["lines"][0]["line"] == 3);
  std::vector<std::string> commits;
  for (const auto& line : range["lines"]) commits.push_back(line["commit"]);
  CHECK(commits == git_blame_commits(repo, "-L 3,5 HEAD -- src/main.c"));

  json old = call("git_blame", repo_args(repo, {{"path", "src/main.c"}, {"revision", "HEAD~5"}}), ctx);
  for (const auto& line : old["lines"]) CHECK(line["commit"] == GitRepo::trim(repo.git("rev-parse HEAD~5")));

  CHECK(contains(error_of("git_blame", repo_args(repo, {{"path", "src/main.c"}, {"end_line", 99}}), ctx),
                 "past the end"));
  CHECK(contains(error_of("git_blame", repo_args(repo, {{"path", "data.bin"}}), ctx), "binary"));
  CHECK(contains(error_of("git_blame", repo_args(repo, {{"path", "src"}}), ctx), "directory"));
  CHECK(contains(error_of("git_blame", repo_args(repo, {{"path", "gone.c"}}), ctx), "does not exist"));
}

// ------------------------------------------------------------------------------------- branches

TEST_CASE("git_branches lists local and remote branches like git branch") {
  GitRepo upstream;
  build_rich_history(upstream);
  GitRepo repo(false);
  repo.clone_from(upstream);
  repo.git("branch topic v1.0");
  repo.git("branch --track tracking origin/feature");
  auto ctx = context_for(repo.root());

  json branches = call("git_branches", repo_args(repo), ctx);
  CHECK(branches["current"] == "main");
  CHECK(branches["head"] == repo.head());
  std::vector<std::string> local, remote;
  for (const auto& b : branches["local"]) local.push_back(b["name"]);
  for (const auto& b : branches["remote"]) remote.push_back(b["name"]);
  CHECK(local == split(repo.git("branch '--format=%(refname:short)'"), '\n'));
  std::vector<std::string> git_remote = split(repo.git("branch -r '--format=%(refname:lstrip=2)'"), '\n');
  std::sort(git_remote.begin(), git_remote.end());
  CHECK(remote == git_remote);
  for (const auto& b : branches["local"]) {
    CAPTURE(b.dump());
    CHECK(b["commit"] == GitRepo::trim(repo.git("rev-parse " + b["name"].get<std::string>())));
    CHECK(b["current"] == (b["name"] == "main"));
    if (b["name"] == "tracking") CHECK(b["upstream"] == "origin/feature");
    if (b["name"] == "main") {
      CHECK(b["upstream"] == "origin/main");
      CHECK(b["ahead"] == 0);
      CHECK(b["behind"] == 0);
    }
  }

  std::string util = GitRepo::trim(repo.git("rev-parse origin/feature"));
  json containing = call("git_branches", repo_args(repo, {{"contains", util}}), ctx);
  std::vector<std::string> names;
  for (const auto& b : containing["local"]) names.push_back(b["name"]);
  CHECK(names == split(repo.git("branch '--format=%(refname:short)' --contains " + util), '\n'));
  CHECK(std::find(names.begin(), names.end(), "topic") == names.end());
}

TEST_CASE("each branch's upstream is the one git names, however it is configured") {
  GitRepo upstream;
  build_rich_history(upstream);
  GitRepo repo(false);
  repo.clone_from(upstream);
  // A local branch as upstream (remote "."), a second remote whose fetch refspec maps into another
  // namespace, a remote with no refspec for the merged branch, and an upstream whose
  // remote-tracking reference was deleted.
  repo.git("branch local-base main");
  repo.git("branch --track on-local local-base");
  repo.git("remote add mirror " + upstream.path().string());
  repo.git("config --replace-all remote.mirror.fetch '+refs/heads/*:refs/remotes/elsewhere/*'");
  repo.git("fetch -q mirror");
  repo.git("branch --track on-mirror elsewhere/feature");
  repo.git("branch on-nothing main");
  repo.git("config branch.on-nothing.remote mirror");
  repo.git("config branch.on-nothing.merge refs/tags/v1.0");
  repo.git("branch on-gone origin/feature");
  repo.git("config branch.on-gone.remote origin");
  repo.git("config branch.on-gone.merge refs/heads/gone");
  json branches = call("git_branches", repo_args(repo), context_for(repo.root()));
  int checked = 0;
  for (const auto& b : branches["local"]) {
    std::string name = b["name"];
    CAPTURE(name);
    std::string spec = "rev-parse --abbrev-ref " + name + "@{upstream}";
    if (repo.git_status(spec) == 0) {
      CHECK(b.value("upstream", "") == GitRepo::trim(repo.git(spec)));
    } else {
      CHECK_FALSE(b.contains("upstream"));
    }
    ++checked;
  }
  CHECK(checked >= 6);
  auto find = [&](const std::string& name) {
    for (const auto& b : branches["local"])
      if (b["name"] == name) return b;
    return json();
  };
  CHECK(find("on-local")["upstream"] == "local-base");
  CHECK(find("on-mirror")["upstream"] == "elsewhere/feature");
  CHECK_FALSE(find("on-nothing").contains("upstream"));
  CHECK_FALSE(find("on-gone").contains("upstream"));
}

TEST_CASE("git_branches of a repository without commits names the unborn branch") {
  GitRepo repo;
  json branches = call("git_branches", repo_args(repo), context_for(repo.root()));
  CHECK(branches["current"] == "main");
  CHECK(branches["head"].is_null());
  CHECK(branches["local"].empty());
}

// ------------------------------------------------------------------------------------ the errors

TEST_CASE("errors name the problem: not a repository, outside the roots, unknown revision, bare") {
  GitRepo repo;
  build_rich_history(repo);
  auto ctx = context_for(repo.root());

  fs::create_directories(repo.root() / "plain");
  CHECK(contains(error_of("git_status", {{"repo_path", (repo.root() / "plain").string()}}, ctx),
                 "is not in a git repository"));
  CHECK(contains(error_of("git_log", {{"repo_path", "/"}}, ctx), "outside the allowed roots"));
  CHECK(contains(error_of("git_log", {{"repo_path", (repo.root() / "missing").string()}}, ctx), "does not exist"));
  CHECK(contains(error_of("git_log", {{"repo_path", (repo.path() / "README.md").string()}}, ctx), "not a directory"));

  std::string unknown = error_of("git_log", repo_args(repo, {{"revision", "no-such-branch"}}), ctx);
  CHECK(contains(unknown, "unknown revision 'no-such-branch'"));
  CHECK(contains(error_of("git_diff", repo_args(repo, {{"from", "HEAD"}, {"to", "nope"}}), ctx),
                 "unknown revision 'nope' (`to`)"));
  CHECK(contains(error_of("git_show", repo_args(repo, {{"revision", "deadbeef"}}), ctx), "unknown revision 'deadbeef'"));
  CHECK(contains(error_of("git_blame", repo_args(repo, {{"path", "README.md"}, {"revision", "v9"}}), ctx),
                 "unknown revision 'v9'"));
  CHECK(contains(error_of("git_branches", repo_args(repo, {{"contains", "zzz"}}), ctx), "unknown revision 'zzz'"));
  CHECK(contains(error_of("git_log", repo_args(repo, {{"revision", "HEAD:README.md"}}), ctx), "not a commit"));

  // A repository above the roots is not searched for.
  auto inner = context_for(repo.path() / "src");
  CHECK(contains(error_of("git_status", {{"repo_path", (repo.path() / "src").string()}}, inner),
                 "is not in a git repository"));

  GitRepo bare(true, "--bare");
  auto bare_ctx = context_for(bare.root());
  for (const char* tool : {"git_status", "git_diff"}) {
    CAPTURE(tool);
    std::string message = error_of(tool, repo_args(bare), bare_ctx);
    CHECK(contains(message, "is bare"));
    CHECK(contains(message, tool));
  }
  // History works in a bare repository.
  bare.git("fetch -q " + shell_quote(repo.path().string()) + " main:main");
  CHECK(call("git_log", repo_args(bare), bare_ctx)["commits"].size() == git_log_lines(repo, "").size());
}

TEST_CASE("a symlink out of the roots is refused") {
  GitRepo repo;
  build_rich_history(repo);
  GitRepo elsewhere;
  build_rich_history(elsewhere);
  fs::create_directory_symlink(elsewhere.path(), repo.root() / "link");
  CHECK(contains(error_of("git_log", {{"repo_path", (repo.root() / "link").string()}}, context_for(repo.root())),
                 "outside the allowed roots"));
}

// ------------------------------------------------------------------- long walks: cancel, progress

/// A linear history of `commits` commits made with git fast-import, each touching one of 50 files.
void build_long_history(GitRepo& repo, int commits) {
  std::string stream;
  for (int i = 1; i <= commits; ++i) {
    std::string content = "revision " + std::to_string(i) + "\n";
    stream += "commit refs/heads/main\nmark :" + std::to_string(i) + "\n";
    stream += "committer Ada Lovelace <ada@example.com> " + std::to_string(1704067200 + i * 60) + " +0000\n";
    std::string message = "change " + std::to_string(i);
    stream += "data " + std::to_string(message.size()) + "\n" + message + "\n";
    if (i > 1) stream += "from :" + std::to_string(i - 1) + "\n";
    stream += "M 100644 inline file" + std::to_string(i % 50) + ".txt\ndata " + std::to_string(content.size()) + "\n" +
              content + "\n";
  }
  fs::path script = repo.root() / "stream";
  std::ofstream(script, std::ios::binary) << stream;
  repo.git("fast-import --quiet < " + shell_quote(script.string()));
  repo.git("reset -q --hard main");
}

TEST_CASE("a long git_log reports progress and honours cancellation") {
  GitRepo repo;
  build_long_history(repo, 5000);
  ToolContext ctx = context_for(repo.root());
  std::vector<double> reported;
  ctx.progress = [&](double done, double, const std::string&) { reported.push_back(done); };
  json log = call("git_log", repo_args(repo, {{"max_count", 100000}, {"paths", {"file7.txt"}}}), ctx);
  CHECK(log["commits"].size() == 100);
  CHECK(!reported.empty());
  CHECK(std::is_sorted(reported.begin(), reported.end()));

  ToolContext cancelled = context_for(repo.root());
  cancelled.cancel.cancel();
  CHECK_THROWS_AS(git_tool("git_log").handler(repo_args(repo, {{"max_count", 100000}}), cancelled), ToolCancelled);
}

// -------------------------------------------------------------------------------- open repositories

TEST_CASE("concurrent calls on one repository (the in-process path) each get their own handle") {
  GitRepo repo;
  build_rich_history(repo);
  auto ctx = context_for(repo.root());
  json expected_log = call("git_log", repo_args(repo, {{"include_files", true}}), ctx);
  json expected_blame = call("git_blame", repo_args(repo, {{"path", "src/helpers.c"}}), ctx);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        ToolContext local = context_for(repo.root());
        if (git_tool("git_log").handler(repo_args(repo, {{"include_files", true}}), local).structured != expected_log)
          ++mismatches;
        if (git_tool("git_blame").handler(repo_args(repo, {{"path", "src/helpers.c"}}), local).structured !=
            expected_blame)
          ++mismatches;
        git_tool("git_status").handler(repo_args(repo), local);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(mismatches == 0);
  CHECK(git::repository_pool().idle() <= 16);
}

TEST_CASE("repositories stay open between calls, and a re-created one is not mistaken for the old") {
  GitRepo repo;
  repo.write("a.txt", "1\n");
  std::string first = repo.commit("first");
  auto ctx = context_for(repo.root());
  CHECK(call("git_log", repo_args(repo), ctx)["commits"][0]["id"] == first);
  CHECK(git::repository_pool().idle() >= 1);
  CHECK(call("git_log", repo_args(repo), ctx)["commits"][0]["id"] == first);

  fs::remove_all(repo.path() / ".git");
  repo.git("-c init.defaultBranch=main init -q");
  repo.git("config user.name 'Ada Lovelace'");
  repo.git("config user.email ada@example.com");
  repo.write("a.txt", "other\n");
  std::string other = repo.commit("another first");
  REQUIRE(other != first);
  CHECK(call("git_log", repo_args(repo), ctx)["commits"][0]["id"] == other);
  CHECK(call("git_status", repo_args(repo), ctx)["head"] == other);
}

}  // namespace
