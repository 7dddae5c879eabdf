// Opening repositories for a call, and the small libgit2 vocabulary every git tool uses: owning
// handles, error checks that become ToolErrors, revision lookup, and pathspecs.
//
// Repositories stay open between calls in a process-wide RepositoryPool, so a warm worker answers
// without re-reading config, refs and pack indexes each time. libgit2 re-reads what changed on disk
// (index, packed-refs, config, new packs) by file stamp, so a pooled repository never answers from
// stale state.
#pragma once

#include <git2.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tool.h"

namespace mcpd::git {

template <typename T, void (*Free)(T*)>
struct Freer {
  void operator()(T* p) const { Free(p); }
};
/// An owning libgit2 handle, freed with the matching git_*_free.
template <typename T, void (*Free)(T*)>
using Owned = std::unique_ptr<T, Freer<T, Free>>;

using Blame = Owned<git_blame, git_blame_free>;
using Blob = Owned<git_blob, git_blob_free>;
using BranchIterator = Owned<git_branch_iterator, git_branch_iterator_free>;
using Commit = Owned<git_commit, git_commit_free>;
using Diff = Owned<git_diff, git_diff_free>;
using Index = Owned<git_index, git_index_free>;
using Object = Owned<git_object, git_object_free>;
using Patch = Owned<git_patch, git_patch_free>;
using Pathspec = Owned<git_pathspec, git_pathspec_free>;
using PathspecMatches = Owned<git_pathspec_match_list, git_pathspec_match_list_free>;
using Reference = Owned<git_reference, git_reference_free>;
using Signature = Owned<git_signature, git_signature_free>;
using StatusList = Owned<git_status_list, git_status_list_free>;
using Tag = Owned<git_tag, git_tag_free>;
using Tree = Owned<git_tree, git_tree_free>;
using TreeEntry = Owned<git_tree_entry, git_tree_entry_free>;

/// A git_buf that frees itself.
struct Buffer {
  git_buf buf = GIT_BUF_INIT;
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { git_buf_dispose(&buf); }
  std::string_view view() const { return {buf.ptr == nullptr ? "" : buf.ptr, buf.size}; }
};

/// A git_strarray view of strings the caller keeps alive.
struct StringArray {
  std::vector<char*> pointers;
  git_strarray array{};
  explicit StringArray(const std::vector<std::string>& strings);
  explicit StringArray(std::vector<std::string>&&) = delete;  // would point into a temporary
  StringArray(const StringArray&) = delete;
  StringArray& operator=(const StringArray&) = delete;
  const git_strarray* get() const { return &array; }
};

/// libgit2's message for the last failure on this thread ("" if none).
std::string last_error();

/// Throws ToolError "<what>: <libgit2's message>" when `rc` is negative.
void check(int rc, const std::string& what);

/// Which git directory a repository was opened from, and which inode that directory had: a
/// directory deleted and re-created at the same path is another repository.
struct GitDirIdentity {
  std::string gitdir;  // with a trailing slash, as libgit2 spells it
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  bool operator==(const GitDirIdentity&) const = default;
};

/// One repository checked out of the RepositoryPool for the duration of a call. A git_repository
/// must not be used by two threads at once, so a lease is exclusive; destroying it gives the
/// repository back to the pool.
class Repository {
 public:
  /// Takes ownership of `repo`.
  Repository(git_repository* repo, GitDirIdentity identity, std::filesystem::path workdir,
             std::filesystem::path prefix);
  Repository(Repository&& other) noexcept;
  Repository& operator=(Repository&&) = delete;
  Repository(const Repository&) = delete;
  Repository& operator=(const Repository&) = delete;
  ~Repository();

  git_repository* get() const { return repo_; }
  const std::string& gitdir() const { return identity_.gitdir; }
  /// The top of the work tree, without a trailing slash; empty for a bare repository.
  const std::filesystem::path& workdir() const { return workdir_; }
  bool bare() const { return workdir_.empty(); }
  /// `repo_path` relative to the top of the work tree ("" at the top or in a bare repository): the
  /// directory relative `paths` are taken from.
  const std::filesystem::path& prefix() const { return prefix_; }

