/** The history API through a real rkat-rpc child: forks, revisions, restore, system prompt, export. */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { MeerkatClient, MeerkatError, type Session } from "rkat-client";

import { LIMIT, RKAT_RPC, childEnv, tempDir } from "./helpers.js";

const root = tempDir("history");
const client = new MeerkatClient({ rkatPath: RKAT_RPC, env: childEnv(root) });
let session: Session;

before(async () => {
  await client.connect({ realmId: "ts-history", realmBackend: "sqlite", stateRoot: root });
  session = await client.createSession("first question", { systemPrompt: "Be terse." } as never);
  await session.turn("second question");
});
after(() => client.close());

async function rejectsWith(call: Promise<unknown>, code: string): Promise<void> {
  const error = await call.then(() => assert.fail(`expected ${code}`), (thrown: unknown) => thrown);
  assert.ok(error instanceof MeerkatError, String(error));
  assert.equal(error.code, code, error.message);
}

test("a fork holds exactly the prefix; a turn on it leaves the source alone", LIMIT, async () => {
  const original = (await session.history()).messages;
  const fork = await client.forkSession(session.id, { at: 2 });
  assert.equal(fork.sourceSessionId, session.id);
  assert.equal(fork.messageCount, 2);
  assert.deepEqual((await client.readSessionHistory(fork.sessionId)).messages, original.slice(0, 2));
  const child = await session.fork(2);
  const reply = await child.turn("another question");
  assert.equal(reply.text, "Mock reply to: another question");
  assert.deepEqual((await session.history()).messages, original);
  const replaced = await client.forkSession(session.id, {
    at: 1, replacement: { type: "message", message: { role: "user", content: "a better question" } },
  });
  const rows = (await client.readSessionHistory(replaced.sessionId)).messages;
  assert.equal(rows.length, 2);
  assert.equal((rows[1] as { content: unknown }).content, "a better question");
  await rejectsWith(client.forkSession(session.id, { at: 99 }), "INVALID_PARAMS");
});

test("rewrite then restore gives back the original rows", LIMIT, async () => {
  const original = (await session.history()).messages;
  const done = await client.rewriteTranscript(session.id, { start: 3, end: 5, replacement: [], reason: "prune" });
  assert.equal(done.revision, "r1");
  assert.equal(done.messageCount, 3);
  const listing = await session.revisions();
  assert.equal(listing.headRevision, "r1");
  assert.deepEqual(listing.entries.map((e) => [e.revision, e.parentRevision, e.reason]), [["r1", "r0", "prune"]]);
  const old = await client.transcriptRevision(session.id, "r0");
  assert.deepEqual(old.messages, original);
  assert.equal(old.headRevision, "r1");
  const restored = await session.restore("r0");
  assert.equal(restored.revision, "r2");
  assert.deepEqual((await session.history()).messages, original);
  // Rows read from the history go back through a rewrite unchanged.
  const again = await client.rewriteTranscript(session.id, { start: 0, end: original.length, replacement: original });
  assert.equal(again.commit.original_span_digest, again.commit.replacement_digest);
  await rejectsWith(client.restoreTranscriptRevision(session.id, "r9"), "INVALID_PARAMS");
});

test("a system prompt update reaches the model from its next call; export gives ATIF", LIMIT, async () => {
  const update = await session.updateSystemPrompt("Be a pirate.", { targetMessageIndex: 0 });
  assert.equal(update.status, "applied");
  assert.equal(update.version, 1);
  const seen = await session.turn("mock:system");
  assert.match(seen.text, /pirate/);
  assert.doesNotMatch(seen.text, /terse/);
  const same = await session.updateSystemPrompt("Be a pirate.");
  assert.equal(same.status, "duplicate");
  assert.equal(same.commit, null);
  const atif = await client.exportAtif(session.id, { agentName: "ts" });
  assert.equal(atif.schema_version, "ATIF-v1.4");
  assert.equal((atif.agent as { name: string }).name, "ts");
});
