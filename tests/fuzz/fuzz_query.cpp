// Tree-sitter query compilation and its predicates (workers/parser/query), through the code_query
// tool as a client reaches it: the first byte picks a language and a sample source, the rest is
// the query. The query is compiled (tree-sitter's parser, then our predicate and regex checks),
// run over the sample, and each match's predicates evaluated.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "json_text.h"
#include "parser_tools.h"
#include "tool_runner.h"

using namespace mcpd;

namespace {

struct Sample {
  const char* language;
  const char* code;
};

const Sample kSamples[] = {
    {"c", "#include <stdio.h>\n/* doc */\nint main(int argc, char **argv) { if (argc) return 1; return 0; }\n"},
    {"cpp", "namespace n { template <class T> struct S : B { int f() const { return x; } T x; }; }\n"},
    {"python", "class A(B):\n    \"\"\"doc\"\"\"\n    def f(self, x=1):\n        return [i for i in x if i]\n"},
    {"javascript", "// f\nexport class A extends B { m() { return () => `t${x}`; } }\nconst f = function g() {};\n"},
    {"typescript", "interface I { a: number }\nfunction f<T>(x: T): T { return x as T; }\n"},
    {"tsx", "const C = () => <div className=\"a\">{x}</div>;\n"},
    {"go", "package main\n// F does\nfunc F(a int) (int, error) { return a, nil }\ntype T struct{ X int }\n"},
    {"rust", "/// d\npub fn f<'a>(x: &'a str) -> Option<&'a str> { match x { \"\" => None, _ => Some(x) } }\n"},
    {"bash", "f() { echo \"$1\" | grep -q x && exit 1; }\nfor i in a b; do f $i; done\n"},
    {"json", "{\"a\": [1, 2.5, true, null, {\"b\": \"c\"}]}\n"},
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  static const Tool tool = [] {
    for (const auto& t : parser_tools())
      if (t.name == "code_query") return t;
    std::abort();
  }();
  const Sample& sample = kSamples[data[0] % (sizeof kSamples / sizeof kSamples[0])];
  std::string query(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (!is_valid_utf8(query)) return 0;  // the server refuses such a line before any tool sees it
  json arguments = {{"language", sample.language}, {"code", sample.code}, {"query", query}};
  ToolContext context;
  ToolRun run = run_tool(tool, arguments, context);
  // A query the library cannot compile is a tool error with a message; nothing else may fail.
  if (run.status == ToolRun::Status::failed) std::abort();
  return 0;
}
