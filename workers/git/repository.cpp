#include "repository.h"

#include <sys/stat.h>

#include <cstring>

#include "arguments.h"
#include "containment.h"
#include "output.h"
#include "roots.h"

namespace mcpd::git {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxIdleRepositories = 16;

void init_libgit2() {
  [[maybe_unused]] static const bool done = [] {
    git_libgit2_init();
    // Checking every object's hash on read costs a SHA-1 per object and git itself does not do it;
    // objects written by the tools are still validated on creation.
    git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
    // Keep parsed trees up to 1 MiB in the object cache (libgit2 caches none above 4 KiB, so a
    // directory of a few hundred files was re-inflated and re-parsed at every step of a blame or a
    // log walk). The cache stays within its total bound (256 MiB by default).
    git_libgit2_opts(GIT_OPT_SET_CACHE_OBJECT_LIMIT, GIT_OBJECT_TREE, static_cast<std::size_t>(1) << 20);
    // Pack windows: at most 1 GiB mapped, well inside the worker's address-space limit.
    git_libgit2_opts(GIT_OPT_SET_MWINDOW_MAPPED_LIMIT, static_cast<std::size_t>(1) << 30);
    return true;
  }();
}

std::string without_trailing_slash(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

GitDirIdentity identify(const std::string& gitdir) {
  GitDirIdentity identity;
  identity.gitdir = gitdir;
  struct stat st {};
  if (::stat(gitdir.c_str(), &st) == 0) {
    identity.device = static_cast<std::uint64_t>(st.st_dev);
    identity.inode = static_cast<std::uint64_t>(st.st_ino);
  }
  return identity;
}

// libgit2 opens the repository of every checked-out submodule when it compares the work tree
// (status, diff, add), from the submodule's own .git, which may point anywhere: each is checked like
// the repository itself.
void check_submodules(const Repository& repo, const std::vector<fs::path>& roots, const std::string& repo_path) {
  git_index* index = nullptr;
  if (git_repository_index(&index, repo.get()) < 0) {
    git_error_clear();
    return;  // the tool reports an unreadable index itself
  }
  Index owned(index);
  std::size_t count = git_index_entrycount(index);
  for (std::size_t i = 0; i < count; ++i) {
    const git_index_entry* entry = git_index_get_byindex(index, i);
    if (entry->mode != GIT_FILEMODE_COMMIT) continue;
    fs::path dir = repo.workdir() / entry->path;
    struct stat st {};
    if (::lstat((dir / ".git").c_str(), &st) != 0) continue;  // not checked out: libgit2 opens nothing
    std::error_code ec;
    fs::path real = fs::canonical(dir, ec);
    bool inside = false;
    for (const auto& root : roots) inside = inside || (!ec && is_within(real, root));
    if (!inside)
      throw ToolError("repository '" + repo_path + "': its submodule '" + valid_utf8(entry->path) + "' is outside the allowed roots");
    std::string label = repo_path + "' submodule '" + valid_utf8(entry->path);
    LocatedRepository located = locate_repository(real, roots, label);
    check_containment(located, roots, label);
  }
}

}  // namespace

StringArray::StringArray(const std::vector<std::string>& strings) {
  pointers.reserve(strings.size());
  for (const auto& s : strings) pointers.push_back(const_cast<char*>(s.c_str()));
  array.strings = pointers.empty() ? nullptr : pointers.data();
  array.count = pointers.size();
}

std::string last_error() {
  const git_error* error = git_error_last();
  // The message may quote a path, which need not be UTF-8; it ends up in JSON.
  return error != nullptr && error->message != nullptr ? valid_utf8(error->message) : "unknown libgit2 error";
}

void check(int rc, const std::string& what) {
  if (rc >= 0) return;
  if (rc == GIT_ELOCKED)
    throw ToolError(what + ": another git process seems to be running in this repository (a .lock file exists): " +
                    last_error());
  throw ToolError(what + ": " + last_error());
}

Repository::Repository(git_repository* repo, GitDirIdentity identity, fs::path workdir, fs::path prefix)
    : repo_(repo), identity_(std::move(identity)), workdir_(std::move(workdir)), prefix_(std::move(prefix)) {}

Repository::Repository(Repository&& other) noexcept
    : repo_(other.repo_),
      identity_(std::move(other.identity_)),
      workdir_(std::move(other.workdir_)),
      prefix_(std::move(other.prefix_)) {
  other.repo_ = nullptr;
}

Repository::~Repository() {
  if (repo_ != nullptr) repository_pool().give(repo_, identity_);
}

RepositoryPool::~RepositoryPool() {
  for (auto& entry : idle_) git_repository_free(entry.repo);
}

git_repository* RepositoryPool::take(const GitDirIdentity& identity) {
  std::lock_guard lock(mutex_);
  for (auto it = idle_.begin(); it != idle_.end(); ++it) {
    if (it->identity == identity) {
      git_repository* repo = it->repo;
      idle_.erase(it);
      return repo;
    }
  }
  return nullptr;
}

void RepositoryPool::give(git_repository* repo, const GitDirIdentity& identity) {
  std::vector<git_repository*> closing;
  {
    std::lock_guard lock(mutex_);
    // Entries for the same path with an older identity belong to a repository that is gone.
    for (auto it = idle_.begin(); it != idle_.end();) {
      if (it->identity.gitdir == identity.gitdir && !(it->identity == identity)) {
        closing.push_back(it->repo);
        it = idle_.erase(it);
      } else {
        ++it;
      }
    }
    idle_.push_front({identity, repo});
    while (idle_.size() > max_idle_) {
      closing.push_back(idle_.back().repo);
      idle_.pop_back();
    }
  }
  for (git_repository* r : closing) git_repository_free(r);  // outside the lock: it may take a while
}

std::size_t RepositoryPool::idle() const {
  std::lock_guard lock(mutex_);
  return idle_.size();
}

RepositoryPool& repository_pool() {
  // Never destroyed: a worker ends with _exit, and the in-process path may still hold leases while
  // static destructors run.
  static RepositoryPool* pool = new RepositoryPool(kMaxIdleRepositories);
  return *pool;
}

Repository open_repository(const json& arguments, const ToolContext& context, std::string_view tool,
                           bool need_work_tree) {
  init_libgit2();
  std::string repo_path = required_string(arguments, "repo_path");
  fs::path dir = resolve_in_roots(repo_path, context.roots);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw ToolError("repo_path '" + repo_path + "' is not a directory");

  // Found with stat() and small reads that never leave the roots, and checked before libgit2 reads
  // anything: libgit2's own search would follow a .git file or commondir wherever they point.
  LocatedRepository located = locate_repository(dir, context.roots, repo_path);
  check_containment(located, context.roots, repo_path);

  GitDirIdentity identity = identify(located.gitdir.string() + "/");
  git_repository* raw = repository_pool().take(identity);
  if (raw == nullptr) {
    // Only `top` itself: no search upward, so libgit2 opens what was checked.
    int rc = git_repository_open_ext(&raw, located.top.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr);
    if (rc == GIT_ENOTFOUND)
      throw ToolError("'" + repo_path +
                      "' is not in a git repository (searched it and its parent directories up to the allowed roots)");
    check(rc, "cannot open the repository at '" + repo_path + "'");
    std::error_code opened_error;
    fs::path opened = fs::canonical(git_repository_path(raw), opened_error);
    if (opened_error || opened != located.gitdir) {
      git_repository_free(raw);
      throw ToolError("repository '" + repo_path + "': libgit2 opened the git directory '" +
                      std::string(opened_error ? "?" : opened.string()) + "', not the checked '" + located.gitdir.string() + "'");
    }
  }
  fs::path workdir;
  if (const char* w = git_repository_workdir(raw)) workdir = without_trailing_slash(w);
  fs::path prefix;
  if (!workdir.empty() && is_within(dir, workdir)) {
    prefix = dir.lexically_relative(workdir);
    if (prefix == ".") prefix.clear();
  }
  Repository repo(raw, std::move(identity), workdir, prefix);

  if (!repo.bare()) {
    bool inside = false;
    for (const auto& root : context.roots) inside = inside || is_within(repo.workdir(), root);
    if (!inside)
      throw ToolError("repository '" + repo_path + "': its work tree '" + repo.workdir().string() +
                      "' is outside the allowed roots");
  }
  if (need_work_tree && repo.bare())
    throw ToolError("the repository at '" + repo_path + "' is bare (it has no work tree), and " + std::string(tool) +
                    " needs one");
  if (need_work_tree) check_submodules(repo, context.roots, repo_path);
  return repo;
}

std::string repository_path(const Repository& repo, const std::string& path, const char* argument) {
  auto outside = [&] {
    return ToolError("path '" + path + "' (`" + argument + "`) is outside the repository");
  };
  if (path.find('\0') != std::string::npos) throw ToolError("`" + std::string(argument) + "` contains a NUL byte");
  fs::path given(path);
  fs::path relative;
  if (given.is_absolute()) {
    if (repo.bare()) throw ToolError("path '" + path + "' (`" + argument + "`): a bare repository has no work tree; "
                                     "give the path relative to the top of the repository");
    fs::path normal = given.lexically_normal();
    if (!is_within(normal, repo.workdir())) throw outside();
    relative = normal.lexically_relative(repo.workdir());
  } else {
    relative = (repo.prefix() / given).lexically_normal();
  }
  std::string out = relative.generic_string();
  if (out == "." || out == "./") out.clear();
  while (!out.empty() && out.back() == '/') out.pop_back();
  if (out == ".." || out.rfind("../", 0) == 0) throw outside();
  return out;
}

std::vector<std::string> repository_pathspecs(const Repository& repo, const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const auto& path : paths) {
    std::string spec = repository_path(repo, path, "paths");
    if (spec.empty()) return {};  // the whole tree
    out.push_back(std::move(spec));
  }
  return out;
}

