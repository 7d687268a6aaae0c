/** Busy sessions and interrupts through a real rkat-rpc child. */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { MeerkatClient, MeerkatError, type MeerkatEvent } from "rkat-client";

import { LIMIT, RKAT_RPC, SLOW, childEnv, tempDir, until } from "./helpers.js";

const client = new MeerkatClient({ rkatPath: RKAT_RPC, env: childEnv(tempDir("busy")) });
before(() => client.connect());
after(() => client.close());

function isCode(code: string) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof MeerkatError, String(error));
    assert.equal(error.code, code, error.message);
    return true;
  };
}

test("a second turn is SESSION_BUSY; interrupt ends the stream with REQUEST_CANCELLED after its events", LIMIT, async () => {
  const session = await client.createSession("hi");
  const stream = session.stream("long", { providerParams: SLOW });
  const seen: MeerkatEvent[] = [];
  let failure: unknown;
  try {
    for await (const event of stream) {
      seen.push(event);
      if (event.type === "text_delta" && seen.filter((e) => e.type === "text_delta").length === 1) {
        // The turn is running: a second one is refused, naming the running run.
        const busy = await session.turn("me too").then(() => undefined, (error: unknown) => error);
        assert.ok(isCode("SESSION_BUSY")(busy) && busy instanceof MeerkatError);
        assert.equal(busy.jsonrpcCode, -32002);
        assert.equal(busy.details.session_id, session.id);
        assert.equal(typeof busy.details.running_run_id, "string");
        await session.interrupt(); // resolves once the turn has ended
      }
    }
  } catch (error) {
    failure = error;
  }
  assert.ok(isCode("REQUEST_CANCELLED")(failure));
  assert.equal((failure as MeerkatError).jsonrpcCode, -32005);
  const last = seen.at(-1);
  assert.ok(last?.type === "run_failed", `last event was ${last?.type}`);
  assert.equal(last.errorReport.class, "cancelled");
  assert.ok(seen.filter((e) => e.type === "text_delta").length < 400);
  assert.throws(() => stream.result, /has not ended/);

  const rows = (await session.history()).messages;
  const kept = rows.at(-1);
  assert.ok(kept?.role === "block_assistant");
  assert.equal(kept.stopReason, "cancelled"); // the partial answer is kept
  assert.match(kept.blocks[0]?.text ?? "", /^lorem/);
});

test("an interrupted non-streaming turn rejects with REQUEST_CANCELLED; idle interrupts are no-ops", LIMIT, async () => {
  const session = await client.createSession("hi");
  const pending = session.turn("long", { providerParams: SLOW });
  // Wait until the turn is running, then interrupt it from the same client (requests run concurrently).
  await until(async () => (await session.read()).isActive, "the turn to start");
  await session.interrupt();
  await assert.rejects(pending, isCode("REQUEST_CANCELLED"));
  await session.interrupt(); // idle: a no-op
  assert.equal((await session.turn("after")).text, "Mock reply to: after");
  await assert.rejects(client.interrupt("0196a3c2-7b2c-7000-8000-00000000a001"), isCode("SESSION_NOT_FOUND"));
});

test("many calls in flight over one child: each gets its own answer", LIMIT, async () => {
  const sessions = await Promise.all(["a", "b", "c", "d"].map((p) => client.createSession(`prompt ${p}`)));
  assert.deepEqual(
    sessions.map((s) => s.text),
    ["Mock reply to: prompt a", "Mock reply to: prompt b", "Mock reply to: prompt c", "Mock reply to: prompt d"],
  );
  // Two streams at once: each sees only its own session's events.
  const [one, two] = sessions;
  const streams = [one!.stream("x", { providerParams: { reply: "one one one" } }), two!.stream("y", { providerParams: { reply: "two two" } })];
  const texts = await Promise.all(streams.map((s) => s.collectText()));
  assert.deepEqual(texts.map((t) => t.text), ["one one one", "two two"]);

  // next() called again before the last call settled: each call gets the following event, in order.
  const stream = one!.stream("z", { providerParams: { reply: "a b" } });
  const firsts = await Promise.all([stream.next(), stream.next(), stream.next()]);
  assert.deepEqual(firsts.map((step) => step.value?.type), ["run_started", "turn_started", "text_delta"]);
  const rest = await Promise.all(Array.from({ length: 8 }, () => stream.next()));
  assert.equal(rest.at(-1)?.done, true);
  assert.equal(stream.result.text, "a b");

  // Megabytes of multi-byte characters each way: lines arrive in many chunks, split inside characters.
  const reply = "🦦é中".repeat(150_000);
  const prompt = `${"ünïcödé ".repeat(100_000)}🦦`;
  const [big, small] = await Promise.all([two!.turn(prompt, { providerParams: { reply } }), one!.turn("meanwhile")]);
  assert.equal(big.text, reply);
  assert.equal(small.text, "Mock reply to: meanwhile");
  const asked = (await two!.history()).messages.at(-2);
  assert.ok(asked?.role === "user" && asked.content === prompt);
});
