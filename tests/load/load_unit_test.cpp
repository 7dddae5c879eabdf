// mcp-load's pure parts: the percentile definition, argument templates and mixes, the response
// scanner, /proc parsing and the command line.
#include <doctest/doctest.h>
#include <unistd.h>

#include <map>

#include "mcp_load_driver.h"
#include "mcp_load_proc.h"
#include "mcp_load_stats.h"
#include "mcp_load_workload.h"

using namespace mcpd::load;

namespace {
std::vector<std::int64_t> range(std::int64_t from, std::int64_t to) {
  std::vector<std::int64_t> v;
  for (auto i = from; i <= to; ++i) v.push_back(i);
  return v;
}
}  // namespace

// ---------------------------------------------------------------------------------------------
// Percentiles

TEST_CASE("nearest rank of one sample is that sample at every percentile") {
  std::vector<std::int64_t> one{42};
  for (double p : {0.0, 0.1, 50.0, 99.9, 100.0}) CHECK(nearest_rank(one, p) == 42);
}

TEST_CASE("nearest rank of two samples: up to p50 the first, above it the second") {
  std::vector<std::int64_t> two{10, 20};
  CHECK(nearest_rank(two, 0) == 10);
  CHECK(nearest_rank(two, 1) == 10);
  CHECK(nearest_rank(two, 50) == 10);
  CHECK(nearest_rank(two, 50.1) == 20);
  CHECK(nearest_rank(two, 99) == 20);
  CHECK(nearest_rank(two, 100) == 20);
}

TEST_CASE("nearest rank is the ceil(p/100 * n)-th sample, p0 the minimum and p100 the maximum") {
  auto hundred = range(1, 100);
  CHECK(nearest_rank(hundred, 0) == 1);
  CHECK(nearest_rank(hundred, 1) == 1);
  CHECK(nearest_rank(hundred, 1.5) == 2);
  CHECK(nearest_rank(hundred, 50) == 50);
  CHECK(nearest_rank(hundred, 90) == 90);
  CHECK(nearest_rank(hundred, 99) == 99);
  CHECK(nearest_rank(hundred, 99.9) == 100);
  CHECK(nearest_rank(hundred, 100) == 100);
  CHECK(nearest_rank(hundred, 150) == 100);
  CHECK(nearest_rank(hundred, -5) == 1);
}

TEST_CASE("p99.9 of 1000 samples is the 999th, not rounded up by floating point") {
  auto thousand = range(1, 1000);
  CHECK(nearest_rank(thousand, 99.9) == 999);
  CHECK(nearest_rank(thousand, 99.99) == 1000);
  CHECK(nearest_rank(range(1, 10), 70) == 7);  // 0.7 * 10 is 7.000000000000001 in binary
}

TEST_CASE("many equal values give that value at every percentile") {
  std::vector<std::int64_t> same(1000, 7);
  same.push_back(9);
  for (double p : {0.0, 50.0, 99.0, 99.9}) CHECK(nearest_rank(same, p) == 7);
  CHECK(nearest_rank(same, 100) == 9);
}

TEST_CASE("summarize sorts its input and reports non-decreasing percentiles") {
  std::vector<std::int64_t> samples{500, 100, 300, 200, 400};
  LatencySummary s = summarize(samples);
  CHECK(samples == std::vector<std::int64_t>{100, 200, 300, 400, 500});
  CHECK(s.count == 5);
  CHECK(s.min_ns == 100);
  CHECK(s.p50_ns == 300);
  CHECK(s.p90_ns == 500);
  CHECK(s.max_ns == 500);
  CHECK(s.mean_ns == doctest::Approx(300));
  std::vector<std::int64_t> none;
  CHECK(summarize(none).count == 0);
  CHECK(summarize(none).p99_ns == 0);
}

TEST_CASE("median of rounds: the middle one, or the mean of the two middle ones") {
  CHECK(median({3, 1, 2}) == 2);
  CHECK(median({4, 1, 3, 2}) == 2.5);
  CHECK(median({}) == 0);
}