bool has_wildcards(std::string_view pathspec) { return pathspec.find_first_of("*?[\\") != std::string_view::npos; }

bool head_unborn(const Repository& repo) { return git_repository_head_unborn(repo.get()) == 1; }

std::optional<std::string> head_branch(const Repository& repo) {
  git_reference* raw = nullptr;
  if (git_reference_lookup(&raw, repo.get(), "HEAD") < 0) return std::nullopt;
  Reference head(raw);
  if (git_reference_type(head.get()) != GIT_REFERENCE_SYMBOLIC) return std::nullopt;
  std::string target = git_reference_symbolic_target(head.get());
  constexpr std::string_view kHeads = "refs/heads/";
  if (target.rfind(kHeads, 0) == 0) target.erase(0, kHeads.size());
  return target;
}

Object resolve_object(const Repository& repo, const std::string& spec, const char* argument) {
  git_object* raw = nullptr;
  int rc = git_revparse_single(&raw, repo.get(), spec.c_str());
  if (rc == 0) return Object(raw);
  std::string detail = last_error();
  std::string where = " (`" + std::string(argument) + "`)";
  if ((rc == GIT_ENOTFOUND || rc == GIT_EUNBORNBRANCH) && head_unborn(repo) &&
      (spec == "HEAD" || spec == "@" || spec.rfind("HEAD", 0) == 0 || spec.rfind("@", 0) == 0))
    throw ToolError("'" + spec + "'" + where + " names no commit: the repository has no commits yet (branch '" +
                    head_branch(repo).value_or("HEAD") + "' is unborn)");
  if (rc == GIT_ENOTFOUND || rc == GIT_EUNBORNBRANCH) {
    std::string message = "unknown revision '" + spec + "'" + where;
    if (spec.find(':') != std::string::npos) message += ": " + detail;
    throw ToolError(message);
  }
  if (rc == GIT_EAMBIGUOUS) throw ToolError("ambiguous revision '" + spec + "'" + where + ": " + detail);
  if (rc == GIT_EINVALIDSPEC) throw ToolError("invalid revision '" + spec + "'" + where + ": " + detail);
  throw ToolError("cannot resolve revision '" + spec + "'" + where + ": " + detail);
}

