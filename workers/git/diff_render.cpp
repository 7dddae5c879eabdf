#include "diff_render.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "output.h"

namespace mcpd::git {

namespace {

constexpr std::size_t kProgressEvery = 64;  // files
// Keys, numbers and punctuation of one file entry besides its paths, at most (20-digit counts), in
// the structured JSON and in the whole result.
constexpr OutputCost kFileEntryOverhead{128, 2 * 128 + 32};

json file_entry(const git_diff_delta* delta, std::size_t additions, std::size_t deletions) {
  json entry = {{"path", valid_utf8(delta->new_file.path)}, {"status", delta_status(delta->status)}};
  if (delta->status == GIT_DELTA_RENAMED || delta->status == GIT_DELTA_COPIED)
    entry["old_path"] = valid_utf8(delta->old_file.path);
  if ((delta->flags & GIT_DIFF_FLAG_BINARY) != 0) {
    entry["binary"] = true;
  } else {
    entry["additions"] = additions;
    entry["deletions"] = deletions;
  }
  return entry;
}

// git's own similarity estimate (diffcore-delta.c), so renames are paired, and their "similarity
// index" printed, as git does; libgit2's default metric samples differently and disagrees by tens
// of percent on small files. Content is cut into chunks at each newline or every 64 bytes, each
// chunk hashed; the similarity of two files is the bytes their chunk hashes share over the larger
// size, on git's 0..60000 scale, shown as a percentage.
struct SpanHashes {
  std::uint64_t size = 0;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> counts;  // chunk hash -> bytes, sorted by hash
};

constexpr std::uint32_t kHashBase = 107927;
constexpr std::uint64_t kMaxScore = 60000;

SpanHashes* span_hashes(const char* data, std::size_t size) {
  auto* out = new SpanHashes;
  out->size = size;
  bool text = std::memchr(data, '\0', std::min<std::size_t>(size, 8000)) == nullptr;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> chunks;
  std::uint32_t accum1 = 0, accum2 = 0, n = 0;
  for (std::size_t i = 0; i < size; ++i) {
    auto c = static_cast<unsigned char>(data[i]);
    if (text && c == '\r' && i + 1 < size && data[i + 1] == '\n') continue;  // CRLF counts as LF
    std::uint32_t old1 = accum1;
    accum1 = (accum1 << 7) ^ (accum2 >> 25);
    accum2 = (accum2 << 7) ^ (old1 >> 25);
    accum1 += c;
    if (++n < 64 && c != '\n') continue;
    chunks.emplace_back((accum1 + accum2 * 0x61) % kHashBase, n);
    n = accum1 = accum2 = 0;
  }
  if (n > 0) chunks.emplace_back((accum1 + accum2 * 0x61) % kHashBase, n);
  std::sort(chunks.begin(), chunks.end());
  for (const auto& [hash, bytes] : chunks) {
    if (!out->counts.empty() && out->counts.back().first == hash) out->counts.back().second += bytes;
    else out->counts.emplace_back(hash, bytes);
  }
  return out;
}

// Opens a work-tree file for its signature without following any symbolic link between the top of
// the work tree and the file: libgit2 hands over files that looked regular through stat(), and a
// link swapped in (for the file or a directory above it) must not lead outside the work tree.
int open_beneath(const git_diff_file* file, const char* path) {
  std::string_view full(path), relative(file->path);
  if (full.size() > relative.size() && full.substr(full.size() - relative.size()) == relative) {
    std::string top(full.substr(0, full.size() - relative.size()));
    int dir = ::open(top.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
      struct open_how how {};
      how.flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC;
      how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
      long fd = ::syscall(SYS_openat2, dir, file->path, &how, sizeof how);
      int error = errno;
      ::close(dir);
      if (fd >= 0 || error != ENOSYS) return static_cast<int>(fd);
    }
  }
  return ::open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);  // kernels without openat2
}

int file_signature(void** out, const git_diff_file* file, const char* path, void*) {
  std::string data;
  int fd = open_beneath(file, path);
  struct stat st {};
  if (fd >= 0 && ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    char buffer[65536];
    for (;;) {
      ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      data.append(buffer, static_cast<std::size_t>(n));
    }
  }
  if (fd >= 0) ::close(fd);
  // A file that cannot be read this way pairs with nothing (an empty signature scores 0).
  *out = span_hashes(data.data(), data.size());
  return 0;
}

int buffer_signature(void** out, const git_diff_file*, const char* buffer, std::size_t size, void*) {
  *out = span_hashes(buffer, size);
  return 0;
}

void free_signature(void* signature, void*) { delete static_cast<SpanHashes*>(signature); }

int similarity(int* score, void* a_signature, void* b_signature, void*) {
  const auto& a = *static_cast<const SpanHashes*>(a_signature);
  const auto& b = *static_cast<const SpanHashes*>(b_signature);
  std::uint64_t max_size = std::max(a.size, b.size);
  std::uint64_t copied = 0;
  auto ia = a.counts.begin(), ib = b.counts.begin();
  while (ia != a.counts.end() && ib != b.counts.end()) {
    if (ia->first < ib->first) {
      ++ia;
    } else if (ib->first < ia->first) {
      ++ib;
    } else {
      copied += std::min(ia->second, ib->second);
      ++ia;
      ++ib;
    }
  }
  std::uint64_t git_score = max_size == 0 ? 0 : copied * kMaxScore / max_size;
  *score = static_cast<int>(git_score * 100 / kMaxScore);
  return 0;
}

git_diff_similarity_metric git_metric = {file_signature, buffer_signature, free_signature, similarity, nullptr};

Tree subtree(git_repository* repo, const git_tree_entry* entry) {
  git_tree* tree = nullptr;
  check(git_tree_lookup(&tree, repo, git_tree_entry_id(entry)), "cannot read tree " + oid_string(git_tree_entry_id(entry)));
  return Tree(tree);
}

// Every file path under `entry` (the entry itself when it is not a tree).
void add_all(git_repository* repo, const git_tree_entry* entry, const std::string& path, std::vector<std::string>& out) {
  if (git_tree_entry_type(entry) != GIT_OBJECT_TREE) {
    out.push_back(path);
    return;
  }
  Tree tree = subtree(repo, entry);
  for (std::size_t i = 0; i < git_tree_entrycount(tree.get()); ++i) {
    const git_tree_entry* child = git_tree_entry_byindex(tree.get(), i);
    add_all(repo, child, path + "/" + git_tree_entry_name(child), out);
  }
}

void compare_trees(git_repository* repo, const git_tree* a, const git_tree* b, const std::string& prefix,
                   std::vector<std::string>& out) {
  std::size_t a_count = a != nullptr ? git_tree_entrycount(a) : 0;
  std::size_t b_count = b != nullptr ? git_tree_entrycount(b) : 0;
  for (std::size_t i = 0; i < a_count; ++i) {
    const git_tree_entry* ea = git_tree_entry_byindex(a, i);
    const char* name = git_tree_entry_name(ea);
    const git_tree_entry* eb = b != nullptr ? git_tree_entry_byname(b, name) : nullptr;
    std::string path = prefix + name;
    if (eb == nullptr) {
      add_all(repo, ea, path, out);  // deleted
    } else if (git_tree_entry_filemode(ea) == git_tree_entry_filemode(eb) &&
               git_oid_equal(git_tree_entry_id(ea), git_tree_entry_id(eb))) {
      continue;  // identical, subtrees included
    } else if (git_tree_entry_type(ea) == GIT_OBJECT_TREE && git_tree_entry_type(eb) == GIT_OBJECT_TREE) {
      Tree sa = subtree(repo, ea), sb = subtree(repo, eb);
      compare_trees(repo, sa.get(), sb.get(), path + "/", out);
    } else {  // modified, or a type change (a file on one side, a directory on the other)
      add_all(repo, ea, path, out);
      add_all(repo, eb, path, out);
    }
  }
  for (std::size_t i = 0; i < b_count; ++i) {
    const git_tree_entry* eb = git_tree_entry_byindex(b, i);
    if (a == nullptr || git_tree_entry_byname(a, git_tree_entry_name(eb)) == nullptr)
      add_all(repo, eb, prefix + git_tree_entry_name(eb), out);  // added
  }
}

}  // namespace

