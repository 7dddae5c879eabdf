// Specifies the parser tools (code_parse, code_outline, code_query) against real files of this
// project and of the grammar packages, and against small snippets in every language.
#include <doctest/doctest.h>

#include "temp_dir.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "parser_tools.h"

namespace {

namespace fs = std::filesystem;
using mcpd::json;
using mcpd::ToolContext;
using mcpd::ToolError;
using mcpd::ToolResult;

/// A fresh directory under the system temp dir, removed with the object. (tests/support has one in
/// mcpd_fixture.h, but that header pulls in the MCP client.)
using mcpd::test::TempDir;

const fs::path kSource = fs::path(MCPD_SOURCE_DIR);
const fs::path kGrammars = kSource / ".deps" / "grammars";

const mcpd::Tool& tool(const std::string& name) {
  static const std::vector<mcpd::Tool> tools = mcpd::parser_tools();
  for (const auto& t : tools)
    if (t.name == name) return t;
  throw std::runtime_error("no tool " + name);
}

ToolContext project_context() {
  ToolContext context;
  context.roots = {fs::canonical(kSource)};
  return context;
}

ToolResult call(const std::string& name, const json& arguments, ToolContext context = project_context()) {
  ToolResult result = tool(name).handler(arguments, context);
  // Everything a tool returns must serialize (invalid UTF-8 in a source would throw here).
  CHECK_NOTHROW((void)result.structured.dump());
  return result;
}

/// The ToolError message a call fails with ("" and a failed check if it does not fail).
std::string error_of(const std::string& name, const json& arguments, ToolContext context = project_context()) {
  try {
    tool(name).handler(arguments, context);
  } catch (const ToolError& e) {
    return e.what();
  }
  FAIL_CHECK("expected a ToolError from " << name << " " << arguments.dump());
  return {};
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

/// 1-based number of the first line of `text` matching `pattern` (0 when none does).
int line_matching(const std::string& text, const std::string& pattern) {
  std::regex re(pattern);
  std::istringstream in(text);
  std::string line;
  for (int number = 1; std::getline(in, line); ++number)
    if (std::regex_search(line, re)) return number;
  return 0;
}

/// The symbol with this name (and kind, when given), or null.
json symbol(const json& structured, const std::string& name, const std::string& kind = "") {
  for (const auto& s : structured["symbols"])
    if (s["name"] == name && (kind.empty() || s["kind"] == kind)) return s;
  return nullptr;
}

json outline(const std::string& language, const std::string& code) {
  return call("code_outline", {{"language", language}, {"code", code}}).structured;
}

json parse(const std::string& language, const std::string& code, json extra = json::object()) {
  extra["language"] = language;
  extra["code"] = code;
  return call("code_parse", extra).structured;
}

// One valid snippet per language, used by several tests.
struct Snippet {
  std::string language;
  std::string code;
  std::string root_type;
};

const std::vector<Snippet>& snippets() {
  static const std::vector<Snippet> all = {
      {"javascript",
       "/** Adds two numbers. */\n"
       "function add(a, b) {\n"
       "  return a + b;\n"
       "}\n"
       "\n"
       "class Greeter {\n"
       "  constructor(name) { this.name = name; }\n"
       "  // Says hello.\n"
       "  greet() {\n"
       "    return `hi ${this.name}`;\n"
       "  }\n"
       "}\n"
       "const twice = (x) => x * 2;\n",
       "program"},
      {"typescript",
       "interface Shape {\n"
       "  area(): number;\n"
       "}\n"
       "\n"
       "class Circle implements Shape {\n"
       "  constructor(private r: number) {}\n"
       "  area(): number {\n"
       "    return Math.PI * this.r ** 2;\n"
       "  }\n"
       "}\n"
       "\n"
       "export function unit(): Circle {\n"
       "  return new Circle(1);\n"
       "}\n"
       "\n"
       "module Geometry {\n"
       "  export const zero = 0;\n"
       "}\n",
       "program"},
      {"tsx",
       "type Props = { name: string };\n"
       "export function Hello({ name }: Props) {\n"
       "  return <div className=\"greeting\">Hello {name}</div>;\n"
       "}\n",
       "program"},
      {"python",
       "import os\n"
       "\n"
       "LIMIT = 10\n"
       "\n"
       "class Greeter:\n"
       "    \"\"\"Greets people.\"\"\"\n"
       "\n"
       "    def greet(self, name):\n"
       "        return f\"hi {name}\"\n"
       "\n"
       "\n"
       "def main():\n"
       "    print(Greeter().greet(os.getcwd()))\n",
       "module"},
      {"c",
       "#include <stdio.h>\n"
       "\n"
       "struct point {\n"
       "  int x, y;\n"
       "};\n"
       "\n"
       "typedef struct point point_t;\n"
       "\n"
       "enum color { RED, GREEN };\n"
       "\n"
       "static int square(int v) {\n"
       "  return v * v;\n"
       "}\n"
       "\n"
       "int main(void) {\n"
       "  printf(\"%d\\n\", square(3));\n"
       "  return 0;\n"
       "}\n",
       "translation_unit"},
      {"cpp",
       "namespace geo {\n"
       "\n"
       "class Shape {\n"
       " public:\n"
       "  virtual double area() const = 0;\n"
       "};\n"
       "\n"
       "struct Square : Shape {\n"
       "  double side = 1;\n"
       "  double area() const override { return side * side; }\n"
       "  double perimeter() const;\n"
       "};\n"
       "\n"
       "double Square::perimeter() const { return 4 * side; }\n"
       "\n"
       "}  // namespace geo\n"
       "\n"
       "int main() { return 0; }\n",
       "translation_unit"},
      {"go",
       "package main\n"
       "\n"
       "import \"fmt\"\n"
       "\n"
       "// Point is a point.\n"
       "type Point struct {\n"
       "\tX, Y int\n"
       "}\n"
       "\n"
       "// Norm returns the squared length.\n"
       "func (p Point) Norm() int {\n"
       "\treturn p.X*p.X + p.Y*p.Y\n"
       "}\n"
       "\n"
       "// main prints.\n"
       "// It has two doc lines.\n"
       "func main() {\n"
       "\tfmt.Println(Point{1, 2}.Norm())\n"
       "}\n",
       "source_file"},
      {"rust",
       "mod shapes {\n"
       "    pub struct Circle {\n"
       "        pub r: f64,\n"
       "    }\n"
       "\n"
       "    pub trait Area {\n"
       "        fn area(&self) -> f64;\n"
       "    }\n"
       "\n"
       "    impl Area for Circle {\n"
       "        fn area(&self) -> f64 {\n"
       "            3.14 * self.r * self.r\n"
       "        }\n"
       "    }\n"
       "}\n"
       "\n"
       "macro_rules! square {\n"
       "    ($x:expr) => {\n"
       "        $x * $x\n"
       "    };\n"
       "}\n"
       "\n"
       "fn main() {\n"
       "    println!(\"{}\", square!(2));\n"
       "}\n",
       "source_file"},
      {"bash",
       "#!/bin/bash\n"
       "\n"
       "# Greets someone.\n"
       "greet() {\n"
       "  echo \"hi $1\"\n"
       "}\n"
       "\n"
       "function main {\n"
       "  greet world\n"
       "}\n"
       "\n"
       "main \"$@\"\n",
       "program"},
      {"json",
       "{\n"
       "  \"name\": \"demo\",\n"
       "  \"scripts\": {\"test\": \"run\"},\n"
       "  \"version\": \"1.0.0\"\n"
       "}\n",
       "document"},
  };
  return all;
}

const Snippet& snippet(const std::string& language) {
  for (const auto& s : snippets())
    if (s.language == language) return s;
  throw std::runtime_error("no snippet for " + language);
}

std::string big_javascript(std::size_t functions) {
  std::string code;
  for (std::size_t i = 0; i < functions; ++i)
    code += "function f" + std::to_string(i) + "(a, b) { const c = [a, b, " + std::to_string(i) +
            "]; return c.map((x) => x * 2).reduce((s, x) => s + x, 0); }\n";
  return code;
}

}  // namespace

// --- languages -----------------------------------------------------------------------------------

TEST_CASE("the supported languages are the ten built-in grammars, sorted") {
  CHECK(mcpd::supported_languages() == std::vector<std::string>{"bash", "c", "cpp", "go", "javascript", "json",
                                                                 "python", "rust", "tsx", "typescript"});
}

TEST_CASE("aliases name the canonical language, case-insensitively") {
  CHECK(mcpd::canonical_language("js") == "javascript");
  CHECK(mcpd::canonical_language("ts") == "typescript");
  CHECK(mcpd::canonical_language("py") == "python");
  CHECK(mcpd::canonical_language("c++") == "cpp");
  CHECK(mcpd::canonical_language("sh") == "bash");
  CHECK(mcpd::canonical_language("golang") == "go");
  CHECK(mcpd::canonical_language("Python") == "python");
  CHECK_FALSE(mcpd::canonical_language("cobol").has_value());
}

TEST_CASE("a file's extension selects its language") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a.js", "javascript"}, {"a.mjs", "javascript"}, {"a.cjs", "javascript"}, {"a.jsx", "javascript"},
      {"a.ts", "typescript"}, {"a.mts", "typescript"}, {"a.cts", "typescript"}, {"a.tsx", "tsx"},
      {"a.py", "python"},     {"a.pyi", "python"},     {"a.c", "c"},            {"a.h", "c"},
      {"a.cc", "cpp"},        {"a.cpp", "cpp"},        {"a.cxx", "cpp"},        {"a.hpp", "cpp"},
      {"a.hh", "cpp"},        {"a.hxx", "cpp"},        {"a.ipp", "cpp"},        {"a.go", "go"},
      {"a.rs", "rust"},       {"a.sh", "bash"},        {"a.bash", "bash"},      {"dir.d/a.json", "json"},
  };
  for (const auto& [path, language] : cases) {
    const auto& file = path;  // clang 14 cannot capture a structured binding in CAPTURE's lambda
    CAPTURE(file);
    CHECK(mcpd::language_for_path(path) == language);
  }
  CHECK_FALSE(mcpd::language_for_path("Makefile").has_value());
  CHECK_FALSE(mcpd::language_for_path("notes.txt").has_value());
  CHECK_FALSE(mcpd::language_for_path("dir.js/README").has_value());
}

