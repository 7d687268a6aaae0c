/**
 * The TypeScript tabs of the seed (seed-sessions-and-streaming.md), run as written, in order.
 *
 * Each snippet sits in a block of its own (several declare the same names), and
 * between them is only the glue a reader would add: the import, the ids the
 * seed elides (`"01936f8a-..."` becomes `session.id`), a few labelled prints,
 * `close()`, and, marked SETUP, the realm state a snippet assumes. Interrupt and
 * archive run last, as archiving first would leave the later snippets no
 * session. `rkat-rpc` is found on PATH or through MEERKAT_BIN_PATH.
 *
 * Build with `npm run build:test`, run with `node build-test/examples/seed.js`.
 */

import { MeerkatClient } from "rkat-client";

// -- Create a session
const client = new MeerkatClient();
await client.connect();

const session = await client.createSession("What is the capital of France?", {
  model: "claude-sonnet-4-6",
});
console.log(session.text);

// -- Multi-turn
{
  const result = await session.turn("Now explain it in more detail");
  console.log(result.text);
}

// -- List sessions
{
  const sessions = await client.listSessions();
  for (const s of sessions) {
    console.log(s.sessionId, s.messageCount, s.isActive);
  }
}

// -- Read session state
{
  const state = await client.readSession(session.id);
  console.log(state);
}

// -- Event streaming
{
  // Streaming on session create
  const stream = client.createSessionStreaming("Tell me a story");
  for await (const event of stream) {
    if (event.type === "text_delta") {
      process.stdout.write(event.delta);
    }
  }
  const result = stream.result;
  console.log(`\nSTREAM RESULT ${result.text}`);

  // Streaming on a follow-up turn
  for await (const event of session.stream("Continue the story")) {
    if (event.type === "text_delta") {
      process.stdout.write(event.delta);
    }
  }
  console.log();
}

// -- Model and provider selection
{
  const session = await client.createSession("Hello", {
    model: "gpt-5.5",
    provider: "openai",
    providerParams: { reasoning_effort: "high" },
  });
  console.log("OPENAI", JSON.stringify(await client.readSession(session.id)));
}

// -- Config management
{
  for (let i = 0; i < 3; i++) await client.patchConfig({ agent: {} }); // SETUP: the snippet assumes generation 3
  const config = await client.getConfig();
  await client.setConfig({ agent: { model: "gpt-5.5" } }, { expectedGeneration: 3 });
  await client.patchConfig({ agent: { maxTokensPerTurn: 8192 } }, { expectedGeneration: 4 });
  console.log("CONFIG", config.generation, JSON.stringify((await client.getConfig()).config.agent));
}

// -- Interrupt a turn (a no-op when idle)
await session.interrupt();

// -- Archive a session
await session.archive();
await client.close();

// -- Realm selection
{
  const client = new MeerkatClient(); // SETUP: a client not yet connected
  await client.connect({ realmId: "team-alpha", instanceId: "worker-1" });
  const config = await client.getConfig();
  console.log("REALM", config.realmId, config.instanceId);
  await client.close();
}
