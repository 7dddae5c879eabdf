// Specifies the writing git tools: refused unless writes are enabled, and when they are, each does
// what the git command it is named after does (checked with the git CLI afterwards).
#include "git_fixture.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;

/// git diff --cached --name-status as "S\tpath" lines.
std::vector<std::string> staged(const GitRepo& repo) { return split(repo.git("diff --cached --name-status"), '\n'); }

TEST_CASE("every writing tool refuses while writes are disabled, and changes nothing") {
  GitRepo repo;
  build_rich_history(repo);
  repo.write("README.md", "edited\n");
  std::string head = repo.head();
  auto ctx = context_for(repo.root(), false);
  std::vector<std::pair<std::string, json>> calls = {
      {"git_add", repo_args(repo, {{"paths", {"README.md"}}})},
      {"git_reset", repo_args(repo)},
      {"git_commit", repo_args(repo, {{"message", "nope"}})},
      {"git_create_branch", repo_args(repo, {{"name", "nope"}})},
      {"git_checkout", repo_args(repo, {{"name", "feature"}})}};
  for (const auto& [tool, args] : calls) {
    const auto& name = tool;  // clang 14 cannot capture a structured binding in CAPTURE's lambda
    CAPTURE(name);
    CHECK(error_of(tool, args, ctx) == "writes are disabled; start mcpd with --allow_writes true");
  }
  CHECK(repo.head() == head);
  CHECK(staged(repo).empty());
  CHECK(GitRepo::trim(repo.git("symbolic-ref --short HEAD")) == "main");
  CHECK(repo.git_status("rev-parse --verify -q refs/heads/nope") != 0);
}

TEST_CASE("writing tools are annotated destructive and never cached; reading ones read-only") {
  for (const auto& tool : git_tools()) {
    CAPTURE(tool.name);
    bool writes = tool.name == "git_add" || tool.name == "git_reset" || tool.name == "git_commit" ||
                  tool.name == "git_create_branch" || tool.name == "git_checkout";
    CHECK(tool.annotations.read_only == !writes);
    CHECK(tool.annotations.destructive == writes);
    CHECK(tool.annotations.idempotent == !writes);
    CHECK(tool.annotations.open_world == false);
    if (writes || tool.name == "git_status") CHECK(tool.cache == CachePolicy::never);
    else CHECK(tool.cache == CachePolicy::custom);
    CHECK(!tool.title.empty());
    CHECK(!tool.description.empty());
    CHECK(!check_schema(tool.input_schema));
    CHECK(!check_schema(tool.output_schema));
    CHECK(tool.input_schema["required"].get<std::vector<std::string>>().front() == "repo_path");
  }
  std::set<std::string> names;
  for (const auto& tool : git_tools()) names.insert(tool.name);
  CHECK(names == std::set<std::string>{"git_status", "git_log", "git_diff", "git_show", "git_blame", "git_branches",
                                       "git_add", "git_reset", "git_commit", "git_create_branch", "git_checkout"});
}

TEST_CASE("git_add stages new, modified and deleted files like git add") {
  GitRepo repo;
  build_rich_history(repo);
  auto ctx = context_for(repo.root(), true);
  repo.write("README.md", "edited\n");
  repo.write("src/new.c", "int x;\n");
  repo.write("other.txt", "not staged\n");
  fs::remove(repo.path() / "src/main.c");

  json added = call("git_add", repo_args(repo, {{"paths", {"README.md", "src"}}}), ctx);
  CHECK(staged(repo) == std::vector<std::string>{"M\tREADME.md", "D\tsrc/main.c", "A\tsrc/new.c"});
  REQUIRE(added["staged"].size() == 3);
  CHECK(added["staged"][0]["path"] == "README.md");
  CHECK(added["staged"][0]["status"] == "modified");
  // Untouched paths stay unstaged.
  CHECK(contains(repo.git("status --porcelain"), "?? other.txt"));

  // From a subdirectory, paths are relative to it; "." is everything below it.
  repo.write("src/more.c", "int y;\n");
  call("git_add", {{"repo_path", (repo.path() / "src").string()}, {"paths", {"."}}}, ctx);
  CHECK(contains(repo.git("diff --cached --name-only"), "src/more.c"));
  CHECK(!contains(repo.git("diff --cached --name-only"), "other.txt"));
}

TEST_CASE("git_add refuses a path that matches nothing and an ignored file") {
  GitRepo repo;
  build_rich_history(repo);
  repo.write(".gitignore", "*.log\n");
  repo.commit("ignore logs");
  repo.write("debug.log", "x\n");
  auto ctx = context_for(repo.root(), true);
  CHECK(contains(error_of("git_add", repo_args(repo, {{"paths", {"nope.txt"}}}), ctx),
                 "pathspec 'nope.txt' did not match any files"));
  CHECK(contains(error_of("git_add", repo_args(repo, {{"paths", {"debug.log"}}}), ctx), "ignored"));
  CHECK(contains(error_of("git_add", repo_args(repo, {{"paths", {"../outside"}}}), ctx), "outside the repository"));
  CHECK(staged(repo).empty());
  // A wildcard that matches a new file is fine.
  repo.write("z1.md", "a\n");
  call("git_add", repo_args(repo, {{"paths", {"z*.md"}}}), ctx);
  CHECK(staged(repo) == std::vector<std::string>{"A\tz1.md"});
}