TEST_CASE("a path is parsed in the language of its extension") {
  json result = call("code_parse", {{"path", "workers/runtime/roots.cpp"}}).structured;
  CHECK(result["language"] == "cpp");
  CHECK(result["root_type"] == "translation_unit");
  CHECK(result["has_errors"] == false);
}

TEST_CASE("an explicit language wins over the extension") {
  TempDir dir;
  dir.write("script.txt", "def f():\n    return 1\n");
  ToolContext context;
  context.roots = {dir.path};
  json result = call("code_parse", {{"path", "script.txt"}, {"language", "py"}}, context).structured;
  CHECK(result["language"] == "python");
  CHECK(result["has_errors"] == false);
}

TEST_CASE("every supported language parses a valid snippet without errors") {
  std::set<std::string> covered;
  for (const auto& s : snippets()) {
    CAPTURE(s.language);
    json result = parse(s.language, s.code);
    CHECK(result["language"] == s.language);
    CHECK(result["root_type"] == s.root_type);
    CHECK(result["has_errors"] == false);
    CHECK(result["errors"].empty());
    CHECK(result["truncated"] == false);
    CHECK(result["node_count"].get<int>() > 3);
    covered.insert(s.language);
  }
  CHECK(covered.size() == mcpd::supported_languages().size());
}

TEST_CASE("empty code parses to an empty tree") {
  json result = parse("python", "");
  CHECK(result["root_type"] == "module");
  CHECK(result["node_count"] == 1);
  CHECK(result["has_errors"] == false);
  CHECK(result["tree"] == "(module)");
}

// --- real files ----------------------------------------------------------------------------------

TEST_CASE("the grammar packages' own files parse without errors") {
  const std::vector<std::string> files = {
      "tree-sitter-javascript/grammar.js",
      "tree-sitter-javascript/bindings/node/index.js",
      "tree-sitter-typescript/bindings/node/index.d.ts",
      "tree-sitter-bash/src/scanner.c",
      "tree-sitter-python/src/scanner.c",
      "tree-sitter-typescript/common/scanner.h",
      "tree-sitter-typescript/common/define-grammar.js",
      "tree-sitter-javascript/package.json",
  };
  ToolContext context;
  context.roots = {fs::canonical(kGrammars)};
  for (const auto& file : files) {
    CAPTURE(file);
    json result = call("code_parse", {{"path", file}, {"max_nodes", 10}}, context).structured;
    CHECK(result["has_errors"] == false);
    CHECK(result["truncated"] == true);
    CHECK(result["node_count"] == 10);
    CHECK(result["total_nodes"].get<int>() > 10);
  }
}

TEST_CASE("outline of roots.cpp lists its three functions at their lines") {
  std::string text = read_file(kSource / "workers/runtime/roots.cpp");
  json result = call("code_outline", {{"path", "workers/runtime/roots.cpp"}}).structured;
  CHECK(result["language"] == "cpp");
  CHECK(result["truncated"] == false);
  for (const std::string name : {"resolve_in_roots", "is_within", "read_text_file"}) {
    CAPTURE(name);
    json s = symbol(result, name, "function");
    REQUIRE(s.is_object());
    // The definition is the unindented line naming the function; calls are indented.
    int line = line_matching(text, "^[A-Za-z].*\\b" + name + "\\(");
    REQUIRE(line > 0);
    CHECK(s["line"] == line);
    CHECK(s["start"]["row"] == line - 1);
  }
}

TEST_CASE("a .h file is C unless told otherwise") {
  CHECK(call("code_parse", {{"path", "workers/runtime/tool.h"}, {"max_nodes", 1}}).structured["language"] == "c");
}

