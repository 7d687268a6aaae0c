/** Sessions through a real rkat-rpc child: create, turn, stream, list, read, history, archive, errors. */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { MeerkatClient, MeerkatError, StreamNotConsumedError, type MeerkatEvent, type Session } from "rkat-client";

import { LIMIT, RKAT_RPC, childEnv, tempDir } from "./helpers.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const root = tempDir("sessions");
const client = new MeerkatClient({ rkatPath: RKAT_RPC, env: childEnv(root) });
let session: Session;

before(async () => {
  await client.connect({ realmId: "ts-sessions", realmBackend: "sqlite", stateRoot: root });
});
after(() => client.close());

async function rejectsWith(call: Promise<unknown>, code: string): Promise<MeerkatError> {
  const error = await call.then(
    () => assert.fail(`expected ${code}, but the call succeeded`),
    (thrown: unknown) => thrown,
  );
  assert.ok(error instanceof MeerkatError, `expected a MeerkatError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  return error;
}

test("the handshake reports the contract and capabilities", LIMIT, () => {
  assert.equal(client.contractVersion, "0.9.6");
  assert.ok(client.hasCapability("sessions"));
  assert.equal(client.hasCapability("shell"), false); // listed, but not available here
  assert.equal(client.serverInfo.name, "rkat-rpc");
});

test("createSession runs the first turn; the session holds its result", LIMIT, async () => {
  session = await client.createSession("hello", { labels: { team: "a" } });
  assert.match(session.id, UUID);
  assert.equal(session.text, "Mock reply to: hello");
  assert.equal(session.turns, 1);
  assert.equal(session.toolCalls, 0);
  assert.ok(session.usage.inputTokens > 0 && session.usage.outputTokens > 0);
  assert.equal(session.ref, `ts-sessions:${session.id}`);
  assert.equal(session.lastResult?.sessionId, session.id);
});

test("turn maps its camelCase options to the wire (maxTokens, systemPrompt, providerParams)", LIMIT, async () => {
  const clipped = await session.turn("again", { maxTokens: 2 });
  assert.equal(clipped.text, "Mock reply "); // two words: max_tokens reached the server
  assert.equal(session.lastResult, clipped);
  const scripted = await session.turn("x", { providerParams: { reply: "exactly this" }, systemPrompt: "Be brief." });
  assert.equal(scripted.text, "exactly this");
  assert.equal(scripted.sessionId, session.id);
  assert.ok(scripted.usage.totalTokens! > clipped.usage.totalTokens!); // the session's running total
  assert.ok(scripted.runUsage!.inputTokens < scripted.usage.inputTokens);
  await assert.rejects(
    session.turn("x", { labels: { a: "b" } } as never),
    (error: unknown) => error instanceof TypeError && /labels/.test(error.message),
  );
});

test("stream yields typed events live; the deltas join to the result", LIMIT, async () => {
  const stream = session.stream("tell me", { providerParams: { reply_words: 30, token_delay_ms: 5 } });
  assert.throws(() => stream.result, StreamNotConsumedError);
  const seen: MeerkatEvent[] = [];
  let activeMidTurn: boolean | undefined;
  for await (const event of stream) {
    if (event.type === "text_delta" && activeMidTurn === undefined) {
      activeMidTurn = (await client.readSession(session.id)).isActive;
    }
    seen.push(event);
  }
  assert.equal(activeMidTurn, true); // events arrive while the turn still runs
  const types = seen.map((e) => e.type);
  assert.deepEqual(types.slice(0, 2), ["run_started", "turn_started"]);
  assert.deepEqual(types.slice(-3), ["text_complete", "turn_completed", "run_completed"]);
  const deltas = seen.flatMap((e) => (e.type === "text_delta" ? [e.delta] : []));
  assert.equal(deltas.length, 30);
  assert.equal(deltas.join(""), stream.result.text);
  const completed = seen.find((e) => e.type === "turn_completed");
  assert.ok(completed?.type === "turn_completed");
  assert.equal(completed.stopReason, "end_turn");
  assert.equal(completed.usage?.outputTokens, 30);
  const started = seen[0];
  assert.ok(started?.type === "run_started" && started.sessionId === session.id);
  assert.equal(session.lastResult, stream.result);
  assert.equal(stream.sessionId, session.id);
});

test("createSessionStreaming streams the new session's first turn live", LIMIT, async () => {
  const stream = client.createSessionStreaming("a story", {
    providerParams: { reply_words: 20, token_delay_ms: 5 },
    labels: { team: "b" },
  });
  let text = "";
  let activeMidTurn: boolean | undefined;
  for await (const event of stream) {
    if (event.type === "text_delta") {
      activeMidTurn ??= (await client.readSession(stream.sessionId!)).isActive;
      text += event.delta;
    }
  }
  assert.equal(activeMidTurn, true);
  assert.equal(text, stream.result.text);
  assert.equal(stream.result.sessionId, stream.sessionId);
  assert.equal(stream.session.text, text);
  const { text: collected, result } = await stream.session.stream("more", { providerParams: { reply_words: 4 } }).collectText();
  assert.equal(collected, result.text);
  assert.equal(collected.split(" ").length, 4);
});

test("listSessions filters by labels and pages with limit and offset", LIMIT, async () => {
  const labelled = await client.listSessions({ labels: { team: "a" } });
  assert.deepEqual(labelled.map((s) => s.sessionId), [session.id]);
  assert.deepEqual(labelled[0]!.labels, { team: "a" });
  const everything = await client.listSessions();
  assert.equal(everything.length, 2);
  for (const entry of everything) {
    assert.equal(typeof entry.createdAt, "number");
    assert.equal(typeof entry.messageCount, "number");
    assert.equal(entry.isActive, false);
  }
  assert.deepEqual(await client.listSessions({ limit: 1, offset: 1 }), [everything[1]]);
  await rejectsWith(client.listSessions({ limit: -5 }), "INVALID_PARAMS");
});

test("readSession and readSessionHistory show the session's state and transcript", LIMIT, async () => {
  const details = await client.readSession(session.id);
  assert.equal(details.model, "mock");
  assert.equal(details.provider, "mock");
  assert.equal(details.lastAssistantText, session.text);
  assert.equal(details.messageCount, 8); // four runs, a user and an assistant row each
  const page = await client.readSessionHistory(session.id, { offset: 0, limit: 2 });
  assert.equal(page.hasMore, true);
  assert.equal(page.messageCount, 8);
  assert.equal(page.messages.length, 2);
  const [first, second] = page.messages;
  assert.ok(first?.role === "user" && first.content === "hello");
  assert.ok(second?.role === "block_assistant");
  assert.equal(second.stopReason, "end_turn");
  assert.equal(second.blocks[0]?.blockType, "text");
  assert.equal(second.blocks[0]?.text, "Mock reply to: hello");
  const rest = await session.history({ offset: 6 });
  assert.equal(rest.hasMore, false);
  assert.equal(rest.messages.length, 2);
});

test("an unknown session id is SESSION_NOT_FOUND, with the id in its details", LIMIT, async () => {
  const unknown = "0196a3c2-7b2c-7000-8000-00000000a001";
  const error = await rejectsWith(client.readSession(unknown), "SESSION_NOT_FOUND");
  assert.equal(error.jsonrpcCode, -32001);
  assert.equal(error.details.session_id, unknown);
  await rejectsWith(client.session(unknown).turn("hi"), "SESSION_NOT_FOUND");
  // A malformed id is bad input, not an unknown session.
  await rejectsWith(client.readSessionHistory("not-a-uuid"), "INVALID_PARAMS");
});

test("archive hides the session from reads, turns and the list", LIMIT, async () => {
  await session.archive();
  await rejectsWith(session.read(), "SESSION_NOT_FOUND");
  // An archived session's history stays readable (as upstream); reads, turns and the list leave it out.
  assert.ok((await session.history()).messages.length > 0);
  await rejectsWith(session.turn("x"), "SESSION_NOT_FOUND");
  const stream = session.stream("x");
  await assert.rejects(async () => {
    for await (const _ of stream) {
      // nothing arrives
    }
  }, (error: unknown) => error instanceof MeerkatError && error.code === "SESSION_NOT_FOUND");
  const listed = await client.listSessions();
  assert.ok(!listed.some((s) => s.sessionId === session.id));
});