TEST_CASE("git_add marks a conflicted file resolved") {
  GitRepo repo;
  repo.write("a.txt", "base\n");
  repo.commit("base");
  repo.git("checkout -q -b other");
  repo.write("a.txt", "theirs\n");
  repo.commit("theirs");
  repo.git("checkout -q main");
  repo.write("a.txt", "ours\n");
  repo.commit("ours");
  repo.tick();
  CHECK(repo.git_status("merge other") != 0);
  auto ctx = context_for(repo.root(), true);
  CHECK(contains(error_of("git_commit", repo_args(repo, {{"message", "merge"}}), ctx), "unresolved conflicts in a.txt"));
  repo.write("a.txt", "resolved\n");
  call("git_add", repo_args(repo, {{"paths", {"a.txt"}}}), ctx);
  CHECK(GitRepo::trim(repo.git("status --porcelain")) == "M  a.txt");

  // The commit concludes the merge: two parents, merge state gone.
  json commit = call("git_commit", repo_args(repo, {{"message", "Merge other"}}), ctx);
  CHECK(commit["parents"].size() == 2);
  CHECK(commit["parents"][1] == GitRepo::trim(repo.git("rev-parse other")));
  CHECK(repo.git_status("rev-parse -q --verify MERGE_HEAD") != 0);
  CHECK(GitRepo::trim(repo.git("log -1 --format=%P")) ==
        commit["parents"][0].get<std::string>() + " " + commit["parents"][1].get<std::string>());
}

TEST_CASE("git_reset unstages paths, or everything, and leaves the work tree alone") {
  GitRepo repo;
  build_rich_history(repo);
  auto ctx = context_for(repo.root(), true);
  repo.write("README.md", "edited\n");
  repo.write("new.txt", "new\n");
  repo.git("add README.md new.txt");

  json one = call("git_reset", repo_args(repo, {{"paths", {"new.txt"}}}), ctx);
  REQUIRE(one["unstaged"].size() == 1);
  CHECK(one["unstaged"][0]["path"] == "new.txt");
  CHECK(staged(repo) == std::vector<std::string>{"M\tREADME.md"});
  CHECK(fs::exists(repo.path() / "new.txt"));

  json all = call("git_reset", repo_args(repo), ctx);
  CHECK(all["unstaged"].size() == 1);
  CHECK(staged(repo).empty());
  CHECK(GitRepo::trim(repo.git("diff --name-only")) == "README.md");
}

TEST_CASE("git_reset in a repository without commits empties the index") {
  GitRepo repo;
  repo.write("a.txt", "a\n");
  repo.git("add a.txt");
  call("git_reset", repo_args(repo), context_for(repo.root(), true));
  CHECK(GitRepo::trim(repo.git("status --porcelain")) == "?? a.txt");
}

TEST_CASE("git_commit records the index with the configured author") {
  GitRepo repo;
  build_rich_history(repo);
  auto ctx = context_for(repo.root(), true);
  std::string before = repo.head();
  repo.write("README.md", "edited\n");
  repo.git("add README.md");
  json commit = call("git_commit", repo_args(repo, {{"message", "  Edit the readme\n\nBecause.  \n\n"}}), ctx);
  CHECK(commit["id"] == repo.head());
  CHECK(commit["parents"] == json::array({before}));
  CHECK(commit["branch"] == "main");
  CHECK(commit["summary"] == GitRepo::trim(repo.git("log -1 --format=%s")));
  CHECK(repo.git("log -1 --format=%B") == "  Edit the readme\n\nBecause.\n\n");
  CHECK(GitRepo::trim(repo.git("log -1 --format=%an%x00%ae")) == std::string("Ada Lovelace\0ada@example.com", 28));
  CHECK(repo.git("status --porcelain").empty());
}

TEST_CASE("git_commit refuses when there is nothing to commit or no identity") {
  GitRepo repo;
  build_rich_history(repo);
  auto ctx = context_for(repo.root(), true);
  repo.write("README.md", "edited but not staged\n");
  CHECK(contains(error_of("git_commit", repo_args(repo, {{"message", "x"}}), ctx), "nothing to commit"));
  CHECK(contains(error_of("git_commit", repo_args(repo, {{"message", " \n \n"}}), ctx), "message is empty"));

  GitRepo empty;
  CHECK(contains(error_of("git_commit", repo_args(empty, {{"message", "x"}}), context_for(empty.root(), true)),
                 "nothing to commit: the index is empty"));

  GitRepo anonymous;
  anonymous.git("config --unset user.name");
  anonymous.git("config --unset user.email");
  anonymous.write("a.txt", "a\n");
  anonymous.git("add a.txt");
  CHECK(contains(error_of("git_commit", repo_args(anonymous, {{"message", "x"}}), context_for(anonymous.root(), true)),
                 "no author identity: set user.name and user.email"));
}

