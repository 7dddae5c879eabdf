// The wire between the coordinator and a worker process: frames of a 4-byte big-endian length and
// a JSON object (frame.h), over the worker's stdin (coordinator -> worker) and stdout (worker ->
// coordinator). Every frame has a "type". Frames that belong to a call carry its "id" (the
// coordinator's call id, e.g. "c42"), end to end, so one call can be followed through every log.
//
// Version 3 (results as raw parts; cached answers vouched for by their worker). A worker announces itself with `hello` before anything else; a coordinator that sees
// another protocol version, or any frame it cannot parse, kills the worker and reports it.
//
// coordinator -> worker
//   {"type":"call","id":"c42","tool":"code_parse","arguments":{...},"validated":true,"deadline_ms":30000}
//                                           validated: the coordinator checked the arguments
//                                           against the tool's input schema (absent: false, and
//                                           the worker checks them itself)
//   {"type":"cancel","id":"c42"}            stop call c42; the worker answers it with an error
//                                           frame of kind "cancelled" (or its result, if it won)
//   {"type":"ping","seq":7}                 health check; answered by pong at once, even mid-call
//   {"type":"shutdown"}                     finish the current call, flush, exit 0
//   {"type":"validate","id":"v9","tool":"search_text","arguments":{...},"state":"<digest>"}
//                                           is a cached answer vouched for with this state still
//                                           good? answered by validated, even mid-call
//
// worker -> coordinator
//   {"type":"hello","protocol":1,"kind":"parser","version":"0.1.0","pid":123,"tools":["code_parse",...],
//    "max_calls":1,"max_waiting":8}         calls it runs at once (absent: 1), and calls it holds
//                                           waiting beyond them (absent: 1)
//   {"type":"result","id":"c42","structured":{...},"text":"..."}
//   {"type":"error","id":"c42","kind":"tool_error"|"cancelled"|"failed"|"unknown_tool"|"busy","message":"..."}
//   {"type":"progress","id":"c42","progress":3,"total":10,"message":"..."}
//   {"type":"telemetry","logs":[{"level":"info","msg":"...","call":"c42",...}],"metrics":{...}}
//                                           batched, at most every 100 ms, only when there is news
//   {"type":"validated","id":"v9","current":true}
//   {"type":"invalidate","tags":["/abs/dir",...]}
//                                           pushed when something cached answers tagged with
//                                           these directories (or below them) depend on changed
//   {"type":"pong","seq":7,"busy":true,"running":1,"calls":12,"rss_bytes":12345678}
//                                           busy: a call running or waiting; running: calls a
//                                           call thread has taken; calls: served so far
//
// A worker runs up to max_calls calls at once and holds max_waiting more; a call sent beyond that
// gets an error of kind "busy". A result frame carries the CallToolResult as its raw part (frame.h):
//   {"type":"result","id":"c42","peak_rss_bytes":N}\n{"content":[...],"structuredContent":{...},"isError":false}
// and result and error frames carry the worker's peak resident size. The result of a tool whose
// answers only its own process can judge (CachePolicy::custom) carries, when it may be cached,
// "cache":{"state":"<digest>","tag":"/abs/dir"}: the state before the call ran (the coordinator
// caches it vouched for by this worker, and sends validate before serving it) and the tag that
// invalidate frames name. A worker that dies takes the validity of its answers with it.

// Its configuration comes in the environment variable MCPD_WORKER_CONFIG, a JSON object:
//   {"roots":["/abs/root",...],"max_file_bytes":N,"max_result_bytes":N,"max_result_depth":N,
//    "log_level":"info","test_hooks":false,"seccomp":true}
// (seccomp: install the kind's system call filter at start; absent means true). The rest of the
// worker's environment is a short allow-list, not the coordinator's.
// A worker exits when its stdin closes (the coordinator is gone) and asks the kernel to kill it
// when its parent dies (PR_SET_PDEATHSIG), so no worker outlives the coordinator.
#pragma once

#include <cstddef>

#include "json_text.h"

namespace mcpd::worker_protocol {

inline constexpr int version = 3;
inline constexpr const char* config_env = "MCPD_WORKER_CONFIG";

/// How deep a tool's structured result may nest, told to every tool (ToolContext::max_result_depth)
/// on both paths: the depth limit of worker frames and of JSON-RPC lines, less the envelope around
/// the result in either ({"structured": ...} in a result frame, {"result": {"structuredContent":
/// ...}} to the client), with room to spare. A result within it never gets a worker killed.
inline constexpr std::size_t result_envelope_depth = 12;
inline constexpr std::size_t max_result_depth = default_max_json_depth - result_envelope_depth;

}  // namespace mcpd::worker_protocol
