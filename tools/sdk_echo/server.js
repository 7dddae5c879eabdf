// The official TypeScript SDK's stdio server with one tool, echo, answering with its argument: the
// least a server built on the SDK can do per call, so the comparison measures the servers' cores.
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";

const server = new McpServer({ name: "sdk-echo", version: "1.0.0" });
server.registerTool(
  "echo",
  { description: "Returns its value.", inputSchema: { value: z.string() } },
  async ({ value }) => ({ content: [{ type: "text", text: value }] }),
);
await server.connect(new StdioServerTransport());
