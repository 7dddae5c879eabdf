// Keeps file access inside the configured roots. Every tool that takes a path resolves it here
// first, so a symlink or a "../" cannot lead a tool outside what the user allowed.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace mcpd {

/// Resolves `path` (absolute, or relative to the first root) to a canonical path that exists and
/// lies inside one of `roots`; throws ToolError naming the path otherwise. Symlinks are resolved
/// before the check, so a link pointing out of the roots is refused.
std::filesystem::path resolve_in_roots(const std::string& path,
                                       const std::vector<std::filesystem::path>& roots);

/// True when canonical `path` equals `root` or lies below it.
bool is_within(const std::filesystem::path& path, const std::filesystem::path& root);

/// Reads a whole regular file of at most `max_bytes`; throws ToolError if it is missing, not a
/// regular file, larger than the limit, or looks binary (a NUL byte in its first 8 KiB, as git and
/// ripgrep decide).
std::string read_text_file(const std::filesystem::path& path, std::uint64_t max_bytes);

}  // namespace mcpd