TEST_CASE("outline of tool.h, read as C++, lists the contract's structs and classes") {
  json result =
      call("code_outline", {{"path", "workers/runtime/tool.h"}, {"language", "cpp"}, {"kinds", {"class"}}}).structured;
  std::string text = read_file(kSource / "workers/runtime/tool.h");
  for (const std::string name : {"ToolAnnotations", "CancelToken", "ToolError", "ToolContext", "ToolResult", "Tool"}) {
    CAPTURE(name);
    json s = symbol(result, name, "class");
    REQUIRE(s.is_object());
    CHECK(s["line"] == line_matching(text, "^(struct|class) " + name + "\\b"));
  }
  // check_cancelled is declared inside ToolContext.
  json all = call("code_outline", {{"path", "workers/runtime/tool.h"}, {"language", "cpp"}}).structured;
  json check = symbol(all, "check_cancelled");
  REQUIRE(check.is_object());
  CHECK(check["container"] == "ToolContext");
}

TEST_CASE("outline of tree-sitter-javascript's grammar.js finds its helper functions") {
  ToolContext context;
  context.roots = {fs::canonical(kGrammars)};
  std::string text = read_file(kGrammars / "tree-sitter-javascript/grammar.js");
  json result = call("code_outline", {{"path", "tree-sitter-javascript/grammar.js"}}, context).structured;
  CHECK(result["language"] == "javascript");
  for (const std::string name : {"commaSep1", "commaSep"}) {
    CAPTURE(name);
    json s = symbol(result, name, "function");
    REQUIRE(s.is_object());
    CHECK(s["line"] == line_matching(text, "^function " + name + "\\("));
  }
}

TEST_CASE("outline of a C scanner from a grammar package finds its functions") {
  ToolContext context;
  context.roots = {fs::canonical(kGrammars)};
  std::string text = read_file(kGrammars / "tree-sitter-bash/src/scanner.c");
  json result = call("code_outline", {{"path", "tree-sitter-bash/src/scanner.c"}}, context).structured;
  CHECK(result["language"] == "c");
  for (const std::string name : {"serialize", "deserialize", "scan", "tree_sitter_bash_external_scanner_create"}) {
    CAPTURE(name);
    json s = symbol(result, name, "function");
    REQUIRE(s.is_object());
    CHECK(s["line"] == line_matching(text, "^[a-z].*[ *]" + name + "\\("));
  }
}

TEST_CASE("outline of a package.json lists its top-level keys, not nested ones") {
  ToolContext context;
  context.roots = {fs::canonical(kGrammars)};
  std::string text = read_file(kGrammars / "tree-sitter-javascript/package.json");
  json result = call("code_outline", {{"path", "tree-sitter-javascript/package.json"}}, context).structured;
  CHECK(result["language"] == "json");
  for (const std::string key : {"name", "version", "repository", "author"}) {
    CAPTURE(key);
    json s = symbol(result, key);
    REQUIRE(s.is_object());
    CHECK(s["line"] == line_matching(text, "^  \"" + key + "\":"));
  }
  CHECK(symbol(result, "email").is_null());  // nested under "author"
}

TEST_CASE("outline of setup.sh lists its shell functions") {
  std::string text = read_file(kSource / "setup.sh");
  json result = call("code_outline", {{"path", "setup.sh"}}).structured;
  CHECK(result["language"] == "bash");
  std::regex definition("^([A-Za-z_][A-Za-z0-9_]*)\\(\\) *\\{");
  std::istringstream in(text);
  std::string line;
  int found = 0;
  for (int number = 1; std::getline(in, line); ++number) {
    std::smatch m;
    if (!std::regex_search(line, m, definition)) continue;
    CAPTURE(m[1].str());
    json s = symbol(result, m[1].str(), "function");
    REQUIRE(s.is_object());
    CHECK(s["line"] == number);
    ++found;
  }
  CHECK(found > 0);
}

// --- code_parse ----------------------------------------------------------------------------------

TEST_CASE("the S-expression names fields as tree-sitter prints them") {
  json result = parse("python", "def f(x):\n    return x\n");
  std::string tree = result["tree"];
  CHECK(tree ==
        "(module (function_definition name: (identifier) parameters: (parameters (identifier)) "
        "body: (block (return_statement (identifier)))))");
}

TEST_CASE("named_only false shows anonymous tokens, quoted") {
  json result = parse("javascript", "a + 1;", {{"named_only", false}});
  std::string tree = result["tree"];
  CHECK(contains(tree, "operator: \"+\""));
  CHECK(contains(tree, "\";\""));
}

TEST_CASE("json format gives node types, fields and ranges") {
  json result = parse("javascript", "let x = 1;\nfoo(x);\n", {{"format", "json"}});
  const json& tree = result["tree"];
  CHECK(tree["type"] == "program");
  CHECK(tree["named"] == true);
  CHECK(tree["start"] == json{{"row", 0}, {"column", 0}, {"byte", 0}});
  REQUIRE(tree["children"].size() == 2);
  const json& call_statement = tree["children"][1];
  CHECK(call_statement["type"] == "expression_statement");
  CHECK(call_statement["start"] == json{{"row", 1}, {"column", 0}, {"byte", 11}});
  CHECK(call_statement["end"] == json{{"row", 1}, {"column", 7}, {"byte", 18}});
  const json& call_expression = call_statement["children"][0];
  CHECK(call_expression["type"] == "call_expression");
  CHECK(call_expression["children"][0]["field"] == "function");
  CHECK(call_expression["children"][0]["type"] == "identifier");
  CHECK(call_expression["children"][1]["field"] == "arguments");
  CHECK(result["node_count"] == result["total_nodes"]);
}

TEST_CASE("max_depth cuts the tree and sets truncated") {
  json result = parse("python", "def f(x):\n    return x\n", {{"max_depth", 2}});
  CHECK(result["truncated"] == true);
  CHECK(result["tree"] == "(module (function_definition ...))");
  CHECK(result["node_count"] == 2);
  CHECK(result["total_nodes"] == 8);

  json as_json = parse("python", "def f(x):\n    return x\n", {{"max_depth", 1}, {"format", "json"}});
  CHECK(as_json["truncated"] == true);
  CHECK(as_json["tree"]["children"].empty());
}

TEST_CASE("max_nodes cuts the tree and sets truncated") {
  json result = parse("c", snippet("c").code, {{"max_nodes", 5}});
  CHECK(result["truncated"] == true);
  CHECK(result["node_count"] == 5);
  CHECK(result["total_nodes"].get<int>() > 5);
  std::string tree = result["tree"];
  CHECK(contains(tree, "..."));
  // Still balanced, so it reads as an S-expression.
  CHECK(std::count(tree.begin(), tree.end(), '(') == std::count(tree.begin(), tree.end(), ')'));
}

