#include "mcp_load_workload.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace mcpd::load {

namespace {

constexpr std::string_view kHole = "{k}";

std::vector<std::string> split_holes(std::string_view text) {
  std::vector<std::string> pieces;
  std::size_t start = 0;
  for (;;) {
    std::size_t at = text.find(kHole, start);
    if (at == std::string_view::npos) break;
    pieces.emplace_back(text.substr(start, at - start));
    start = at + kHole.size();
  }
  pieces.emplace_back(text.substr(start));
  return pieces;
}

std::string replace_holes(std::string_view text, std::string_view with) {
  std::string out;
  auto pieces = split_holes(text);
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    if (i) out += with;
    out += pieces[i];
  }
  return out;
}

void append_number(std::uint64_t value, std::string& out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, end);
}

// splitmix64: a fast, well-mixed hash of (seed, k); the draws need no state, so they are the same
// on both sides of a comparison and independent of the order responses arrive in.
std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

ArgsTemplate ArgsTemplate::parse(std::string_view text) {
  json probe;
  try {
    probe = json::parse(replace_holes(text, "0"));
  } catch (const json::exception& e) {
    throw std::invalid_argument("not JSON (with every {k} read as 0): " + std::string(e.what()));
  }
  if (!probe.is_object()) throw std::invalid_argument("must be a JSON object, got " + probe.dump());
  // Holes only inside strings: the text is JSON as it stands, so send it compact.
  try {
    json as_is = json::parse(text);
    return from_json(as_is);
  } catch (const json::exception&) {
  }
  // A hole stands for a number: keep the text, on one line (raw newlines are whitespace here, since
  // JSON strings cannot hold them).
  std::string one_line(text);
  std::replace(one_line.begin(), one_line.end(), '\n', ' ');
  std::replace(one_line.begin(), one_line.end(), '\r', ' ');
  return ArgsTemplate(split_holes(one_line));
}

ArgsTemplate ArgsTemplate::from_json(const json& args) {
  if (!args.is_object()) throw std::invalid_argument("arguments must be a JSON object, got " + args.dump());
  return ArgsTemplate(split_holes(args.dump()));
}

void ArgsTemplate::render(std::uint64_t k, std::string& out) const {
  out += pieces_[0];
  if (pieces_.size() == 1) return;
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, k);
  std::string_view number(buf, static_cast<std::size_t>(end - buf));
  for (std::size_t i = 1; i < pieces_.size(); ++i) {
    out += number;
    out += pieces_[i];
  }
}

std::string ArgsTemplate::render(std::uint64_t k) const {
  std::string out;
  render(k, out);
  return out;
}

Workload Workload::single(std::string tool, ArgsTemplate args) {
  Workload w;
  w.entries_.push_back({std::move(tool), std::move(args), 1});
  w.prefixes_.push_back(R"({"jsonrpc":"2.0","method":"tools/call","params":{"name":)" + json(w.entries_[0].tool).dump() +
                        R"(,"arguments":)");
  w.cumulative_ = {1.0};
  return w;
}

Workload Workload::from_mix(const json& mix, std::uint64_t seed) {
  if (!mix.is_array() || mix.empty())
    throw std::invalid_argument("a mix is a non-empty JSON array of {\"tool\", \"args\", \"weight\"}");
  Workload w;
  w.seed_ = seed;
  double total = 0;
  for (std::size_t i = 0; i < mix.size(); ++i) {
    const json& e = mix[i];
    std::string where = "mix entry " + std::to_string(i);
    if (!e.is_object()) throw std::invalid_argument(where + ": must be an object");
    for (const auto& [key, value] : e.items())
      if (key != "tool" && key != "args" && key != "weight")
        throw std::invalid_argument(where + ": unknown field '" + key + "' (fields: tool, args, weight)");
    if (!e.contains("tool") || !e["tool"].is_string() || e["tool"].get<std::string>().empty())
      throw std::invalid_argument(where + ": \"tool\" must be a non-empty string");
    MixEntry entry;
    entry.tool = e["tool"];
    try {
      if (!e.contains("args")) entry.args = ArgsTemplate();
      else if (e["args"].is_string()) entry.args = ArgsTemplate::parse(e["args"].get<std::string>());
      else entry.args = ArgsTemplate::from_json(e["args"]);
    } catch (const std::invalid_argument& error) {
      throw std::invalid_argument(where + ": \"args\" " + error.what());
    }
    if (e.contains("weight")) {
      if (!e["weight"].is_number() || !(e["weight"].get<double>() > 0))
        throw std::invalid_argument(where + ": \"weight\" must be a number > 0");
      entry.weight = e["weight"];
    }
    total += entry.weight;
    w.prefixes_.push_back(R"({"jsonrpc":"2.0","method":"tools/call","params":{"name":)" + json(entry.tool).dump() +
                          R"(,"arguments":)");
    w.cumulative_.push_back(total);
    w.entries_.push_back(std::move(entry));
  }
  for (auto& c : w.cumulative_) c /= total;
  w.cumulative_.back() = 1.0;
  return w;
}

std::size_t Workload::draw(std::uint64_t k) const {
  if (entries_.size() == 1) return 0;
  double u = static_cast<double>(mix64(seed_ * 0x9E3779B97F4A7C15ull ^ k) >> 11) * 0x1.0p-53;  // [0, 1)
  auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), u);
  return std::min<std::size_t>(static_cast<std::size_t>(it - cumulative_.begin()), entries_.size() - 1);
}