// ---------------------------------------------------------------------------------------------
// Templates and mixes

TEST_CASE("{k} inside a string becomes the call's sequence number") {
  auto t = ArgsTemplate::parse(R"({"language":"c","code":"int x{k};"})");
  CHECK(t.holes() == 1);
  CHECK(t.render(0) == R"({"code":"int x0;","language":"c"})");
  CHECK(mcpd::load::json::parse(t.render(12345))["code"] == "int x12345;");
}

TEST_CASE("every {k}, in nested objects and arrays, is replaced") {
  auto t = ArgsTemplate::parse(R"({"a":"{k}-{k}","b":{"c":["x{k}",{"d":"{k}{k}"}]}})");
  CHECK(t.holes() == 5);
  auto v = mcpd::load::json::parse(t.render(7));
  CHECK(v["a"] == "7-7");
  CHECK(v["b"]["c"][0] == "x7");
  CHECK(v["b"]["c"][1]["d"] == "77");
}

TEST_CASE("{k} may stand for a number, and the text stays on one line") {
  auto t = ArgsTemplate::parse("{\"max_nodes\": {k},\n \"name\": \"n{k}\"}");
  auto line = t.render(99);
  CHECK(line.find('\n') == std::string::npos);
  auto v = mcpd::load::json::parse(line);
  CHECK(v["max_nodes"] == 99);
  CHECK(v["name"] == "n99");
}

TEST_CASE("a template without {k} sends the same arguments every time") {
  auto t = ArgsTemplate::parse(R"({"x": 1})");
  CHECK(t.holes() == 0);
  CHECK(t.render(1) == t.render(2));
  CHECK(ArgsTemplate().render(5) == "{}");
}

TEST_CASE("a template that is not a JSON object is refused with the reason") {
  CHECK_THROWS_WITH_AS(ArgsTemplate::parse("{\"a\":"), doctest::Contains("not JSON"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(ArgsTemplate::parse("[1]"), doctest::Contains("JSON object"), std::invalid_argument);
}

TEST_CASE("a request line is one JSON-RPC tools/call with id k") {
  auto w = Workload::single("code_parse", ArgsTemplate::parse(R"({"code":"int x{k};"})"));
  std::string out;
  w.append_request(41, out);
  REQUIRE(out.back() == '\n');
  auto v = mcpd::load::json::parse(out);
  CHECK(v["jsonrpc"] == "2.0");
  CHECK(v["id"] == 41);
  CHECK(v["method"] == "tools/call");
  CHECK(v["params"]["name"] == "code_parse");
  CHECK(v["params"]["arguments"]["code"] == "int x41;");
}

TEST_CASE("mix draws follow the weights over many draws with a fixed seed") {
  auto mix = mcpd::load::json::parse(R"([{"tool":"a","weight":1},{"tool":"b","weight":3},{"tool":"c","args":{"x":"{k}"},"weight":6}])");
  auto w = Workload::from_mix(mix, 42);
  std::map<std::size_t, int> counts;
  const int n = 100000;
  for (int k = 0; k < n; ++k) ++counts[w.draw(static_cast<std::uint64_t>(k))];
  CHECK(counts[0] / double(n) == doctest::Approx(0.1).epsilon(0.05));
  CHECK(counts[1] / double(n) == doctest::Approx(0.3).epsilon(0.03));
  CHECK(counts[2] / double(n) == doctest::Approx(0.6).epsilon(0.02));
  CHECK(w.describe() == "mix of a x1, b x3, c x6");
}

TEST_CASE("mix draws are a function of the seed and k: the same on every run") {
  auto mix = mcpd::load::json::parse(R"([{"tool":"a"},{"tool":"b"}])");
  auto w1 = Workload::from_mix(mix, 7), w2 = Workload::from_mix(mix, 7), w3 = Workload::from_mix(mix, 8);
  int differ = 0;
  for (std::uint64_t k = 0; k < 1000; ++k) {
    CHECK(w1.draw(k) == w2.draw(k));
    differ += w1.draw(k) != w3.draw(k);
  }
  CHECK(differ > 100);
}

TEST_CASE("a bad mix entry is refused naming the entry and the field") {
  using mcpd::load::json;
  CHECK_THROWS_WITH(Workload::from_mix(json::array()), doctest::Contains("non-empty"));
  CHECK_THROWS_WITH(Workload::from_mix(json::parse(R"([{"tool":"a"},{"weight":1}])")), doctest::Contains("mix entry 1: \"tool\""));
  CHECK_THROWS_WITH(Workload::from_mix(json::parse(R"([{"tool":"a","weight":0}])")), doctest::Contains("\"weight\""));
  CHECK_THROWS_WITH(Workload::from_mix(json::parse(R"([{"tool":"a","args":[1]}])")), doctest::Contains("\"args\""));
  CHECK_THROWS_WITH(Workload::from_mix(json::parse(R"([{"tool":"a","wieght":2}])")), doctest::Contains("unknown field 'wieght'"));
}

// ---------------------------------------------------------------------------------------------
// Response scanning

TEST_CASE("scan: a result with _meta gives id, cache and path") {
  auto m = scan_message(
      R"({"id":12,"jsonrpc":"2.0","result":{"_meta":{"mcpd/cache":"hit","mcpd/path":"cache"},"content":[{"text":"{\"a\":[1,2]}","type":"text"}],"isError":false}})");
  CHECK(m.valid);
  CHECK(m.id_is_integer);
  CHECK(m.id == 12);
  CHECK(m.has_result);
  CHECK_FALSE(m.has_error);
  CHECK_FALSE(m.tool_error);
  CHECK(m.cache == "hit");
  CHECK(m.path == "cache");
}