Commit resolve_commit(const Repository& repo, const std::string& spec, const char* argument) {
  Object object = resolve_object(repo, spec, argument);
  git_object* peeled = nullptr;
  if (git_object_peel(&peeled, object.get(), GIT_OBJECT_COMMIT) < 0)
    throw ToolError("revision '" + spec + "' (`" + argument + "`) is a " +
                    git_object_type2string(git_object_type(object.get())) + ", not a commit");
  return Commit(reinterpret_cast<git_commit*>(peeled));
}

std::string oid_string(const git_oid* oid) {
  char hex[GIT_OID_HEXSZ + 1];
  git_oid_tostr(hex, sizeof hex, oid);
  return hex;
}

namespace {

using Config = Owned<git_config, git_config_free>;
using ConfigIterator = Owned<git_config_iterator, git_config_iterator_free>;
using Refspec = Owned<git_refspec, git_refspec_free>;

std::optional<std::string> config_string(git_config* config, const std::string& key) {
  Buffer value;
  if (git_config_get_string_buf(&value.buf, config, key.c_str()) != 0) return std::nullopt;
  return std::string(value.view());
}

}  // namespace

Reference upstream_of(git_repository* repo, git_reference* branch) {
  const char* name = nullptr;
  if (git_branch_name(&name, branch) != 0 || !git_reference_is_branch(branch)) return nullptr;
  git_config* config_raw = nullptr;
  if (git_repository_config_snapshot(&config_raw, repo) != 0) return nullptr;
  Config config(config_raw);
  std::string section = std::string("branch.") + name;
  auto remote = config_string(config.get(), section + ".remote");
  auto merge = config_string(config.get(), section + ".merge");
  if (!remote || !merge || remote->empty() || merge->empty()) return nullptr;

  std::string target;
  if (*remote == ".") {
    target = *merge;  // a local branch as upstream
  } else {
    // A multivar iterator without a regex: the leaking matcher is not involved.
    git_config_iterator* iterator_raw = nullptr;
    if (git_config_multivar_iterator_new(&iterator_raw, config.get(), ("remote." + *remote + ".fetch").c_str(),
                                         nullptr) != 0)
      return nullptr;
    ConfigIterator iterator(iterator_raw);
    git_config_entry* entry = nullptr;
    while (target.empty() && git_config_next(&entry, iterator.get()) == 0) {
      git_refspec* spec_raw = nullptr;
      if (git_refspec_parse(&spec_raw, entry->value, 1) != 0) continue;
      Refspec spec(spec_raw);
      if (!git_refspec_src_matches(spec.get(), merge->c_str())) continue;
      Buffer mapped;
      if (git_refspec_transform(&mapped.buf, spec.get(), merge->c_str()) == 0) target = std::string(mapped.view());
    }
    if (target.empty()) return nullptr;
  }
  git_reference* upstream = nullptr;
  if (git_reference_lookup(&upstream, repo, target.c_str()) != 0) return nullptr;
  return Reference(upstream);
}

}  // namespace mcpd::git