TEST_CASE("the result stays within max_result_bytes") {
  ToolContext context = project_context();
  context.max_result_bytes = 4096;
  ToolResult result = call("code_parse", {{"language", "javascript"}, {"code", big_javascript(200)}}, context);
  CHECK(result.structured["truncated"] == true);
  CHECK(result.structured.dump().size() + result.text.size() <= 4096);
  ToolResult as_json =
      call("code_parse", {{"language", "javascript"}, {"code", big_javascript(200)}, {"format", "json"}}, context);
  CHECK(as_json.structured["truncated"] == true);
  CHECK(as_json.structured.dump().size() + as_json.text.size() <= 4096);

  ToolResult outline = call("code_outline", {{"language", "javascript"}, {"code", big_javascript(200)}}, context);
  CHECK(outline.structured["truncated"] == true);
  CHECK_FALSE(outline.structured["symbols"].empty());
  CHECK(outline.structured.dump().size() + outline.text.size() <= 4096);

  ToolResult query = call("code_query",
                          {{"language", "javascript"}, {"code", big_javascript(200)}, {"query", "(identifier) @id"}}, context);
  CHECK(query.structured["truncated"] == true);
  CHECK(query.structured["capture_count"].get<int>() > 0);
  CHECK(query.structured.dump().size() + query.text.size() <= 4096);
}

TEST_CASE("a missing token is reported as MISSING with its type and row") {
  json result = parse("c", "int main(void) {\n  int x = 1\n  return x;\n}\n");
  CHECK(result["has_errors"] == true);
  REQUIRE(result["errors"].size() == 1);
  const json& error = result["errors"][0];
  CHECK(error["type"] == "MISSING");
  CHECK(error["node_type"] == ";");
  CHECK(error["start"]["row"] == 1);
  CHECK(contains(result["tree"].get<std::string>(), "(MISSING \";\")"));
}

TEST_CASE("unparseable text is reported as ERROR with its rows and text") {
  SUBCASE("python") {
    json result = parse("python", "x = 1\ny = (2 +\ndef f(:\n    pass\n");
    CHECK(result["has_errors"] == true);
    REQUIRE_FALSE(result["errors"].empty());
    CHECK(result["errors"][0]["type"] == "ERROR");
    CHECK(result["errors"][0]["start"]["row"] == 1);
  }
  SUBCASE("json") {
    // The parser gives up at the comma after 1: the ERROR runs from there to the 2.
    json result = parse("json", "{\n  \"a\": 1,\n  \"b\" 2\n}\n");
    CHECK(result["has_errors"] == true);
    REQUIRE(result["errors"].size() == 1);
    CHECK(result["errors"][0]["start"]["row"] == 1);
    CHECK(result["errors"][0]["end"]["row"] == 2);
    CHECK(result["errors"][0]["text"] == ",\n  \"b\" 2");
  }
  SUBCASE("javascript") {
    json result = parse("javascript", "let ok = 1;\nlet x = ) 2;\n");
    REQUIRE_FALSE(result["errors"].empty());
    const json& error = result["errors"][0];
    CHECK(error["type"] == "ERROR");
    CHECK(error["node_type"] == "ERROR");
    CHECK(error["start"]["row"] == 1);
    CHECK(contains(error["text"].get<std::string>(), ")"));
  }
}

TEST_CASE("invalid UTF-8 in a source still yields valid JSON") {
  json result = call("code_query", {{"language", "python"}, {"code", "s = '\xff\xfe'\n"}, {"query", "(string) @s"}}).structured;
  REQUIRE(result["captures"].size() == 1);
  CHECK(result["captures"][0]["text"] == "'\xEF\xBF\xBD\xEF\xBF\xBD'");
}

// --- code_outline --------------------------------------------------------------------------------

TEST_CASE("outline finds the definitions of each language's snippet") {
  struct Expected {
    std::string language, name, kind;
    int line;
    std::string container;
  };
  const std::vector<Expected> expected = {
      {"javascript", "add", "function", 2, ""},
      {"javascript", "Greeter", "class", 6, ""},
      {"javascript", "greet", "method", 9, "Greeter"},
      {"javascript", "twice", "function", 13, ""},
      {"typescript", "Shape", "interface", 1, ""},
      {"typescript", "area", "method", 2, "Shape"},
      {"typescript", "Circle", "class", 5, ""},
      {"typescript", "area", "method", 7, "Circle"},
      {"typescript", "unit", "function", 12, ""},
      {"typescript", "Geometry", "module", 16, ""},
      {"tsx", "Hello", "function", 2, ""},
      {"python", "LIMIT", "constant", 3, ""},
      {"python", "Greeter", "class", 5, ""},
      {"python", "greet", "function", 8, "Greeter"},
      {"python", "main", "function", 12, ""},
      {"c", "point", "class", 3, ""},
      {"c", "point_t", "type", 7, ""},
      {"c", "color", "type", 9, ""},
      {"c", "square", "function", 11, ""},
      {"c", "main", "function", 15, ""},
      {"cpp", "Shape", "class", 3, ""},
      {"cpp", "area", "function", 5, "Shape"},
      {"cpp", "Square", "class", 8, ""},
      {"cpp", "area", "function", 10, "Square"},
      {"cpp", "perimeter", "method", 14, ""},
      {"cpp", "main", "function", 18, ""},
      {"go", "Point", "type", 6, ""},
      {"go", "Norm", "method", 11, ""},
      {"go", "main", "function", 17, ""},
      {"rust", "shapes", "module", 1, ""},
      {"rust", "Circle", "class", 2, "shapes"},
      {"rust", "Area", "interface", 6, "shapes"},
      {"rust", "area", "method", 11, "shapes"},
      {"rust", "square", "macro", 17, ""},
      {"rust", "main", "function", 23, ""},
      {"bash", "greet", "function", 4, ""},
      {"bash", "main", "function", 8, ""},
      {"json", "name", "key", 2, ""},
      {"json", "scripts", "key", 3, ""},
      {"json", "version", "key", 4, ""},
  };
  for (const auto& e : expected) {
    CAPTURE(e.language);
    CAPTURE(e.name);
    json result = outline(e.language, snippet(e.language).code);
    bool found = false;
    for (const auto& s : result["symbols"]) {
      if (s["name"] != e.name || s["line"] != e.line) continue;
      found = true;
      CHECK(s["kind"] == e.kind);
      CHECK(s.value("container", "") == e.container);
    }
    CHECK(found);
  }
}

TEST_CASE("outline symbols are sorted by position and not duplicated") {
  for (const auto& s : snippets()) {
    CAPTURE(s.language);
    json result = outline(s.language, s.code);
    CHECK_FALSE(result["symbols"].empty());
    std::uint64_t previous = 0;
    std::set<std::tuple<std::string, std::uint64_t, std::uint64_t>> seen;
    for (const auto& symbol : result["symbols"]) {
      std::uint64_t start = symbol["start"]["byte"];
      CHECK(start >= previous);
      previous = start;
      CHECK(seen.insert({symbol["name"], start, symbol["end"]["byte"]}).second);
    }
  }
}