 private:
  git_repository* repo_;
  GitDirIdentity identity_;
  std::filesystem::path workdir_;
  std::filesystem::path prefix_;
};

/// Keeps opened repositories between calls, at most `max_idle` of them, closing the least recently
/// used first. One git directory may have several open (concurrent calls on the in-process path),
/// each used by one call at a time. A repository whose git directory was replaced since (another
/// inode at the same path) is closed rather than reused. Thread-safe.
class RepositoryPool {
 public:
  explicit RepositoryPool(std::size_t max_idle) : max_idle_(max_idle) {}
  ~RepositoryPool();
  RepositoryPool(const RepositoryPool&) = delete;
  RepositoryPool& operator=(const RepositoryPool&) = delete;

  /// An idle repository opened from exactly `identity`, now owned by the caller, or nullptr.
  git_repository* take(const GitDirIdentity& identity);
  /// Hands a repository back for later calls (closing the oldest idle one beyond max_idle).
  void give(git_repository* repo, const GitDirIdentity& identity);
  std::size_t idle() const;

 private:
  struct Entry {
    GitDirIdentity identity;
    git_repository* repo;
  };
  std::size_t max_idle_;
  mutable std::mutex mutex_;
  std::list<Entry> idle_;  // most recently given back first
};

/// The process-wide pool the tools use.
RepositoryPool& repository_pool();

/// Opens the repository `arguments.repo_path` names: resolved inside the roots, then found the way
/// git finds one from a directory (the directory, then its parents, never above the roots). With
/// `need_work_tree`, a bare repository is refused with a message naming `tool`. ToolErrors name the
/// problem: path outside the roots, not a directory, not in a git repository, bare.
Repository open_repository(const json& arguments, const ToolContext& context, std::string_view tool,
                           bool need_work_tree);

/// Turns `paths` (relative to repo_path, or absolute inside the work tree) into pathspecs relative
/// to the top of the work tree, as git does with paths relative to the current directory. "." at
/// the top means everything (an empty list). ToolError for a path that leaves the work tree.
std::vector<std::string> repository_pathspecs(const Repository& repo, const std::vector<std::string>& paths);

/// The same for one file path (`path` of git_show and git_blame).
std::string repository_path(const Repository& repo, const std::string& path, const char* argument);

/// True when a pathspec uses wildcards (git's glob characters), so it cannot be looked up directly.
bool has_wildcards(std::string_view pathspec);

/// The object `spec` names (any revision syntax git_revparse_single takes). ToolError "unknown
/// revision 'x' (`argument`)" when nothing matches, "ambiguous ..." or "invalid ..." otherwise, and a
/// clear message when it is HEAD of a branch without commits.
Object resolve_object(const Repository& repo, const std::string& spec, const char* argument);

/// The commit `spec` names (tags are peeled); ToolError when it names no commit.
Commit resolve_commit(const Repository& repo, const std::string& spec, const char* argument);

/// True when HEAD points at a branch that has no commits yet.
bool head_unborn(const Repository& repo);

/// The branch HEAD points at ("main"), also when it is unborn; nullopt when HEAD is detached.
std::optional<std::string> head_branch(const Repository& repo);

/// Hex id of an object.
std::string oid_string(const git_oid* oid);

/// The upstream of local branch `branch` (branch.<name>.remote and .merge, mapped through the
/// remote's first fetch refspec that matches, as git does), or nullptr when none is configured or
/// the remote-tracking reference does not exist. Used instead of git_branch_upstream, which in
/// libgit2 1.5 goes through git_remote_lookup: that matches config entries with a regex whose match
/// data the library never frees when an entry does not match, so each call leaked about 30 KiB per
/// config entry (a git worker serving git_status on a clone grew by 500 MiB in 4000 calls).
Reference upstream_of(git_repository* repo, git_reference* branch);

}  // namespace mcpd::git
