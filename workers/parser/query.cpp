#include "query.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <vector>

#include "tool.h"

namespace mcpd {

namespace {

std::string_view error_kind_token(std::string_view source, std::uint32_t offset) {
  if (offset >= source.size()) return {};
  std::string_view rest = source.substr(offset);
  if (rest.front() == '"') {
    auto close = rest.find('"', 1);
    return rest.substr(0, close == std::string_view::npos ? rest.size() : close + 1);
  }
  if (rest.front() == '@') rest.remove_prefix(1);
  std::size_t n = 0;
  while (n < rest.size() && (std::isalnum(static_cast<unsigned char>(rest[n])) || rest[n] == '_' ||
                             rest[n] == '.' || rest[n] == '-'))
    ++n;
  return rest.substr(0, n);
}

std::string query_error_message(std::string_view source, std::uint32_t offset, TSQueryError error) {
  std::uint32_t line = 1;
  std::uint32_t column = 1;
  for (std::uint32_t i = 0; i < offset && i < source.size(); ++i) {
    if (source[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  std::string token(error_kind_token(source, offset));
  std::string what;
  switch (error) {
    case TSQueryErrorNodeType:
      what = "invalid node type '" + token + "'";
      break;
    case TSQueryErrorField:
      what = "invalid field '" + token + "'";
      break;
    case TSQueryErrorCapture:
      what = "invalid capture '@" + token + "'";
      break;
    case TSQueryErrorStructure:
      what = "impossible pattern structure (no node can match it here)";
      break;
    case TSQueryErrorLanguage:
      what = "language version mismatch between the query library and the grammar";
      break;
    default: {
      std::string_view near = source.substr(std::min<std::size_t>(offset, source.size()), 20);
      what = "syntax error" + (near.empty() ? std::string(" at end of query")
                                             : " near '" + std::string(near.substr(0, near.find('\n'))) + "'");
      break;
    }
  }
  return "query error at line " + std::to_string(line) + ", column " + std::to_string(column) + " (offset " +
         std::to_string(offset) + "): " + what;
}

}  // namespace

void check_query_limits(std::string_view source, const QueryLimits& limits) {
  if (source.size() > limits.max_bytes)
    throw ToolError("query: " + std::to_string(source.size()) + " bytes, over parser.max_query_bytes (" +
                    std::to_string(limits.max_bytes) + ")");
  // The same lexing as tree-sitter's query parser: "..." strings with backslash escapes and ';'
  // comments to the end of the line hold no nesting.
  auto where = [source](std::size_t i) {
    std::string_view line = source.substr(0, i);
    std::size_t row = 1 + static_cast<std::size_t>(std::count(line.begin(), line.end(), '\n'));
    std::size_t column = i - (line.rfind('\n') == std::string_view::npos ? 0 : line.rfind('\n') + 1) + 1;
    return "line " + std::to_string(row) + ", column " + std::to_string(column) + " (offset " + std::to_string(i) + ")";
  };
  // The quantifiers (* + ?) in the suffix of the pattern that ends at `end` (exclusive): the
  // library reads quantifiers and captures after a pattern in any order, so `(a)* @c*` repeats twice.
  auto quantifiers = [source](std::size_t end) {
    int count = 0;
    while (end < source.size()) {
      char c = source[end];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++end;
      } else if (c == ';') {  // a comment: the library skips it between a pattern and its suffix too
        while (end < source.size() && source[end] != '\n') ++end;
      } else if (c == '*' || c == '+' || c == '?') {
        ++count;
        ++end;
      } else if (c == '@') {
        for (++end; end < source.size() && (std::isalnum(static_cast<unsigned char>(source[end])) ||
                                            source[end] == '_' || source[end] == '-' || source[end] == '.');
             ++end) {
        }
      } else {
        break;
      }
    }
    return count;
  };
  // Per open group: whether a quantified pattern lies inside it, and whether it holds a node at
  // all. tree-sitter 0.20.7 compiles a quantified group that holds another quantifier
  // (((comment)*)*) into a state machine it never finishes building, and crashes on a quantified
  // group that holds nothing but a predicate (((#eq?))?): refused here, before the library sees
  // them, since a hang holds its call until the deadline (and a legacy thread for good) and a crash
  // takes the process.
  struct Group {
    bool grouping = false;   // ( ( ... ) ), ( [ ... ] ), ( "x" ): no node name of its own
    bool predicate = false;  // (#name? ...), (name? ...)
    bool repeats_inside = false;
    bool holds_node = false;
  };
  std::vector<Group> open;
  auto nested = [&where](std::size_t i) {
    return ToolError("query repeats a group that itself holds a repeated pattern (a quantifier inside a "
                     "quantified group, or two quantifiers on one pattern) at " + where(i) +
                     "; tree-sitter cannot compile that in bounded time: repeat the inner pattern only");
  };
  // The first byte at or after `i` that is not blank or inside a ';' comment, as the library skips them.
  auto next_at = [source](std::size_t i) {
    while (i < source.size()) {
      char c = source[i];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++i;
      } else if (c == ';') {
        while (i < source.size() && source[i] != '\n') ++i;
      } else {
        break;
      }
    }
    return i;
  };
  auto next_char = [source, next_at](std::size_t i) {
    i = next_at(i);
    return i < source.size() ? source[i] : '\0';
  };
  // Whether the '(' before `i` opens a predicate: (#eq? ...), (.eq? ...), or, from the library's
  // older syntax, a name ending in '?' or '!' ((eq? ...), (set! ...)). Bytes past ASCII count as
  // name bytes, which can only make a name look like a predicate: that errs towards refusing.
  auto opens_predicate = [source, next_at](std::size_t i) {
    i = next_at(i);
    if (i >= source.size()) return false;
    if (source[i] == '#' || source[i] == '.') return true;
    auto name_byte = [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
             static_cast<unsigned char>(c) >= 0x80;
    };
    if (!name_byte(source[i])) return false;
    std::size_t end = i;
    while (end < source.size() && (name_byte(source[end]) || source[end] == '.' || source[end] == '?' || source[end] == '!'))
      ++end;
    return source[end - 1] == '?' || source[end - 1] == '!';
  };
  for (std::size_t i = 0; i < source.size(); ++i) {
    char c = source[i];
    if (c == '"') {
      for (++i; i < source.size() && source[i] != '"'; ++i)
        if (source[i] == '\\') ++i;
      int outer = quantifiers(i + 1);
      if (outer > 1) throw nested(i);
      if (!open.empty() && !open.back().predicate) {
        open.back().holds_node = true;  // an anonymous node, not a predicate's argument
        if (outer > 0) open.back().repeats_inside = true;
      }
    } else if (c == ';') {
      while (i < source.size() && source[i] != '\n') ++i;
    } else if (c == '(' || c == '[') {
      if (open.size() + 1 > limits.max_depth)
        throw ToolError("query nests deeper than " + std::to_string(limits.max_depth) + " levels at " + where(i) +
                        " (parser.max_query_depth)");
      char first = next_char(i + 1);
      Group group;
      group.predicate = c == '(' && opens_predicate(i + 1);
      group.grouping = c == '[' || first == '(' || first == '[' || first == '"' || first == ')';
      if (!group.predicate && !open.empty()) open.back().holds_node = true;
      open.push_back(group);
    } else if ((c == ')' || c == ']') && !open.empty()) {
      Group group = open.back();
      open.pop_back();
      int outer = quantifiers(i + 1);
      if (outer > 1 || (outer > 0 && group.repeats_inside)) throw nested(i);
      if (outer > 0 && group.grouping && !group.holds_node)
        throw ToolError("query repeats a group that holds no node (only predicates) at " + where(i) +
                        "; tree-sitter cannot compile that: put the predicate beside a node pattern");
      if (!open.empty() && (group.repeats_inside || outer > 0)) open.back().repeats_inside = true;
    }
  }
}

/// One text predicate of a pattern, in the semantics of tree-sitter's own bindings: "#eq?" and
/// friends must hold for every node of a quantified capture, "#any-eq?" for at least one.
struct Query::Predicate {
  enum class Kind { equal, match, any_of };
  Kind kind = Kind::equal;
  bool negated = false;
  bool every_node = true;
  std::uint32_t capture = 0;
  bool against_capture = false;  // #eq? @a @b
  std::uint32_t other_capture = 0;
  std::string value;                // #eq? @a "value"
  std::set<std::string, std::less<>> values;  // #any-of?: a set, so a long list costs a lookup per node
  std::unique_ptr<RE2> regex;       // #match?
};

Query::Query(const TSLanguage* language, std::string_view source) {
  std::uint32_t offset = 0;
  TSQueryError error = TSQueryErrorNone;
  query_ = ts_query_new(language, source.data(), static_cast<std::uint32_t>(source.size()), &offset, &error);
  if (query_ == nullptr) throw ToolError(query_error_message(source, offset, error));

  std::uint32_t patterns = ts_query_pattern_count(query_);
  predicates_.resize(patterns);
  select_adjacent_.assign(patterns, false);
  RE2::Options options;
  options.set_log_errors(false);
  try {
    for (std::uint32_t pattern = 0; pattern < patterns; ++pattern) {
      std::uint32_t count = 0;
      const TSQueryPredicateStep* steps = ts_query_predicates_for_pattern(query_, pattern, &count);
      std::uint32_t i = 0;
      while (i < count) {
        // One predicate: a string (its name), arguments, then a Done step.
        std::vector<TSQueryPredicateStep> args;
        std::string name;
        if (steps[i].type == TSQueryPredicateStepTypeString) {
          std::uint32_t length = 0;
          name = ts_query_string_value_for_id(query_, steps[i].value_id, &length);
          ++i;
        }
        while (i < count && steps[i].type != TSQueryPredicateStepTypeDone) args.push_back(steps[i++]);
        ++i;  // the Done step

        auto string_of = [&](const TSQueryPredicateStep& step) {
          std::uint32_t length = 0;
          const char* text = ts_query_string_value_for_id(query_, step.value_id, &length);
          return std::string(text, length);
        };
        auto fail = [&](const std::string& why) {
          throw ToolError("predicate #" + name + " in pattern " + std::to_string(pattern) + ": " + why);
        };

        std::string base = name;
        Predicate predicate;
        for (bool prefixed = true; prefixed;) {  // not-eq?, any-eq?, any-not-eq?, not-any-of?
          prefixed = false;
          if (base.rfind("not-", 0) == 0) {
            predicate.negated = prefixed = true;
            base = base.substr(4);
          } else if (base.rfind("any-", 0) == 0 && base != "any-of?") {
            predicate.every_node = false;
            prefixed = true;
            base = base.substr(4);
          }
        }
        if (base == "eq?" || base == "match?" || base == "any-of?") {
          if (args.empty() || args[0].type != TSQueryPredicateStepTypeCapture)
            fail("the first argument must be a capture");
          predicate.capture = args[0].value_id;
          if (base == "any-of?") {
            predicate.kind = Predicate::Kind::any_of;
            for (std::size_t k = 1; k < args.size(); ++k) {
              if (args[k].type != TSQueryPredicateStepTypeString) fail("the values must be strings");
              predicate.values.insert(string_of(args[k]));
            }
          } else {
            if (args.size() != 2) fail("expects two arguments");
            if (base == "eq?") {
              predicate.kind = Predicate::Kind::equal;
              if (args[1].type == TSQueryPredicateStepTypeCapture) {
                predicate.against_capture = true;
                predicate.other_capture = args[1].value_id;
              } else {
                predicate.value = string_of(args[1]);
              }
            } else {
              predicate.kind = Predicate::Kind::match;
              if (args[1].type != TSQueryPredicateStepTypeString) fail("the second argument must be a string");
              std::string pattern_text = string_of(args[1]);
              predicate.regex = std::make_unique<RE2>(pattern_text, options);
              if (!predicate.regex->ok())
                throw ToolError("invalid regular expression '" + pattern_text + "' in #" + name + ": " +
                                predicate.regex->error());
            }
          }
          predicates_[pattern].push_back(std::move(predicate));
        } else if (name == "strip!" && args.size() == 2 && args[0].type == TSQueryPredicateStepTypeCapture &&
                   args[1].type == TSQueryPredicateStepTypeString) {
          // Tags queries strip comment markers line by line, so ^ must match at every line start.
          auto regex = std::make_unique<RE2>("(?m)" + string_of(args[1]), options);
          if (regex->ok()) strip_[{pattern, args[0].value_id}] = std::move(regex);
        } else if (name == "select-adjacent!" || name == "set-adjacent!") {
          select_adjacent_[pattern] = true;
        } else {
          std::string shown = "#" + name;
          if (std::find(ignored_.begin(), ignored_.end(), shown) == ignored_.end()) ignored_.push_back(shown);
        }
      }
    }
  } catch (...) {
    ts_query_delete(query_);
    throw;
  }
}

Query::~Query() { ts_query_delete(query_); }

std::string_view Query::capture_name(std::uint32_t id) const {
  std::uint32_t length = 0;
  const char* name = ts_query_capture_name_for_id(query_, id, &length);
  return {name, length};
}

std::int64_t Query::capture_id(std::string_view name) const {
  for (std::uint32_t id = 0; id < ts_query_capture_count(query_); ++id)
    if (capture_name(id) == name) return id;
  return -1;
}

bool Query::accepts(const TSQueryMatch& match, std::string_view source) const {
  if (match.pattern_index >= predicates_.size()) return true;
  auto text_of = [&](TSNode node) -> std::string_view {
    std::uint32_t start = std::min<std::uint32_t>(ts_node_start_byte(node), static_cast<std::uint32_t>(source.size()));
    std::uint32_t end = std::min<std::uint32_t>(ts_node_end_byte(node), static_cast<std::uint32_t>(source.size()));
    return source.substr(start, end > start ? end - start : 0);
  };
  auto nodes_of = [&](std::uint32_t capture) {
    std::vector<TSNode> nodes;
    for (std::uint16_t i = 0; i < match.capture_count; ++i)
      if (match.captures[i].index == capture) nodes.push_back(match.captures[i].node);
    return nodes;
  };

  for (const Predicate& predicate : predicates_[match.pattern_index]) {
    std::vector<TSNode> nodes = nodes_of(predicate.capture);
    bool holds = true;
    if (predicate.against_capture) {
      std::vector<TSNode> others = nodes_of(predicate.other_capture);
      std::size_t pairs = std::min(nodes.size(), others.size());
      bool any = false;
      bool all = true;
      for (std::size_t k = 0; k < pairs; ++k) {
        bool same = (text_of(nodes[k]) == text_of(others[k])) != predicate.negated;
        any = any || same;
        all = all && same;
      }
      holds = predicate.every_node ? all : any;
    } else {
      auto test = [&](TSNode node) {
        std::string_view text = text_of(node);
        bool result = false;
        switch (predicate.kind) {
          case Predicate::Kind::equal:
            result = text == predicate.value;
            break;
          case Predicate::Kind::match:
            result = RE2::PartialMatch(re2::StringPiece(text.data(), text.size()), *predicate.regex);
            break;
          case Predicate::Kind::any_of:
            result = predicate.values.find(text) != predicate.values.end();
            break;
        }
        return result != predicate.negated;
      };
      // A capture absent from the match (an optional or zero-quantified node) constrains nothing.
      holds = predicate.every_node ? std::all_of(nodes.begin(), nodes.end(), test)
                                   : nodes.empty() || std::any_of(nodes.begin(), nodes.end(), test);
    }
    if (!holds) return false;
  }
  return true;
}

const RE2* Query::strip_regex(std::uint32_t pattern, std::uint32_t capture) const {
  auto it = strip_.find({pattern, capture});
  return it == strip_.end() ? nullptr : it->second.get();
}

bool Query::selects_adjacent(std::uint32_t pattern) const {
  return pattern < select_adjacent_.size() && select_adjacent_[pattern];
}

}  // namespace mcpd
