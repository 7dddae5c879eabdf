// What mcp-load sends and how it reads the answers: argument templates with `{k}` holes, a weighted
// mix of tools, request lines built by concatenation, and a scanner that pulls the few fields a load
// run needs out of a response line without building a JSON tree. Pure: no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace mcpd::load {

using json = nlohmann::json;

/// Tool arguments as JSON text with holes: every `{k}` is replaced by the call's sequence number.
/// Serialized once; rendering a call is appending the pieces and the number between them.
class ArgsTemplate {
 public:
  ArgsTemplate() : pieces_{"{}"} {}

  /// From JSON text as given on the command line. `{k}` may sit inside strings ("x{k}") or stand for
  /// a number ({"max_nodes": {k}}); the text must be a JSON object once every `{k}` reads 0.
  /// Throws std::invalid_argument saying what is wrong.
  static ArgsTemplate parse(std::string_view text);
  /// From a JSON object whose strings may contain `{k}` (a --mix entry's "args").
  static ArgsTemplate from_json(const json& args);

  /// Appends the arguments of call `k` to `out`.
  void render(std::uint64_t k, std::string& out) const;
  std::string render(std::uint64_t k) const;
  /// How many `{k}` the template has (0: every call sends the same arguments).
  std::size_t holes() const { return pieces_.size() - 1; }

 private:
  explicit ArgsTemplate(std::vector<std::string> pieces) : pieces_(std::move(pieces)) {}
  std::vector<std::string> pieces_;  // text around the holes: holes() + 1 pieces
};

/// One tool of a workload with its argument template and relative weight.
struct MixEntry {
  std::string tool;
  ArgsTemplate args;
  double weight = 1;
};

/// The calls of a run: one tool, or a weighted mix. Which entry call k uses is a pure function of
/// the seed and k, so two servers compared with the same seed get exactly the same calls.
class Workload {
 public:
  static Workload single(std::string tool, ArgsTemplate args);
  /// From a --mix document: [{"tool": "code_parse", "args": {...}, "weight": 3}, ...]; "args"
  /// defaults to {} and may also be template text; "weight" defaults to 1 and must be > 0.
  /// Throws std::invalid_argument naming the entry and field that is wrong.
  static Workload from_mix(const json& mix, std::uint64_t seed = 1);

  const std::vector<MixEntry>& entries() const { return entries_; }
  /// The entry call `k` uses.
  std::size_t draw(std::uint64_t k) const;
  /// Appends the whole tools/call request line of call `k` (id k, "\n" included) to `out`.
  void append_request(std::uint64_t k, std::string& out) const;
  /// "code_parse" or "mix of code_parse x3, code_outline x1".
  std::string describe() const;

 private:
  std::vector<MixEntry> entries_;
  std::vector<std::string> prefixes_;  // per entry: the request line up to the arguments
  std::vector<double> cumulative_;     // running sums of the weights, normalized to end at 1
  std::uint64_t seed_ = 1;
};

/// The fields of one message from the server that a load run uses. Views point into the line.
struct ScannedMessage {
  bool valid = false;  // a JSON object whose top level could be walked
  bool has_id = false;
  bool id_is_integer = false;
  std::int64_t id = 0;
  std::string_view id_string;  // the raw text of a string id, without quotes
  bool has_method = false;     // a request or notification from the server
  bool has_result = false;
  bool has_error = false;
  int error_code = 0;          // error.code when has_error
  bool tool_error = false;     // result.isError is true
  std::string_view cache;      // result._meta["mcpd/cache"] ("hit", "miss"), empty when absent
  std::string_view path;       // result._meta["mcpd/path"] ("pool", "legacy", "cache")
};

/// Walks the top level of a JSON-RPC message, and only the members it needs below it; everything
/// else is skipped by matching brackets and quotes, so a 4 MB result costs a memchr, not a parse.
/// Malformed text gives valid = false (never throws).
ScannedMessage scan_message(std::string_view line);

}  // namespace mcpd::load