TEST_CASE("outline skips references, and a rust method is not also a function") {
  json rust = outline("rust", snippet("rust").code);
  int areas = 0;
  for (const auto& s : rust["symbols"]) areas += s["name"] == "area" ? 1 : 0;
  CHECK(areas == 1);                           // the impl method; the trait's signature is no definition
  CHECK(symbol(rust, "println").is_null());    // a macro call is a reference
  CHECK(symbol(outline("javascript", snippet("javascript").code), "constructor").is_null());  // #not-eq?
}

TEST_CASE("outline reads doc comments without their markers") {
  CHECK(symbol(outline("javascript", snippet("javascript").code), "add")["doc"] == "Adds two numbers.");
  CHECK(symbol(outline("javascript", snippet("javascript").code), "greet")["doc"] == "Says hello.");
  json go = outline("go", snippet("go").code);
  CHECK(symbol(go, "Norm")["doc"] == "Norm returns the squared length.");
  CHECK(symbol(go, "main")["doc"] == "main prints.\nIt has two doc lines.");
  CHECK(symbol(outline("bash", snippet("bash").code), "greet")["doc"] == "Greets someone.");
  CHECK_FALSE(symbol(outline("bash", snippet("bash").code), "main").contains("doc"));
}

TEST_CASE("a doc comment separated by a blank line is not the definition's doc") {
  json go = outline("go", "package main\n\n// About the file.\n\nfunc f() {}\n");
  CHECK_FALSE(symbol(go, "f").contains("doc"));
}

TEST_CASE("outline filters by kinds and caps max_symbols") {
  json classes = call("code_outline", {{"language", "python"}, {"code", snippet("python").code}, {"kinds", {"class"}}})
                     .structured;
  REQUIRE(classes["symbols"].size() == 1);
  CHECK(classes["symbols"][0]["name"] == "Greeter");
  // The container is found before filtering.
  json functions =
      call("code_outline", {{"language", "python"}, {"code", snippet("python").code}, {"kinds", {"function"}}}).structured;
  CHECK(symbol(functions, "greet")["container"] == "Greeter");

  json capped = call("code_outline", {{"language", "python"}, {"code", snippet("python").code}, {"max_symbols", 2}})
                    .structured;
  CHECK(capped["symbols"].size() == 2);
  CHECK(capped["truncated"] == true);
}

TEST_CASE("outline of generated code: a tree-sitter parser.c, and a file of 6000 functions") {
  // Its parse tables are initializer lists of 100,000+ children, which made tree-sitter 0.20's
  // query cursor quadratic (over 30 s for this 1.5 MB file). Their insides are skipped now; the
  // definitions around and above them are outlined as before.
  json parser = call("code_outline", {{"path", (kGrammars / "tree-sitter-go" / "src" / "parser.c").string()}}).structured;
  CHECK(symbol(parser, "ts_symbol_identifiers", "type") != nullptr);
  CHECK(symbol(parser, "ts_lex", "function") != nullptr);  // encloses a switch of thousands of cases
  CHECK(symbol(parser, "ts_lex_keywords", "function") != nullptr);
  CHECK(symbol(parser, "tree_sitter_go", "function") != nullptr);  // after the crowded tables

  // A crowded root is queried child by child: every function, with its doc comment.
  std::string many = "package main\n";
  for (int i = 0; i < 6000; ++i) many += "// Number " + std::to_string(i) + ".\nfunc f" + std::to_string(i) + "() {}\n";
  json all = call("code_outline", {{"language", "go"}, {"code", many}, {"max_symbols", 10000}}).structured;
  REQUIRE(all["symbols"].size() == 6000);
  CHECK(all["symbols"][0]["name"] == "f0");
  CHECK(all["symbols"][5999]["name"] == "f5999");
  CHECK(all["symbols"][4321]["doc"] == "Number 4321.");
}

