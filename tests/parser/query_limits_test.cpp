// code_query's bounds on the query itself, checked before tree-sitter's query parser (which
// recurses once per nesting level) sees it: nesting depth and size, each a `parser` setting, with
// errors naming them; brackets inside strings and comments do not count.
#include <doctest/doctest.h>

#include <string>

#include "parser_tools.h"

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

TEST_CASE("the query bounds are settings, checked at start") {
  Tools shallow(json{{"max_query_depth", 2}});
  CHECK(shallow.query("json", "[[1]]", "(array (number) @n)")["match_count"] == 1);
  CHECK(shallow.query("json", "[[1]]", "(array (array (number) @n))")["error"].get<std::string>().find(
            "query nests deeper than 2 levels") == 0);
  CHECK_THROWS_WITH_AS(mcpd::parser_tools({{"max_query_depth", 0}}), doctest::Contains("parser.max_query_depth"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(mcpd::parser_tools({{"bogus", 1}}), doctest::Contains("parser.bogus: unknown setting"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(mcpd::parser_tools(json::array()), doctest::Contains("parser: must be an object"),
                       std::invalid_argument);
}

}  // namespace