std::uint16_t abbrev_length(git_repository* repo) {
  git_config* config = nullptr;
  if (git_repository_config_snapshot(&config, repo) == 0) {
    git_buf value = GIT_BUF_INIT;
    bool set = git_config_get_string_buf(&value, config, "core.abbrev") == 0;
    bool automatic = set && std::string_view(value.ptr, value.size) == "auto";
    git_buf_dispose(&value);
    git_config_free(config);
    if (set && !automatic) return 0;
  }
  git_error_clear();
  // git's approximate_object_count: the objects in the pack indexes (loose ones are not counted).
  std::uint64_t count = 0;
  std::error_code ec;
  std::filesystem::path packs = std::filesystem::path(git_repository_commondir(repo)) / "objects" / "pack";
  for (const auto& entry : std::filesystem::directory_iterator(packs, ec)) {
    if (entry.path().extension() != ".idx") continue;
    unsigned char header[8 + 256 * 4];
    int fd = ::open(entry.path().c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    ssize_t n = ::pread(fd, header, sizeof header, 0);
    ::close(fd);
    if (n != static_cast<ssize_t>(sizeof header)) continue;
    bool v2 = header[0] == 0xff && header[1] == 't' && header[2] == 'O' && header[3] == 'c';
    const unsigned char* last = header + (v2 ? 8 : 0) + 255 * 4;  // the fan-out table's last entry
    count += (std::uint64_t{last[0]} << 24) | (std::uint64_t{last[1]} << 16) | (std::uint64_t{last[2]} << 8) | last[3];
  }
  int bits = 1;  // git: msb(count) + 1
  for (std::uint64_t x = count; x >>= 1;) ++bits;
  return static_cast<std::uint16_t>(std::max(7, (bits + 1) / 2));
}

std::vector<std::string> changed_paths(git_repository* repo, const git_tree* old_tree, const git_tree* new_tree) {
  std::vector<std::string> out;
  if (old_tree != nullptr && new_tree != nullptr && git_oid_equal(git_tree_id(old_tree), git_tree_id(new_tree)))
    return out;
  compare_trees(repo, old_tree, new_tree, "", out);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Diff diff_trees(git_repository* repo, const git_tree* old_tree, const git_tree* new_tree,
                const git_diff_options& options) {
  std::vector<std::string> paths = changed_paths(repo, old_tree, new_tree);
  if (options.pathspec.count > 0 && !paths.empty()) {
    git_pathspec* raw = nullptr;
    check(git_pathspec_new(&raw, &options.pathspec), "invalid paths");
    Pathspec filter(raw);
    std::erase_if(paths, [&](const std::string& p) { return git_pathspec_matches_path(filter.get(), 0, p.c_str()) != 1; });
  }
  if (paths.empty()) return Diff();
  StringArray only(paths);
  git_diff_options narrowed = options;
  narrowed.pathspec = *only.get();
  narrowed.flags |= GIT_DIFF_DISABLE_PATHSPEC_MATCH;
  git_diff* diff = nullptr;
  check(git_diff_tree_to_tree(&diff, repo, const_cast<git_tree*>(old_tree), const_cast<git_tree*>(new_tree), &narrowed),
        "cannot diff two trees");
  return Diff(diff);
}

git_diff_options diff_options(std::uint32_t context_lines, const StringArray& paths) {
  git_diff_options options = GIT_DIFF_OPTIONS_INIT;
  options.context_lines = context_lines;
  options.interhunk_lines = 0;
  options.flags = GIT_DIFF_INCLUDE_TYPECHANGE | GIT_DIFF_INDENT_HEURISTIC;  // git diff's default heuristic
  options.pathspec = *paths.get();
  return options;
}

void find_renames(git_diff* diff) {
  if (diff == nullptr) return;
  git_diff_find_options find = GIT_DIFF_FIND_OPTIONS_INIT;
  find.flags = GIT_DIFF_FIND_RENAMES;
  find.metric = &git_metric;
  check(git_diff_find_similar(diff, &find), "cannot detect renames");
}

RenderedDiff render_diff(git_diff* diff, OutputBudget& budget, bool with_text, const ToolContext& context) {
  RenderedDiff out;
  if (diff == nullptr) return out;
  std::size_t count = git_diff_num_deltas(diff);
  out.files_changed = count;

  // The file list comes first: reserve what it can cost at most, so a long patch cannot crowd it
  // out, and give the text only the rest, so the two together stay within the budget.
  OutputCost list_bytes;
  for (std::size_t i = 0; i < count; ++i) {
    const git_diff_delta* delta = git_diff_get_delta(diff, i);
    list_bytes = list_bytes + kFileEntryOverhead + string_cost(valid_utf8(delta->new_file.path)) +
                 string_cost(valid_utf8(delta->old_file.path));
  }
  OutputCost room = budget.remaining();
  OutputBudget list_budget(list_bytes.fits_in(room) ? list_bytes : room);
  OutputBudget text_budget(room.minus(list_bytes));

  for (std::size_t i = 0; i < count; ++i) {
    context.check_cancelled();
    if (count > kProgressEvery && i % kProgressEvery == 0)
      context.report(static_cast<double>(i), static_cast<double>(count), "diffing files");
    git_patch* raw = nullptr;
    check(git_patch_from_diff(&raw, diff, i), "cannot compute the diff of a file");
    Patch patch(raw);
    std::size_t context_lines = 0, additions = 0, deletions = 0;
    if (patch) check(git_patch_line_stats(&context_lines, &additions, &deletions, patch.get()), "cannot count lines");
    const git_diff_delta* delta = patch ? git_patch_get_delta(patch.get()) : git_diff_get_delta(diff, i);
    out.additions += additions;
    out.deletions += deletions;

    if (!list_budget.truncated()) {
      json entry = file_entry(delta, additions, deletions);
      if (list_budget.take_element(entry)) out.files.push_back(std::move(entry));
    }

    if (with_text && patch && !text_budget.truncated()) {
      Buffer text;
      check(git_patch_to_buf(&text.buf, patch.get()), "cannot print the diff of a file");
      std::string piece = valid_utf8(text.view());
      OutputCost cost = string_cost(piece).minus(string_cost(""));  // one part of a string: no quotes
      if (text_budget.take(cost)) {
        out.text += piece;
      } else {
        std::size_t keep = fitting_prefix(piece, text_budget.remaining());
        text_budget.take_fitted(string_cost(std::string_view(piece).substr(0, keep)).minus(string_cost("")));
        out.text.append(piece, 0, keep);
      }
    }
  }
  out.truncated = list_budget.truncated() || text_budget.truncated();
  budget.take_fitted(list_budget.used() + text_budget.used());
  if (out.truncated) budget.mark_truncated();
  return out;
}

json file_stats_schema() {
  return {{"type", "object"},
          {"description", "One changed file, with its line counts as git diff --numstat gives them."},
          {"properties",
           {{"path", {{"type", "string"}, {"description", "Path relative to the top of the work tree (the new path of a rename)."}}},
            {"old_path", {{"type", "string"}, {"description", "The path before a rename or copy."}}},
            {"status",
             {{"type", "string"},
              {"description", "added, deleted, modified, renamed, copied, typechange, unreadable or conflicted."}}},
            {"additions", {{"type", "integer"}, {"description", "Lines added (absent for a binary file)."}}},
            {"deletions", {{"type", "integer"}, {"description", "Lines deleted (absent for a binary file)."}}},
            {"binary", {{"type", "boolean"}, {"description", "True for a binary file: no line counts and no text."}}}}},
          {"required", {"path", "status"}}};
}

}  // namespace mcpd::git
