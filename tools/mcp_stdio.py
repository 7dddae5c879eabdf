"""A minimal MCP client over stdio for the benchmark scripts (Python's standard library only)."""
import json
import subprocess


class McpStdioClient:
    """Launches `argv` as an MCP server, initializes it, and sends one request at a time. A JSON-RPC
    error or a tool error ends the benchmark with the message: a figure from a failing call would lie."""

    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self.n = 0
        self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": "bench", "version": "1"}})
        self.p.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")

    def request(self, method, params):
        self.n += 1
        self.p.stdin.write(json.dumps({"jsonrpc": "2.0", "id": self.n, "method": method, "params": params}) + "\n")
        while True:
            msg = json.loads(self.p.stdout.readline())
            if msg.get("id") == self.n:
                if "error" in msg or msg["result"].get("isError"):
                    raise SystemExit(f"{method}: {json.dumps(msg)[:500]}")
                return msg["result"]

    def close(self):
        self.p.stdin.close()
        self.p.wait()
