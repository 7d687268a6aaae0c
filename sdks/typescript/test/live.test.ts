/** The live-session API through real rkat-rpc children: subscriptions across processes, the event log, stop, inject. */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { MeerkatClient, MeerkatError, type Session } from "rkat-client";

import { LIMIT, RKAT_RPC, childEnv, tempDir } from "./helpers.js";

const root = tempDir("live");
const a = new MeerkatClient({ rkatPath: RKAT_RPC, env: childEnv(root) });
const b = new MeerkatClient({ rkatPath: RKAT_RPC, env: childEnv(root) });
let session: Session;

before(async () => {
  await a.connect({ realmId: "ts-live", realmBackend: "sqlite", stateRoot: root });
  await b.connect({ realmId: "ts-live", realmBackend: "sqlite", stateRoot: root });
  session = await a.createSession("hello");
});
after(async () => {
  await a.close();
  await b.close();
});

test("a subscription in another process sees every delta of a turn, then the log has the same events", LIMIT, async () => {
  const subscription = await b.subscribeEvents(session.id);
  const seen: { seq: number; eventId: string; type: string; delta?: string }[] = [];
  const following = (async () => {
    for await (const envelope of subscription) {
      const event = envelope.event as { type: string; delta?: string };
      seen.push({ seq: envelope.seq, eventId: envelope.eventId, type: event.type, delta: event.delta });
      if (event.type === "run_completed") return;
    }
  })();
  await new Promise((resolve) => setTimeout(resolve, 200));
  const result = await session.turn("one two three");
  await following;
  assert.equal(seen[0]?.type, "run_started");
  assert.equal(seen.filter((e) => e.type === "text_delta").map((e) => e.delta).join(""), result.text);
  await subscription.close();
  assert.equal(subscription.endReason, "closed");
  const latest = await a.latestEventCursor(session.id);
  assert.equal(latest, seen[seen.length - 1]?.seq);
  const page = await b.listEventsSince(session.id, seen[1]!.seq);
  assert.deepEqual(page.events.map((e) => e.eventId), seen.slice(2).map((e) => e.eventId));
  assert.equal(page.hasMore, false);
  assert.equal((await a.listEventsSince(session.id, 0, { limit: 2 })).hasMore, true);
});

test("inject context and additional instructions reach the model; stop_run is fenced by run id", LIMIT, async () => {
  const applied = await session.injectContext("The animal is an OTTER.", { idempotencyKey: "k" });
  assert.equal(applied.status, "applied");
  assert.equal((await session.injectContext("The animal is an OTTER.", { idempotencyKey: "k" })).status, "duplicate");
  assert.equal((await a.inputState(session.id, { idempotencyKey: "k" }))?.currentState, "applied");
  const seen = await session.turn("mock:system", { additionalInstructions: ["Be brief."] });
  assert.match(seen.text, /OTTER/);
  assert.match(seen.text, /Be brief\./);
  const stale = await session.stopRun("01936f8a-7b2c-7000-8000-0000000000aa");
  assert.equal(stale.outcome, "not_current");
  assert.equal(stale.currentRunId, null);
  const error = await a.injectContext("01936f8a-7b2c-7000-8000-000000000099", "x").then(
    () => assert.fail("expected SESSION_NOT_FOUND"), (thrown: unknown) => thrown);
  assert.ok(error instanceof MeerkatError && error.code === "SESSION_NOT_FOUND");
  const queued = await b.sendExternalEvent(session.id, "ci.done", { ok: true }, { idempotencyKey: "e" });
  assert.equal(queued.outcomeType, "accepted");
  const realms = await a.listRealms();
  assert.equal(realms[0]?.realmId, "ts-live");
});