void Workload::append_request(std::uint64_t k, std::string& out) const {
  std::size_t i = draw(k);
  out += prefixes_[i];
  entries_[i].args.render(k, out);
  out += R"(},"id":)";
  append_number(k, out);
  out += "}\n";
}

std::string Workload::describe() const {
  if (entries_.size() == 1) return entries_[0].tool;
  std::string out = "mix of ";
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (i) out += ", ";
    char weight[32];
    std::snprintf(weight, sizeof weight, "%g", entries_[i].weight);
    out += entries_[i].tool + " x" + weight;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Response scanning

namespace {

/// A cursor over JSON text that reads the few values we want and skips the rest.
class Cursor {
 public:
  explicit Cursor(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  void ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  bool eat(char c) {
    ws();
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  char peek() {
    ws();
    return p_ < end_ ? *p_ : '\0';
  }

  /// At a '"': the raw text between the quotes (escapes left as they are).
  bool string(std::string_view& raw) {
    if (peek() != '"') return false;
    const char* start = ++p_;
    for (;;) {
      auto* q = static_cast<const char*>(std::memchr(p_, '"', static_cast<std::size_t>(end_ - p_)));
      if (!q) return false;
      // A quote is escaped when an odd number of backslashes precedes it.
      std::size_t slashes = 0;
      for (const char* b = q; b > start && b[-1] == '\\'; --b) ++slashes;
      p_ = q + 1;
      if (slashes % 2 == 0) {
        raw = std::string_view(start, static_cast<std::size_t>(q - start));
        return true;
      }
    }
  }

  bool integer(std::int64_t& value) {
    ws();
    auto [ptr, ec] = std::from_chars(p_, end_, value);
    if (ec != std::errc() || ptr == p_) return false;
    p_ = ptr;
    // A number with a fraction or exponent is not an integer id or code.
    if (p_ < end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) return false;
    return true;
  }

  bool literal(std::string_view word) {
    ws();
    if (static_cast<std::size_t>(end_ - p_) < word.size() || std::memcmp(p_, word.data(), word.size()) != 0)
      return false;
    p_ += word.size();
    return true;
  }

  /// Skips one value of any type.
  bool skip() {
    char c = peek();
    if (c == '"') {
      std::string_view ignored;
      return string(ignored);
    }
    if (c == '{' || c == '[') {
      int depth = 0;
      while (p_ < end_) {
        char d = *p_;
        if (d == '"') {
          std::string_view ignored;
          if (!string(ignored)) return false;
          continue;
        }
        ++p_;
        if (d == '{' || d == '[') ++depth;
        else if ((d == '}' || d == ']') && --depth == 0) return true;
      }
      return false;
    }
    // A number or a literal: up to the next delimiter.
    const char* start = p_;
    while (p_ < end_ && *p_ != ',' && *p_ != '}' && *p_ != ']' && *p_ != ' ' && *p_ != '\n' && *p_ != '\r' &&
           *p_ != '\t')
      ++p_;
    return p_ > start;
  }

  /// Walks an object, calling on_member(key) with the cursor at the member's value; on_member reads
  /// the value (returning false if it could not) or calls skip().
  template <class OnMember>
  bool object(OnMember on_member) {
    if (!eat('{')) return false;
    if (eat('}')) return true;
    for (;;) {
      std::string_view key;
      if (!string(key) || !eat(':')) return false;
      if (!on_member(key)) return false;
      if (eat(',')) continue;
      return eat('}');
    }
  }

 private:
  const char* p_;
  const char* end_;
};

}  // namespace

ScannedMessage scan_message(std::string_view line) {
  ScannedMessage m;
  Cursor c(line);
  bool ok = c.object([&](std::string_view key) {
    if (key == "id") {
      m.has_id = true;
      char first = c.peek();
      if (first == '"') return c.string(m.id_string);
      if (first == '-' || (first >= '0' && first <= '9')) return m.id_is_integer = c.integer(m.id);
      return c.skip();  // null (an error about an unreadable request)
    }
    if (key == "method") {
      m.has_method = true;
      return c.skip();
    }
    if (key == "error") {
      m.has_error = true;
      if (c.peek() != '{') return c.skip();
      return c.object([&](std::string_view k) {
        if (k == "code") {
          std::int64_t code = 0;
          if (!c.integer(code)) return c.skip();
          m.error_code = static_cast<int>(code);
          return true;
        }
        return c.skip();
      });
    }
    if (key == "result") {
      m.has_result = true;
      if (c.peek() != '{') return c.skip();
      return c.object([&](std::string_view k) {
        if (k == "isError") {
          if (c.literal("true")) return m.tool_error = true;
          return c.skip();
        }
        if (k == "_meta" && c.peek() == '{') {
          return c.object([&](std::string_view mk) {
            if (mk == "mcpd/cache" && c.peek() == '"') return c.string(m.cache);
            if (mk == "mcpd/path" && c.peek() == '"') return c.string(m.path);
            return c.skip();
          });
        }
        return c.skip();
      });
    }
    return c.skip();
  });
  m.valid = ok;
  return m;
}

}  // namespace mcpd::load