TEST_CASE("git_commit makes the first commit of a repository") {
  GitRepo repo;
  repo.write("a.txt", "a\n");
  repo.git("add a.txt");
  json commit = call("git_commit", repo_args(repo, {{"message", "First"}}), context_for(repo.root(), true));
  CHECK(commit["parents"].empty());
  CHECK(commit["id"] == repo.head());
  CHECK(GitRepo::trim(repo.git("log --format=%s")) == "First");
}

TEST_CASE("git_create_branch creates a branch without switching to it") {
  GitRepo repo;
  build_rich_history(repo);
  auto ctx = context_for(repo.root(), true);
  json created = call("git_create_branch", repo_args(repo, {{"name", "fix/x"}, {"revision", "v1.0"}}), ctx);
  CHECK(created["commit"] == GitRepo::trim(repo.git("rev-parse v1.0^{commit}")));
  CHECK(GitRepo::trim(repo.git("rev-parse fix/x")) == created["commit"]);
  CHECK(GitRepo::trim(repo.git("symbolic-ref --short HEAD")) == "main");
  call("git_create_branch", repo_args(repo, {{"name", "here"}}), ctx);
  CHECK(GitRepo::trim(repo.git("rev-parse here")) == repo.head());

  CHECK(contains(error_of("git_create_branch", repo_args(repo, {{"name", "feature"}}), ctx),
                 "branch 'feature' already exists"));
  CHECK(contains(error_of("git_create_branch", repo_args(repo, {{"name", "bad..name"}}), ctx),
                 "not a valid branch name"));
  CHECK(contains(error_of("git_create_branch", repo_args(repo, {{"name", "x"}, {"revision", "nope"}}), ctx),
                 "unknown revision 'nope'"));
}

TEST_CASE("git_checkout switches branches, detaches, and keeps unrelated local changes") {
  GitRepo repo;
  build_rich_history(repo);
  auto ctx = context_for(repo.root(), true);
  repo.write("notes.txt", "local change git keeps across the switch");

  json switched = call("git_checkout", repo_args(repo, {{"name", "feature"}}), ctx);
  CHECK(switched["branch"] == "feature");
  CHECK(switched["previous_branch"] == "main");
  CHECK(GitRepo::trim(repo.git("symbolic-ref --short HEAD")) == "feature");
  CHECK(GitRepo::trim(repo.git("status --porcelain")) == " M notes.txt");
  CHECK(fs::exists(repo.path() / "src/util.c"));
  CHECK(!fs::exists(repo.path() / "src/helpers.c"));

  json detached = call("git_checkout", repo_args(repo, {{"revision", "v1.0"}}), ctx);
  CHECK(detached["detached"] == true);
  CHECK(detached["branch"].is_null());
  CHECK(repo.git_status("symbolic-ref -q HEAD") != 0);
  CHECK(repo.head() == GitRepo::trim(repo.git("rev-parse v1.0^{commit}")));
  CHECK(!fs::exists(repo.path() / "src/util.c"));

  CHECK(contains(error_of("git_checkout", repo_args(repo, {{"name", "nope"}}), ctx), "no local branch 'nope'"));
  CHECK(contains(error_of("git_checkout", repo_args(repo), ctx), "either `name`"));
}

TEST_CASE("git_checkout is blocked by local changes it would overwrite, and names them") {
  GitRepo repo;
  build_rich_history(repo);
  auto ctx = context_for(repo.root(), true);
  repo.write("src/helpers.c", "my unsaved work\n");  // feature has no helpers.c: checkout would delete it
  repo.write("README.md", "also unsaved\n");         // README differs on feature: would be overwritten
  std::string message = error_of("git_checkout", repo_args(repo, {{"name", "feature"}}), ctx);
  CHECK(contains(message, "blocked"));
  CHECK(contains(message, "README.md"));
  CHECK(contains(message, "src/helpers.c"));
  CHECK(GitRepo::trim(repo.git("symbolic-ref --short HEAD")) == "main");
  std::ifstream in(repo.path() / "src/helpers.c");
  std::string kept((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(kept == "my unsaved work\n");
}

TEST_CASE("git_checkout suggests the remote branch when only that exists") {
  GitRepo upstream;
  build_rich_history(upstream);
  GitRepo repo(false);
  repo.clone_from(upstream);
  std::string message = error_of("git_checkout", repo_args(repo, {{"name", "feature"}}), context_for(repo.root(), true));
  CHECK(contains(message, "no local branch 'feature'"));
  CHECK(contains(message, "origin/feature"));
}

TEST_CASE("writing tools that need a work tree refuse a bare repository") {
  GitRepo bare(true, "--bare");
  auto ctx = context_for(bare.root(), true);
  CHECK(contains(error_of("git_add", repo_args(bare, {{"paths", {"x"}}}), ctx), "is bare"));
  CHECK(contains(error_of("git_commit", repo_args(bare, {{"message", "x"}}), ctx), "is bare"));
  CHECK(contains(error_of("git_checkout", repo_args(bare, {{"name", "main"}}), ctx), "is bare"));
}

}  // namespace