TEST_CASE("every language's tags query compiles, concurrently on first use") {
  std::vector<std::thread> threads;
  std::vector<std::string> failures(4);
  for (std::size_t t = 0; t < failures.size(); ++t) {
    threads.emplace_back([t, &failures] {
      try {
        for (const auto& s : snippets()) {
          ToolContext context;
          mcpd::json args = {{"language", s.language}, {"code", s.code}};
          mcpd::ToolResult result = tool("code_outline").handler(args, context);
          if (result.structured["symbols"].empty()) failures[t] += s.language + " has no symbols; ";
        }
      } catch (const std::exception& e) {
        failures[t] += e.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& failure : failures) CHECK(failure == "");
}

// --- code_query ----------------------------------------------------------------------------------

TEST_CASE("code_query returns captures with text, ranges, match and pattern") {
  json result = call("code_query", {{"language", "python"},
                                    {"code", "def f(x):\n    return x\n\ndef g():\n    pass\n"},
                                    {"query", "(function_definition name: (identifier) @name) @def"}})
                    .structured;
  CHECK(result["language"] == "python");
  CHECK(result["match_count"] == 2);
  CHECK(result["capture_count"] == 4);
  CHECK(result["truncated"] == false);
  const json& captures = result["captures"];
  REQUIRE(captures.size() == 4);
  CHECK(captures[0]["capture"] == "def");
  CHECK(captures[0]["node_type"] == "function_definition");
  CHECK(captures[1]["capture"] == "name");
  CHECK(captures[1]["text"] == "f");
  CHECK(captures[1]["start"] == json{{"row", 0}, {"column", 4}, {"byte", 4}});
  CHECK(captures[1]["end"] == json{{"row", 0}, {"column", 5}, {"byte", 5}});
  CHECK(captures[1]["match"] == 0);
  CHECK(captures[1]["pattern"] == 0);
  CHECK(captures[3]["text"] == "g");
  CHECK(captures[3]["match"] == 1);
  CHECK_FALSE(captures[1].contains("text_truncated"));
}

TEST_CASE("code_query evaluates #eq? and #not-eq?") {
  const std::string code = "foo(1)\nbar(2)\nfoo(3)\n";
  auto names = [&](const std::string& query) {
    json result = call("code_query", {{"language", "python"}, {"code", code}, {"query", query}}).structured;
    std::vector<std::string> out;
    for (const auto& c : result["captures"]) out.push_back(c["text"]);
    return out;
  };
  CHECK(names("((call function: (identifier) @f) (#eq? @f \"foo\"))") == std::vector<std::string>{"foo", "foo"});
  CHECK(names("((call function: (identifier) @f) (#not-eq? @f \"foo\"))") == std::vector<std::string>{"bar"});
  CHECK(names("((call function: (identifier) @f) (#any-of? @f \"bar\" \"baz\"))") == std::vector<std::string>{"bar"});
  CHECK(names("((call function: (identifier) @f) (#not-any-of? @f \"bar\" \"baz\"))") ==
        std::vector<std::string>{"foo", "foo"});
  // Capture against capture: an assignment of a name to itself.
  json same = call("code_query", {{"language", "python"},
                                  {"code", "a = a\nb = c\n"},
                                  {"query", "((assignment left: (identifier) @l right: (identifier) @r) (#eq? @l @r))"}})
                  .structured;
  CHECK(same["match_count"] == 1);
  CHECK(same["captures"][0]["text"] == "a");
}

TEST_CASE("code_query evaluates #match? and #not-match? with RE2") {
  const std::string code = "const fooBar = 1;\nconst baz = 2;\nconst fooQux = 3;\n";
  json result = call("code_query", {{"language", "js"},
                                    {"code", code},
                                    {"query", "((identifier) @id (#match? @id \"^foo[A-Z]\"))"}})
                    .structured;
  REQUIRE(result["captures"].size() == 2);
  CHECK(result["captures"][0]["text"] == "fooBar");
  CHECK(result["captures"][1]["text"] == "fooQux");
  json negated = call("code_query", {{"language", "js"},
                                     {"code", code},
                                     {"query", "((identifier) @id (#not-match? @id \"^foo\"))"}})
                     .structured;
  REQUIRE(negated["captures"].size() == 1);
  CHECK(negated["captures"][0]["text"] == "baz");
}

TEST_CASE("code_query reports directives it does not evaluate") {
  ToolResult result = call("code_query", {{"language", "python"},
                                          {"code", "x = 1\n"},
                                          {"query", "((identifier) @id (#set! kind \"var\"))"}});
  CHECK(result.structured["capture_count"] == 1);
  CHECK(result.structured["ignored_predicates"] == json{"#set!"});
}

TEST_CASE("an invalid regex in #match? is an error naming it") {
  std::string message = error_of("code_query", {{"language", "python"},
                                                {"code", "x = 1\n"},
                                                {"query", "((identifier) @id (#match? @id \"(unclosed\"))"}});
  CHECK(contains(message, "invalid regular expression '(unclosed'"));
}

TEST_CASE("a query error gives its line, column, offset and kind") {
  std::string message = error_of("code_query", {{"language", "python"},
                                                {"code", "x = 1\n"},
                                                {"query", "(identifier) @a\n(fucntion_definition) @b"}});
  CHECK(message == "query error at line 2, column 2 (offset 17): invalid node type 'fucntion_definition'");

  CHECK(contains(error_of("code_query", {{"language", "python"}, {"code", ""}, {"query", "(function_definition nme: (identifier))"}}),
                 "invalid field 'nme'"));
  CHECK(contains(error_of("code_query", {{"language", "python"}, {"code", ""}, {"query", "((identifier) @a (#eq? @b \"x\"))"}}),
                 "invalid capture '@b'"));
  std::string syntax = error_of("code_query", {{"language", "python"}, {"code", ""}, {"query", "(identifier"}});
  CHECK(contains(syntax, "offset "));
  CHECK(contains(syntax, "syntax error"));
}

TEST_CASE("code_query caps captures and text") {
  json capped = call("code_query", {{"language", "javascript"},
                                    {"code", big_javascript(20)},
                                    {"query", "(function_declaration name: (identifier) @name)"},
                                    {"max_captures", 5}})
                    .structured;
  CHECK(capped["capture_count"] == 5);
  CHECK(capped["match_count"] == 5);
  CHECK(capped["truncated"] == true);

  json cut = call("code_query", {{"language", "javascript"},
                                 {"code", "function longName() {}\n"},
                                 {"query", "(function_declaration) @f"},
                                 {"max_text_bytes", 8}})
                 .structured;
  REQUIRE(cut["captures"].size() == 1);
  CHECK(cut["captures"][0]["text"] == "function");
  CHECK(cut["captures"][0]["text_truncated"] == true);
}

TEST_CASE("code_query requires a query") {
  CHECK(contains(error_of("code_query", {{"language", "python"}, {"code", "x"}}), "`query` is required"));
}

// --- bad input -----------------------------------------------------------------------------------

TEST_CASE("an unknown language is an error listing the supported ones") {
  for (const std::string name : {"code_parse", "code_outline", "code_query"}) {
    CAPTURE(name);
    CHECK(error_of(name, {{"language", "cobol"}, {"code", "x"}, {"query", "(x)"}}) ==
          "unknown language 'cobol'; supported: bash, c, cpp, go, javascript, json, python, rust, tsx, typescript");
  }
}

TEST_CASE("inline code without a language is an error asking for it") {
  CHECK(contains(error_of("code_parse", {{"code", "x = 1"}}), "`language` is required"));
}

TEST_CASE("a path without a known extension and no language is an error") {
  CHECK(contains(error_of("code_outline", {{"path", "workers/parser/grammars.lock"}}), "pass `language`"));
}

TEST_CASE("code and path together, or neither, is an error naming both") {
  for (const std::string name : {"code_parse", "code_outline", "code_query"}) {
    CAPTURE(name);
    std::string both = error_of(name, {{"code", "x"}, {"path", "setup.sh"}, {"query", "(x)"}});
    CHECK(contains(both, "`code`"));
    CHECK(contains(both, "`path`"));
    CHECK(contains(both, "not both"));
    std::string neither = error_of(name, {{"language", "python"}, {"query", "(x)"}});
    CHECK(contains(neither, "`code`"));
    CHECK(contains(neither, "`path`"));
  }
}

TEST_CASE("a path outside the roots is refused") {
  TempDir dir;
  ToolContext context;
  context.roots = {dir.path};
  std::string message = error_of("code_parse", {{"path", (kSource / "workers/runtime/roots.cpp").string()}}, context);
  CHECK(contains(message, "outside the allowed roots"));
  CHECK(contains(error_of("code_parse", {{"path", "../../etc/passwd.c"}}, context), "outside the allowed roots"));
}

TEST_CASE("a missing file is an error") {
  TempDir dir;
  ToolContext context;
  context.roots = {dir.path};
  CHECK(contains(error_of("code_outline", {{"path", "nope.py"}}, context), "does not exist"));
}

TEST_CASE("a binary file is an error") {
  TempDir dir;
  dir.write("blob.c", std::string("int x;\0\0\0\x01", 10));
  ToolContext context;
  context.roots = {dir.path};
  CHECK(contains(error_of("code_parse", {{"path", "blob.c"}}, context), "binary"));
}

TEST_CASE("a file over max_file_bytes is an error") {
  TempDir dir;
  dir.write("big.py", std::string(2000, '#'));
  ToolContext context;
  context.roots = {dir.path};
  context.max_file_bytes = 1000;
  CHECK(contains(error_of("code_parse", {{"path", "big.py"}}, context), "max_file_bytes"));
}

TEST_CASE("arguments of the wrong type or range are errors naming them") {
  CHECK(contains(error_of("code_parse", {{"language", "c"}, {"code", ""}, {"max_depth", 0}}), "`max_depth`"));
  CHECK(contains(error_of("code_parse", {{"language", "c"}, {"code", ""}, {"max_nodes", "ten"}}), "`max_nodes`"));
  CHECK(contains(error_of("code_parse", {{"language", "c"}, {"code", ""}, {"format", "xml"}}), "`format`"));
  CHECK(contains(error_of("code_parse", {{"language", "c"}, {"code", 42}}), "`code`"));
  CHECK(contains(error_of("code_outline", {{"language", "c"}, {"code", ""}, {"kinds", "function"}}), "`kinds`"));
}

// --- cancellation --------------------------------------------------------------------------------

TEST_CASE("a cancelled token makes a large parse throw ToolCancelled") {
  std::string code = big_javascript(20000);
  for (const std::string name : {"code_parse", "code_outline", "code_query"}) {
    CAPTURE(name);
    ToolContext context;
    context.cancel.cancel();
    json args = {{"language", "javascript"}, {"code", code}, {"query", "(identifier) @id"}};
    CHECK_THROWS_AS(tool(name).handler(args, context), mcpd::ToolCancelled);
  }
}

TEST_CASE("cancelling during a parse stops it, and the thread's parser still works afterwards") {
  std::string code = big_javascript(60000);  // several MB: parsing takes far longer than the cancel delay
  ToolContext context;
  std::thread canceller([token = context.cancel] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    token.cancel();
  });
  auto started = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(tool("code_parse").handler(json{{"language", "javascript"}, {"code", code}}, context),
                  mcpd::ToolCancelled);
  auto elapsed = std::chrono::steady_clock::now() - started;
  canceller.join();
  CHECK(elapsed < std::chrono::seconds(2));

  // The abandoned parse must not leak into the next one on this thread.
  json result = parse("javascript", "let a = 1;\n");
  CHECK(result["has_errors"] == false);
  CHECK(result["tree"] == "(program (lexical_declaration (variable_declarator name: (identifier) value: (number))))");
}

// --- tool definitions ----------------------------------------------------------------------------

namespace {

void check_schema_keywords(const json& schema, const std::string& where) {
  static const std::set<std::string> allowed = {"type",     "properties", "required", "additionalProperties",
                                                "enum",     "minimum",    "maximum",  "minLength",
                                                "maxLength", "items",     "minItems", "maxItems",
                                                "description", "default", "title"};
  REQUIRE(schema.is_object());
  for (const auto& [key, value] : schema.items()) {
    std::string at = where + "." + key;  // clang 14 cannot capture a structured binding in CAPTURE's lambda
    CAPTURE(at);
    CHECK(allowed.count(key) == 1);
    if (key == "properties")
      for (const auto& [name, property] : value.items()) check_schema_keywords(property, where + "." + name);
    if (key == "items") check_schema_keywords(value, where + "[]");
  }
}

}  // namespace

TEST_CASE("every tool has a title, a description and sane schemas") {
  std::vector<mcpd::Tool> tools = mcpd::parser_tools();
  std::vector<std::string> names;
  for (const auto& t : tools) names.push_back(t.name);
  CHECK(names == std::vector<std::string>{"code_parse", "code_outline", "code_query"});
  for (const auto& t : tools) {
    CAPTURE(t.name);
    CHECK_FALSE(t.title.empty());
    CHECK_FALSE(t.description.empty());
    CHECK(t.input_schema["type"] == "object");
    CHECK(t.input_schema["additionalProperties"] == false);
    REQUIRE(t.input_schema["properties"].is_object());
    for (const std::string common : {"code", "path", "language"}) CHECK(t.input_schema["properties"].contains(common));
    for (const auto& [name, property] : t.input_schema["properties"].items()) {
      const auto& argument = name;  // clang 14 cannot capture a structured binding in CAPTURE's lambda
      CAPTURE(argument);
      CHECK(property.contains("type"));
      CHECK_FALSE(property.value("description", "").empty());
    }
    if (t.input_schema.contains("required"))
      for (const auto& name : t.input_schema["required"]) CHECK(t.input_schema["properties"].contains(name));
    check_schema_keywords(t.input_schema, t.name);
    CHECK(t.output_schema["type"] == "object");
    CHECK(t.output_schema["properties"].is_object());
    check_schema_keywords(t.output_schema, t.name + " output");
    CHECK(t.annotations.read_only);
    CHECK_FALSE(t.annotations.destructive);
    CHECK(t.annotations.idempotent);
    CHECK_FALSE(t.annotations.open_world);
    CHECK(t.cache == mcpd::CachePolicy::files);
    CHECK(t.path_arguments == std::vector<std::string>{"path"});
    CHECK(t.default_timeout == std::chrono::seconds(30));
    CHECK(static_cast<bool>(t.handler));
  }
  CHECK(tools[2].input_schema["required"] == json{"query"});
}

// ---------------------------------------------------------------------------------------------------
// Bounds: sources that would drive tree-sitter 0.20 past its 16-bit child count, and results that
// would nest deeper or weigh more than their consumer accepts.
// ---------------------------------------------------------------------------------------------------

namespace {

std::string repeat(const std::string& unit, std::size_t times) {
  std::string out;
  out.reserve(unit.size() * times);
  for (std::size_t i = 0; i < times; ++i) out += unit;
  return out;
}

/// The bytes of the tools/call result the coordinator sends for `structured`: structuredContent
/// plus the same JSON as text content (mcp_server.cpp), the quantity max_result_bytes bounds.
std::size_t result_body_bytes(const json& structured) {
  json body = {{"structuredContent", structured},
               {"content", json::array({{{"type", "text"}, {"text", structured.dump()}}})},
               {"isError", false}};
  return body.dump().size();
}

/// How deep `value` nests (a scalar is 0, [] and {} are 1), without recursion.
std::size_t json_depth(const json& value) {
  std::size_t deepest = 0;
  std::vector<std::pair<const json*, std::size_t>> stack = {{&value, 1}};
  while (!stack.empty()) {
    auto [v, depth] = stack.back();
    stack.pop_back();
    if (!v->is_structured()) continue;
    deepest = std::max(deepest, depth);
    for (const auto& child : *v) stack.emplace_back(&child, depth + 1);
  }
  return deepest;
}

}  // namespace

TEST_CASE("sources that would crash tree-sitter 0.20 are refused with an error naming the bound") {
  // Each of these made libtree-sitter 0.20.7 abort or segfault (a node with 65,536 children or more).
  struct Case {
    const char* what;
    std::string language, code, setting;
  };
  std::vector<Case> cases = {
      {"65,535 unclosed [", "json", repeat("[", 65535), "parser.max_nesting_depth"},
      {"1,000,000 unclosed [", "json", repeat("[", 1000000), "parser.max_nesting_depth"},
      {"deep objects", "json", repeat("{\"a\":", 40000), "parser.max_nesting_depth"},
      {"[ closed by the wrong bracket", "json", repeat("[)", 70000), "parser.max_nesting_depth"},
      {"comments in a row", "json", repeat("//c\n", 70000), "parser.max_run_tokens"},
      {"unclosed (", "c", repeat("(", 70000), "parser.max_nesting_depth"},
      {"unclosed {", "cpp", repeat("{", 70000), "parser.max_nesting_depth"},
      {"comment lines between two declarations", "c", "int a;\n" + repeat("//c\n", 70000) + "int b;\n",
       "parser.max_run_tokens"},
      {"an else-if chain", "c", repeat("if(a){}else ", 70000), "parser.max_nesting_depth"},
      {"a block comment never closed", "c", "/*" + repeat("(", 70000), "parser.max_nesting_depth"},
      {"prefix operators", "javascript", repeat("!", 70000), "parser.max_run_tokens"},
      {"nested ifs without braces", "javascript", repeat("if(a)", 70000), "parser.max_run_tokens"},
      {"right-nested assignments", "javascript", repeat("a=", 70000), "parser.max_run_tokens"},
      {"unclosed <", "tsx", repeat("<a>", 70000), "parser.max_run_tokens"},
      {"comment lines", "python", repeat("#c\n", 70000), "parser.max_run_tokens"},
      {"a docstring never closed", "python", "\"\"\"" + repeat("(", 70000), "parser.max_nesting_depth"},
      {"unclosed if blocks", "bash", repeat("if true; then ", 70000), "parser.max_nesting_depth"},
      {"ifs closed by done", "bash", repeat("if a; then echo; done; ", 70000), "parser.max_nesting_depth"},
      {"a raw string never closed", "rust", "r#\"" + repeat("(", 70000), "parser.max_nesting_depth"},
      {"an else-if chain", "go", repeat("if a {} else ", 70000), "parser.max_nesting_depth"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    CAPTURE(c.language);
    std::string message = error_of("code_parse", {{"language", c.language}, {"code", c.code}});
    CHECK(contains(message, c.setting));
    CHECK(contains(message, "line "));
    // Every tool parses through the same check.
    CHECK(contains(error_of("code_outline", {{"language", c.language}, {"code", c.code}}), c.setting));
    CHECK(contains(error_of("code_query", {{"language", c.language}, {"code", c.code}, {"query", "(ERROR) @e"}}),
                   c.setting));
  }
}

TEST_CASE("nesting and runs within the bounds parse, closed or not") {
  json closed = parse("json", repeat("[", 1000) + repeat("]", 1000), {{"max_nodes", 5}});
  CHECK(closed["has_errors"] == false);
  CHECK(closed["total_nodes"] == 1001);
  json unclosed = parse("json", repeat("[", 1000), {{"max_nodes", 5}});
  CHECK(unclosed["has_errors"] == true);
  // Brackets and comment markers inside strings and comments do not count.
  json quoted = parse("javascript", "const s = \"" + repeat("(", 5000) + "\"; // " + repeat("[", 5000) + "\n");
  CHECK(quoted["has_errors"] == false);
  json commented = parse("c", "int a;\n" + repeat("// c\n", 20000) + "int b;\n", {{"max_nodes", 5}});
  CHECK(commented["has_errors"] == false);
}

TEST_CASE("the parser settings bound the check, and a wrong one names its key") {
  std::vector<mcpd::Tool> tools = mcpd::parser_tools({{"max_nesting_depth", 10}, {"max_run_tokens", 100}});
  ToolContext context = project_context();
  auto run = [&](const std::string& code) {
    return tools[0].handler({{"language", "json"}, {"code", code}}, context).structured;
  };
  CHECK(run(repeat("[", 10) + repeat("]", 10))["has_errors"] == false);
  CHECK_THROWS_WITH_AS(run(repeat("[", 11)), doctest::Contains("(parser.max_nesting_depth = 10)"), ToolError);
  CHECK(run("[" + repeat("1,", 200) + "1]")["has_errors"] == false);  // commas separate
  CHECK_THROWS_WITH_AS(run(repeat("/**/", 101)), doctest::Contains("(parser.max_run_tokens = 100)"), ToolError);

  CHECK_THROWS_WITH_AS(mcpd::parser_tools({{"max_depth", 1}}),
                       "parser.max_depth: unknown setting; known: isolate_query_compile, max_nesting_depth, max_query_bytes, "
                       "max_query_depth, max_run_tokens, query_compile_cache_bytes, query_compile_timeout_ms",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(mcpd::parser_tools({{"max_nesting_depth", 100000}}),
                       "parser.max_nesting_depth: must be an integer from 1 to 4096", std::invalid_argument);
  CHECK_THROWS_WITH_AS(mcpd::parser_tools({{"max_run_tokens", "many"}}),
                       "parser.max_run_tokens: must be an integer from 1 to 50000", std::invalid_argument);
  CHECK_THROWS_AS(mcpd::parser_tools(json::array()), std::invalid_argument);
}

TEST_CASE("a JSON tree never nests deeper than the result may, whatever max_depth asks") {
  ToolContext context = project_context();
  REQUIRE(context.max_result_depth == 500);
  std::string code = repeat("[", 1000) + repeat("]", 1000);
  ToolResult result = call("code_parse", {{"language", "json"}, {"code", code}, {"format", "json"}, {"max_depth", 100000}},
                           context);
  CHECK(json_depth(result.structured) <= context.max_result_depth);
  CHECK(result.structured["truncated"] == true);
  CHECK(result.structured["max_depth_used"] == 249);
  // A smaller limit from the coordinator is obeyed too.
  context.max_result_depth = 40;
  result = call("code_parse", {{"language", "json"}, {"code", code}, {"format", "json"}, {"max_depth", 100000}}, context);
  CHECK(json_depth(result.structured) <= 40);
  CHECK(result.structured["max_depth_used"] == 19);
  // Within the limit nothing is clamped or reported.
  result = call("code_parse", {{"language", "json"}, {"code", "[[1]]"}, {"format", "json"}, {"max_depth", 10}});
  CHECK_FALSE(result.structured.contains("max_depth_used"));
  CHECK(result.structured["truncated"] == false);
}

TEST_CASE("the whole result body stays within max_result_bytes, quotes and escapes counted") {
  ToolContext context = project_context();
  context.max_result_bytes = 8192;
  // Anonymous tokens are quoted in the S-expression, and each quote is escaped twice in the body.
  std::string punctuation = "[" + repeat("[],", 3000) + "[]]";
  for (bool named_only : {true, false})
    for (const char* format : {"sexp", "json"}) {
      CAPTURE(named_only);
      CAPTURE(format);
      ToolResult result = call("code_parse",
                               {{"language", "json"}, {"code", punctuation}, {"named_only", named_only}, {"format", format}},
                               context);
      CHECK(result.structured["truncated"] == true);
      CHECK(result.structured["node_count"].get<int>() > 10);
      CHECK(result_body_bytes(result.structured) <= 8192);
    }
  // Lists of small entries, each with a score of quotes: at 256 KiB what the text copy adds to
  // each entry is far more than the envelope allowance.
  context.max_result_bytes = 256 * 1024;
  ToolResult outline =
      call("code_outline", {{"language", "javascript"}, {"code", big_javascript(4000)}, {"max_symbols", 100000}}, context);
  CHECK(outline.structured["truncated"] == true);
  CHECK(result_body_bytes(outline.structured) <= context.max_result_bytes);
  ToolResult query = call("code_query",
                          {{"language", "javascript"}, {"code", big_javascript(4000)}, {"query", "(identifier) @id"},
                           {"max_captures", 100000}},
                          context);
  CHECK(query.structured["truncated"] == true);
  CHECK(result_body_bytes(query.structured) <= context.max_result_bytes);
}
