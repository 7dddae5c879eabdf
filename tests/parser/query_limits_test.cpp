// code_query's bounds on the query itself, checked before tree-sitter's query parser (which
// recurses once per nesting level) sees it: nesting depth and size, each a `parser` setting, with
// errors naming them; brackets inside strings and comments do not count. And the checker process
// that compiles a new query first, so a query the library crashes or hangs on costs only it.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "languages.h"
#include "parser_tools.h"
#include "processes.h"
#include "query.h"

namespace {

using mcpd::json;
using mcpd::ToolContext;
using mcpd::ToolError;

struct Tools {
  std::vector<mcpd::Tool> tools;
  explicit Tools(const json& settings = json::object()) : tools(mcpd::parser_tools(settings)) {}
  /// The code_query result, or the ToolError message as {"error": ...}.
  json query(const std::string& language, const std::string& code, const std::string& query) const {
    for (const auto& t : tools)
      if (t.name == "code_query") {
        ToolContext context;
        try {
          return t.handler({{"language", language}, {"code", code}, {"query", query}}, context).structured;
        } catch (const ToolError& e) {
          return {{"error", e.what()}};
        }
      }
    throw std::runtime_error("no code_query");
  }
};

/// (array (array ... (number) @n ...)) nested `depth` arrays deep.
std::string nested_arrays(int depth) {
  std::string q;
  for (int i = 0; i < depth; ++i) q += "(array ";
  q += "(number) @n";
  for (int i = 0; i < depth; ++i) q += ")";
  return q;
}

std::string nested_code(int depth) { return std::string(depth, '[') + "1" + std::string(depth, ']'); }

TEST_CASE("a query nested deeper than max_query_depth is refused before tree-sitter parses it") {
  Tools tools;
  Tools roomy(json{{"max_query_bytes", 8 << 20}});  // so that the depth is what stops a deep one
  for (std::size_t depth : {20000u, 1000000u}) {
    CAPTURE(depth);
    const Tools& t = depth > 30000 ? roomy : tools;
    json out = t.query("json", "[1]", std::string(depth, '(') + std::string(depth, ')'));
    REQUIRE(out.contains("error"));
    CHECK(out["error"].get<std::string>().find("query nests deeper than 64 levels at line 1, column 65 (offset 64) "
                                               "(parser.max_query_depth)") == 0);
    out = t.query("json", "[1]", std::string(depth / 2, '[') + "(number)");
    CHECK(out["error"].get<std::string>().find("parser.max_query_depth") != std::string::npos);
  }
  // 63 arrays and the number inside them: 64 levels, within the bound, and it matches.
  json out = tools.query("json", nested_code(63), nested_arrays(63));
  REQUIRE(out.contains("captures"));
  CHECK(out["match_count"] == 1);
  CHECK(out["captures"][0]["text"] == "1");
  out = tools.query("json", nested_code(64), nested_arrays(64));
  CHECK(out["error"].get<std::string>().find("parser.max_query_depth") != std::string::npos);
}

TEST_CASE("brackets in strings and comments are not nesting") {
  Tools tools;
  std::string parens(5000, '(');
  std::string query = "((string) @s (#not-eq? @s \"" + parens + "\\\"[\"))\n; " + parens + "\n";
  json out = tools.query("json", "[\"x\", 2]", query);
  REQUIRE(out.contains("captures"));
  CHECK(out["match_count"] == 1);
}

TEST_CASE("a query over max_query_bytes is refused naming the setting") {
  Tools tools;
  std::string big = "(number) @n ";
  while (big.size() <= (64 << 10)) big += "; padding padding padding padding\n";
  json out = tools.query("json", "[1]", big);
  CHECK(out["error"].get<std::string>().find(" bytes, over parser.max_query_bytes (65536)") != std::string::npos);
  Tools roomy(json{{"max_query_bytes", 1 << 20}});
  CHECK(roomy.query("json", "[1]", big)["match_count"] == 1);
}

TEST_CASE("#any-of? with thousands of values matches as a set") {
  Tools tools;
  std::string values;
  for (int i = 0; i < 5000; ++i) values += " \"v" + std::to_string(2 * i) + "\"";  // the even ones
  std::string code = "[";
  for (int i = 0; i < 900; ++i) code += std::string(i ? "," : "") + "\"v" + std::to_string(i) + "\"";
  code += "]";
  json out = tools.query("json", code, "((string_content) @s (#any-of? @s" + values + "))");
  REQUIRE(out.contains("match_count"));
  CHECK(out["match_count"] == 450);
  CHECK(out["captures"][1]["text"] == "v2");
  out = tools.query("json", code, "((string_content) @s (#not-any-of? @s" + values + "))");
  CHECK(out["match_count"] == 450);
  CHECK(out["captures"][1]["text"] == "v3");
}

TEST_CASE("a quantified group holding another quantifier is refused before tree-sitter compiles it") {
  Tools tools;
  // tree-sitter 0.20.7 never finishes compiling these; the call would hold its thread to the deadline.
  for (const char* query : {"((comment)*)*", "((comment)+)+", "[(comment)* (identifier)]*", "((\"x\")?)*",
                            "((comment) * ) *", "(comment)* @doc*", "(comment)+ @a ? @b"}) {
    CAPTURE(query);
    CHECK(tools.query("c", "// a\nint x;", query)["error"].get<std::string>().find(
              "query repeats a group that itself holds a repeated pattern") == 0);
  }
  // A repeated group of predicates alone crashes the library's query compiler.
  for (const char* query : {"((#match?))?", "((#eq? @a \"x\"))*", "[(#foo?)]+"}) {
    CAPTURE(query);
    CHECK(tools.query("c", "int x;", query)["error"].get<std::string>().find(
              "query repeats a group that holds no node") == 0);
  }
  CHECK_FALSE(tools.query("c", "int x;", "((identifier) @a (#match? @a \"x\"))?").contains("error"));
  // One level of repetition, anywhere, is fine; so is a repeated pattern in an unrepeated group.
  CHECK(tools.query("c", "// a\n// b\nint x;", "(comment)* @c")["match_count"].get<int>() >= 1);
  CHECK_FALSE(tools.query("c", "// a\nint x;", "((comment)* @c (declaration))").contains("error"));
  CHECK_FALSE(tools.query("c", "// a\nint x;", "((comment) @c (declaration))*").contains("error"));
}

TEST_CASE("a query that crashes tree-sitter's query compiler is refused, and the process that asked lives") {
  // Found by fuzz_query: a quantified group around an old-style predicate (a name ending in '?' or
  // '!', without the '#') makes libtree-sitter 0.20.7 read through a null pointer while compiling.
  // The probe compiles it in a child, which dies of it; this process (a worker, or mcpd in legacy
  // mode) carries on. It is called directly here, because code_query's own check refuses these
  // shapes before the probe: the probe is for the ones no check knows yet.
  for (const char* language : {"c", "cpp", "javascript", "python"})
    for (const char* query : {"((a?))?", "((ou-match?))?tmma"}) {
      CAPTURE(language);
      CAPTURE(query);
      CHECK_THROWS_WITH_AS(mcpd::probe_query_compile(mcpd::require_language(language).grammar(), query, {}),
                           doctest::Contains("query: tree-sitter's query compiler crashed on it (SIGSEGV"), ToolError);
    }
  CHECK_NOTHROW(mcpd::probe_query_compile(mcpd::require_language("c").grammar(), "((a?))", {}));

  // Through code_query, the check names the shape; the old-style predicate counts as a predicate,
  // behind blanks and comments too.
  Tools tools;
  for (const char* query : {"((a?))?", "((ou-match?))?tmma", "((a!))*", "((a?) (b?))+", "(( ;c\n x.y? ))?",
                            "((.eq? @a @b))+", "((identifier) ;c\n*) ;c\n*"}) {
    CAPTURE(query);
    std::string error = tools.query("c", "int x;", query).value("error", "");
    CHECK_MESSAGE((error.find("query repeats a group that holds no node") == 0 ||
                   error.find("query repeats a group that itself holds a repeated pattern") == 0),
                  error);
  }
  CHECK_FALSE(tools.query("c", "int x;", "((identifier) @i (eq? @i \"x\"))?").contains("error"));
  CHECK_FALSE(tools.query("c", "int x;", "((a?))").contains("error"));
}

TEST_CASE("compiling a query apart is bounded in time, and a query that compiled is not compiled apart again") {
  const TSLanguage* c = mcpd::require_language("c").grammar();
  mcpd::QueryLimits limits;
  limits.compile_timeout_ms = 100;
  // The library never finishes compiling a repetition inside a repetition (check_query_limits
  // refuses it first in code_query; here the probe alone faces it).
  CHECK_THROWS_WITH_AS(mcpd::probe_query_compile(c, "((comment)*)*", limits),
                       "query: compiling it took longer than parser.query_compile_timeout_ms (100 ms); make it "
                       "smaller or simpler",
                       ToolError);
  // A query that takes a while to compile: once it passed, it passes at once, even with a timeout
  // no child could meet; a query of other text (one more space) is compiled apart again.
  std::string slow;
  for (int i = 0; i < 3000; ++i) slow += "(function_definition declarator: (function_declarator (identifier) @f" + std::to_string(i % 7) + "))\n";
  limits.compile_timeout_ms = 60000;
  mcpd::probe_query_compile(c, slow, limits);
  limits.compile_timeout_ms = 1;
  CHECK_NOTHROW(mcpd::probe_query_compile(c, slow, limits));
  CHECK_THROWS_WITH_AS(mcpd::probe_query_compile(c, slow + " ", limits), doctest::Contains("took longer"), ToolError);
  // With a cache of no bytes nothing is remembered.
  limits.compile_timeout_ms = 60000;
  limits.compile_cache_bytes = 0;
  std::string other = slow + "  ";
  mcpd::probe_query_compile(c, other, limits);
  limits.compile_timeout_ms = 1;
  CHECK_THROWS_WITH_AS(mcpd::probe_query_compile(c, other, limits), doctest::Contains("took longer"), ToolError);
}

/// Pids of this process's live children.
std::vector<pid_t> children() {
  std::vector<pid_t> out;
  for (const auto& child : mcpd::test::children_of(::getpid()))
    if (child.state != 'Z') out.push_back(child.pid);
  return out;
}

TEST_CASE("a checker killed from outside is replaced, and its death is not blamed on the next query") {
  const TSLanguage* c = mcpd::require_language("c").grammar();
  mcpd::probe_query_compile(c, "(identifier) @first", {});
  std::vector<pid_t> before = children();
  REQUIRE(before.size() == 1);  // the checker, and no process per query
  mcpd::probe_query_compile(c, "(identifier) @second", {});
  CHECK(children() == before);
  REQUIRE(::kill(before[0], SIGKILL) == 0);
  CHECK_NOTHROW(mcpd::probe_query_compile(c, "(identifier) @third", {}));
  std::vector<pid_t> after = children();
  REQUIRE(after.size() == 1);
  CHECK(after[0] != before[0]);
  // And a crash still counts as one.
  CHECK_THROWS_WITH_AS(mcpd::probe_query_compile(c, "((a?))?", {}), doctest::Contains("crashed on it (SIGSEGV"),
                       ToolError);
}

TEST_CASE("the query bounds are settings, checked at start") {
  Tools shallow(json{{"max_query_depth", 2}});
  CHECK(shallow.query("json", "[[1]]", "(array (number) @n)")["match_count"] == 1);
  CHECK(shallow.query("json", "[[1]]", "(array (array (number) @n))")["error"].get<std::string>().find(
            "query nests deeper than 2 levels") == 0);
  CHECK_THROWS_WITH_AS(mcpd::parser_tools({{"max_query_depth", 0}}), doctest::Contains("parser.max_query_depth"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(mcpd::parser_tools({{"isolate_query_compile", 1}}),
                       "parser.isolate_query_compile: must be true or false", std::invalid_argument);
  CHECK_THROWS_WITH_AS(mcpd::parser_tools({{"query_compile_timeout_ms", 0}}),
                       "parser.query_compile_timeout_ms: must be an integer from 1 to 600000", std::invalid_argument);
  CHECK_THROWS_WITH_AS(mcpd::parser_tools({{"bogus", 1}}), doctest::Contains("parser.bogus: unknown setting"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(mcpd::parser_tools(json::array()), doctest::Contains("parser: must be an object"),
                       std::invalid_argument);
}

}  // namespace
