#include "roots.h"

#include <cstring>
#include <fstream>
#include <system_error>

#include "tool.h"

namespace mcpd {

namespace fs = std::filesystem;

bool is_within(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (r->empty()) continue;  // trailing separator of the root
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

fs::path resolve_in_roots(const std::string& path, const std::vector<fs::path>& roots) {
  if (path.empty()) throw ToolError("path is empty");
  if (roots.empty()) throw ToolError("no roots are configured, so no file can be read");
  if (path.find('\0') != std::string::npos) throw ToolError("path contains a NUL byte");
  fs::path candidate(path);
  if (candidate.is_relative()) candidate = roots.front() / candidate;
  std::error_code ec;
  fs::path canonical = fs::canonical(candidate, ec);
  if (ec) {
    // Say "outside the roots" before "missing" when the lexical path already escapes them, so
    // probing for files outside the roots learns nothing.
    fs::path lexical = candidate.lexically_normal();
    bool inside = false;
    for (const auto& root : roots) inside = inside || is_within(lexical, root);
    if (!inside) throw ToolError("path '" + path + "' is outside the allowed roots");
    throw ToolError("path '" + path + "' does not exist");
  }
  for (const auto& root : roots)
    if (is_within(canonical, root)) return canonical;
  throw ToolError("path '" + path + "' is outside the allowed roots");
}

std::string read_text_file(const fs::path& path, std::uint64_t max_bytes) {
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) throw ToolError("file '" + path.string() + "' does not exist");
  if (!fs::is_regular_file(status)) throw ToolError("'" + path.string() + "' is not a regular file");
  auto size = fs::file_size(path, ec);
  if (ec) throw ToolError("cannot read '" + path.string() + "': " + ec.message());
  if (size > max_bytes)
    throw ToolError("file '" + path.string() + "' is " + std::to_string(size) +
                    " bytes, over the limit of " + std::to_string(max_bytes) + " (max_file_bytes)");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ToolError("cannot open '" + path.string() + "': " + std::strerror(errno));
  std::string data(size, '\0');
  in.read(data.data(), static_cast<std::streamsize>(size));
  data.resize(static_cast<std::size_t>(in.gcount()));
  std::size_t probe = std::min<std::size_t>(data.size(), 8192);
  if (std::memchr(data.data(), '\0', probe) != nullptr)
    throw ToolError("file '" + path.string() + "' looks binary (it contains NUL bytes)");
  return data;
}

}  // namespace mcpd
