// The wire between the coordinator and a worker process: frames of a 4-byte big-endian length and
// a JSON object (frame.h), over the worker's stdin (coordinator -> worker) and stdout (worker ->
// coordinator). Every frame has a "type". Frames that belong to a call carry its "id" (the
// coordinator's call id, e.g. "c42"), end to end, so one call can be followed through every log.
//
// Version 1. A worker announces itself with `hello` before anything else; a coordinator that sees
// another protocol version, or any frame it cannot parse, kills the worker and reports it.
//
// coordinator -> worker
//   {"type":"call","id":"c42","tool":"code_parse","arguments":{...},"deadline_ms":30000}
//   {"type":"cancel","id":"c42"}            stop call c42; the worker answers it with an error
//                                           frame of kind "cancelled" (or its result, if it won)
//   {"type":"ping","seq":7}                 health check; answered by pong at once, even mid-call
//   {"type":"shutdown"}                     finish the current call, flush, exit 0
//
// worker -> coordinator
//   {"type":"hello","protocol":1,"kind":"parser","version":"0.1.0","pid":123,"tools":["code_parse",...]}
//   {"type":"result","id":"c42","structured":{...},"text":"..."}
//   {"type":"error","id":"c42","kind":"tool_error"|"cancelled"|"failed"|"unknown_tool"|"busy","message":"..."}
//   {"type":"progress","id":"c42","progress":3,"total":10,"message":"..."}
//   {"type":"telemetry","logs":[{"level":"info","msg":"...","call":"c42",...}],"metrics":{...}}
//                                           batched, at most every 100 ms, only when there is news
//   {"type":"pong","seq":7,"busy":true,"calls":12,"rss_bytes":12345678}
//
// A worker runs one call at a time; a call sent while it is busy gets an error of kind "busy".
// Its configuration comes in the environment variable MCPD_WORKER_CONFIG, a JSON object:
//   {"roots":["/abs/root",...],"max_file_bytes":N,"max_result_bytes":N,"log_level":"info",
//    "test_hooks":false,"seccomp":true}
// (seccomp: install the kind's system call filter at start; absent means true). The rest of the
// worker's environment is a short allow-list, not the coordinator's.
// A worker exits when its stdin closes (the coordinator is gone) and asks the kernel to kill it
// when its parent dies (PR_SET_PDEATHSIG), so no worker outlives the coordinator.
#pragma once

namespace mcpd::worker_protocol {

inline constexpr int version = 1;
inline constexpr const char* config_env = "MCPD_WORKER_CONFIG";

}  // namespace mcpd::worker_protocol
