/** Callback tools through a real rkat-rpc child: declared before and after connect, nested calls, errors. */

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { MeerkatClient, type MeerkatEvent, type ToolCall } from "rkat-client";

import { LIMIT, RKAT_RPC, childEnv, tempDir } from "./helpers.js";

const client = new MeerkatClient({ rkatPath: RKAT_RPC, env: childEnv(tempDir("tools")) });
after(() => client.close());

const calls: ToolCall[] = [];
client.tool(
  "search",
  { description: "Search the docs", inputSchema: { type: "object", properties: { q: { type: "string" } } } },
  async (args, call) => {
    calls.push(call);
    const sessions = await client.listSessions(); // a call of our own while the turn waits on us
    return `${sessions.length} hits for ${String(args.q)}`;
  },
);

test("a tool declared before connect is called with its arguments and dedupe key", LIMIT, async () => {
  await client.connect();
  const session = await client.createSession('tool:search{"q": "otters"}');
  assert.equal(session.text, "Tool search returned: 1 hits for otters");
  assert.equal(session.toolCalls, 1);
  const [call] = calls;
  assert.equal(call?.name, "search");
  assert.match(call?.toolUseId ?? "", /^toolu_/);
  assert.equal(call?.dedupeKey?.callId, call?.toolUseId);
  assert.equal(call?.dedupeKey?.round, 0);
  assert.equal(call?.dedupeKey?.callDigest.length, 64);
});

test("tools declared while connected work at once; results, errors and replacements reach the model", LIMIT, async () => {
  const session = await client.createSession("hi");
  client.tool("blocks", () => [{ type: "text", text: "block one" }]); // plain functions and content blocks
  client.tool("object", () => ({ answer: 42 }));
  client.tool("broken", async () => {
    throw new Error("kaput");
  });

  assert.equal((await session.turn("tool:blocks")).text, "Tool blocks returned: block one");
  assert.equal((await session.turn("tool:object")).text, 'Tool object returned: {"answer":42}');

  const events: MeerkatEvent[] = [];
  for await (const event of session.stream("tool:broken")) events.push(event);
  const requested = events.find((e) => e.type === "tool_call_requested");
  assert.ok(requested?.type === "tool_call_requested");
  assert.equal(requested.name, "broken");
  assert.deepEqual(requested.args, {});
  const completed = events.find((e) => e.type === "tool_execution_completed");
  assert.ok(completed?.type === "tool_execution_completed" && typeof completed.durationMs === "number");
  const received = events.find((e) => e.type === "tool_result_received");
  assert.ok(received?.type === "tool_result_received");
  assert.equal(received.isError, true);
  assert.deepEqual(received.content, [{ type: "text", text: "Tool error: kaput" }]);
  const turnsStarted = events.filter((e) => e.type === "turn_started").length;
  assert.equal(turnsStarted, 2); // the tool call, then the answer

  // Declaring a name again replaces the tool, on both sides.
  client.tool("blocks", () => "replaced");
  assert.equal((await session.turn("tool:blocks")).text, "Tool blocks returned: replaced");

  const history = await session.history();
  const results = history.messages.flatMap((m) => (m.role === "tool_results" ? m.results : []));
  assert.deepEqual(
    results.map((r) => r.isError),
    [false, false, true, false],
  );
  assert.equal(results[0]?.toolUseId.startsWith("toolu_"), true);
  assert.deepEqual(client.toolRegistrationErrors, []);
});

test("a tool result JSON cannot carry reaches the model as a tool error, and the program goes on", LIMIT, async () => {
  const session = await client.createSession("hi");
  client.tool("bigint", () => [{ type: "text", text: "n", n: 10n }]);
  client.tool("half_emoji", () => `half ${"🦦".slice(0, 1)}`);

  const bigint = await session.stream("tool:bigint").collectText();
  assert.match(bigint.text, /^Tool bigint returned: .*"execution_failed".*the tool\/execute reply cannot be sent as JSON: .*BigInt/);
  const half = await session.turn("tool:half_emoji");
  assert.match(half.text, /^Tool half_emoji returned: .*"execution_failed".*a string in the tool\/execute reply holds a lone UTF-16 surrogate/);
  const results = (await session.history()).messages.flatMap((m) => (m.role === "tool_results" ? m.results : []));
  assert.deepEqual(results.map((r) => r.isError), [true, true]);
});