TEST_CASE("scan: a JSON-RPC error gives its code; isError true is a tool error") {
  auto e = scan_message(R"({"jsonrpc":"2.0","id":3,"error":{"message":"busy {","code":-32001,"data":{"x":[]}}})");
  CHECK(e.valid);
  CHECK(e.has_error);
  CHECK(e.error_code == -32001);
  auto t = scan_message(R"({"jsonrpc":"2.0","id":4,"result":{"content":[],"isError":true}})");
  CHECK(t.tool_error);
  CHECK(t.cache.empty());
}

TEST_CASE("scan: strings with escaped quotes, backslashes and brackets are skipped whole") {
  auto m = scan_message(
      R"({"result":{"content":[{"text":"a \"quoted\" } ] { [ and a backslash \\","type":"text"}],"isError":true},"id":9})");
  CHECK(m.valid);
  CHECK(m.id == 9);
  CHECK(m.tool_error);
}

TEST_CASE("scan: string ids, notifications and server requests are told apart") {
  auto s = scan_message(R"({"jsonrpc":"2.0","id":"mcp-load-1","result":{}})");
  CHECK(s.has_id);
  CHECK_FALSE(s.id_is_integer);
  CHECK(s.id_string == "mcp-load-1");
  auto n = scan_message(R"({"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info"}})");
  CHECK(n.has_method);
  CHECK_FALSE(n.has_id);
  auto r = scan_message(R"({"jsonrpc":"2.0","id":5,"method":"ping"})");
  CHECK(r.has_method);
  CHECK(r.has_id);
}

TEST_CASE("scan: malformed text is invalid, never a crash") {
  for (const char* bad : {"", "not json", "{", R"({"id":)", R"({"id":1,"result":{"content":[)", "[1,2]", R"({"id":1.5})"})
    CHECK_FALSE(scan_message(bad).valid);
}

// ---------------------------------------------------------------------------------------------
// /proc

TEST_CASE("proc stat: fields are counted after the last ')' of the command name") {
  std::string line =
      "1234 (my (odd) cmd) S 77 1234 1234 0 -1 4194304 100 0 0 0 250 50 7 3 20 0 4 0 100 123456 300 "
      "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
  auto s = parse_proc_stat(line);
  REQUIRE(s);
  CHECK(s->pid == 1234);
  CHECK(s->state == 'S');
  CHECK(s->ppid == 77);
  CHECK(s->utime == 250);
  CHECK(s->stime == 50);
  CHECK(s->cutime == 7);
  CHECK(s->cstime == 3);
  CHECK(s->rss_pages == 300);
  CHECK_FALSE(parse_proc_stat("garbage"));
}

TEST_CASE("proc: our own process reads back with our parent and some memory") {
  auto s = read_proc_stat(::getpid());
  REQUIRE(s);
  CHECK(s->ppid == ::getppid());
  CHECK(s->rss_pages > 0);
  CHECK(vm_hwm_bytes(::getpid()) > 0);
  CHECK(tree_usage(::getpid()).processes >= 1);
}

// ---------------------------------------------------------------------------------------------
// Command line

namespace {
Options parse(std::vector<std::string> args) { return parse_command_line(args); }
}  // namespace

TEST_CASE("command line: options, then the server command after --") {
  auto o = parse({"--tool", "code_parse", "--args", "{\"x\":\"{k}\"}", "--concurrency", "32", "--duration=2.5",
                  "--warmup", "10", "--json", "--chaos-ms", "100", "--", "mcpd", "--root", "/tmp", "--json"});
  CHECK(o.tool == "code_parse");
  CHECK(o.concurrency == 32);
  CHECK(o.duration_s == 2.5);
  CHECK(o.calls == 0);
  CHECK(o.warmup == 10);
  CHECK(o.json);
  CHECK(o.chaos_ms == 100);
  CHECK(o.server == std::vector<std::string>{"mcpd", "--root", "/tmp", "--json"});
  CHECK(parse({"--tool", "t", "--", "s"}).calls == 1000);  // the default
}

TEST_CASE("command line: --compare takes two commands split by --vs, or two quoted strings") {
  auto o = parse({"--compare", "--tool", "t", "--rounds", "5", "--", "a", "-x", "--vs", "b", "-y", "1"});
  CHECK(o.rounds == 5);
  CHECK(o.server == std::vector<std::string>{"a", "-x"});
  CHECK(o.server_b == std::vector<std::string>{"b", "-y", "1"});
  auto q = parse({"--compare", "--tool", "t", "mcpd --mode legacy", "mcpd --workers '{\"parser\": {}}'"});
  CHECK(q.server == std::vector<std::string>{"mcpd", "--mode", "legacy"});
  CHECK(q.server_b == std::vector<std::string>{"mcpd", "--workers", "{\"parser\": {}}"});
}

TEST_CASE("command line: mistakes are refused naming the option") {
  CHECK_THROWS_WITH_AS(parse({"--tool", "t", "--calls", "5", "--duration", "1", "--", "s"}), doctest::Contains("--calls and --duration"), UsageError);
  CHECK_THROWS_WITH_AS(parse({"--tool", "t"}), doctest::Contains("no server command"), UsageError);
  CHECK_THROWS_WITH_AS(parse({"--tool", "t", "--concurrency", "0", "--", "s"}), doctest::Contains("--concurrency"), UsageError);
  CHECK_THROWS_WITH_AS(parse({"--tool", "t", "--rate", "-1", "--", "s"}), doctest::Contains("--rate"), UsageError);
  CHECK_THROWS_WITH_AS(parse({"--tool", "t", "--frobnicate", "--", "s"}), doctest::Contains("unknown option --frobnicate"), UsageError);
  CHECK_THROWS_WITH_AS(parse({"--", "s"}), doctest::Contains("--tool"), UsageError);
  CHECK_THROWS_WITH_AS(parse({"--compare", "--tool", "t", "--", "a"}), doctest::Contains("--vs"), UsageError);
  Options bad_args = parse({"--tool", "t", "--args", "{oops", "--", "s"});
  CHECK_THROWS_WITH_AS(make_workload(bad_args), doctest::Contains("--args"), UsageError);
}
