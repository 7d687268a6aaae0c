/**
 * The child process: finding rkat-rpc, the argv and params it gets, version and
 * crash handling, and that it never outlives close() or the program.
 *
 * What a real server cannot be made to do (report another contract version,
 * crash mid-call, log what it received) is played by the repository's stub
 * server, tests/sdk_drivers/stub_rpc.py.
 */

import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";

import {
  BinaryNotFoundError,
  ClientClosedError,
  ConnectionClosedError,
  ConnectTimeoutError,
  MeerkatClient,
  MeerkatError,
  VersionMismatchError,
  findRkatRpc,
} from "rkat-client";

import { LIMIT, PACKAGE_ROOT, PYTHON, REPO_ROOT, RKAT_RPC, SLOW, childEnv, isAlive, tempDir, until } from "./helpers.js";

const tmp = tempDir("process");
const STUB_DIR = join(tmp, "stub-bin");
const STUB = join(STUB_DIR, "rkat-rpc");
const EMPTY_DIR = join(tmp, "empty-bin");
mkdirSync(STUB_DIR, { recursive: true });
mkdirSync(EMPTY_DIR, { recursive: true });
writeFileSync(STUB, `#!/bin/sh\nexec "${PYTHON}" "${join(REPO_ROOT, "tests", "sdk_drivers", "stub_rpc.py")}" "$@"\n`);
chmodSync(STUB, 0o755);

/** A client of the stub, logging what it receives to a fresh file; returns the client and a log reader. */
function stubClient(extra: Record<string, string> = {}): { client: MeerkatClient; log: () => Record<string, unknown>[] } {
  const logPath = join(tmp, `stub-${Math.random().toString(36).slice(2)}.jsonl`);
  writeFileSync(logPath, "");
  const env = childEnv(tmp, { PATH: `${STUB_DIR}:${process.env.PATH ?? ""}`, STUB_LOG: logPath, ...extra });
  const log = () =>
    readFileSync(logPath, "utf8")
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { client: new MeerkatClient({ env }), log };
}

test("rkat-rpc is found from the rkatPath option, then MEERKAT_BIN_PATH, then PATH", LIMIT, () => {
  const everything = { MEERKAT_BIN_PATH: RKAT_RPC, PATH: STUB_DIR };
  assert.equal(findRkatRpc(STUB, everything), STUB); // the option wins
  assert.equal(findRkatRpc(undefined, everything), RKAT_RPC); // then the variable
  assert.equal(findRkatRpc(undefined, { PATH: `${EMPTY_DIR}:${STUB_DIR}` }), STUB); // then PATH
  assert.equal(findRkatRpc(undefined, { MEERKAT_BIN_PATH: "rkat-rpc", PATH: STUB_DIR }), STUB); // a bare name: PATH
  assert.equal(findRkatRpc("rkat-rpc", { PATH: STUB_DIR }), STUB);
});

test("a missing rkat-rpc is a BinaryNotFoundError that says where it looked and how to fix it", LIMIT, async () => {
  assert.throws(() => findRkatRpc(undefined, { PATH: EMPTY_DIR }), (error: unknown) => {
    assert.ok(error instanceof BinaryNotFoundError && error instanceof MeerkatError);
    assert.match(error.message, /rkat-rpc not found; put rkat-rpc on PATH, set MEERKAT_BIN_PATH/);
    assert.match(error.message, /not on PyPI: pip install \/path\/to\/the\/rkat\/repository/);
    assert.doesNotMatch(error.message, /pip install rkat\b/);
    return true;
  });
  assert.throws(() => findRkatRpc(undefined, { MEERKAT_BIN_PATH: join(tmp, "nowhere", "rkat-rpc") }), /MEERKAT_BIN_PATH names .*which is not a file/);
  assert.throws(() => findRkatRpc(join(tmp, "nowhere"), {}), /the rkatPath option names .*which is not a file/);
  assert.throws(() => findRkatRpc(undefined, { MEERKAT_BIN_PATH: "   " }), /MEERKAT_BIN_PATH is set but blank/);
  const notExecutable = join(tmp, "plain-file");
  writeFileSync(notExecutable, "#!/bin/sh\n");
  assert.throws(() => findRkatRpc(notExecutable, {}), /which is not executable/);
  const cli = join(STUB_DIR, "rkat");
  writeFileSync(cli, "#!/bin/sh\n");
  chmodSync(cli, 0o755);
  assert.throws(() => findRkatRpc(cli, {}), /names the rkat CLI; point it at rkat-rpc instead/);

  const client = new MeerkatClient({ env: { PATH: EMPTY_DIR } });
  await assert.rejects(client.connect(), BinaryNotFoundError);
  assert.equal(client.serverPid, undefined);
});

test("a binary that never answers fails connect() with ConnectTimeoutError instead of hanging", LIMIT, async () => {
  const silent = join(tmp, "silent-rkat-rpc");
  writeFileSync(silent, "#!/bin/sh\nexec sleep 600\n");
  chmodSync(silent, 0o755);
  const client = new MeerkatClient({ rkatPath: silent, connectTimeoutMs: 500 });
  const started = Date.now();
  await assert.rejects(client.connect(), (error: unknown) => {
    assert.ok(error instanceof ConnectTimeoutError && error instanceof ConnectionClosedError);
    assert.match(error.message, /did not answer the handshake within 0.5 s/);
    return true;
  });
  assert.ok(Date.now() - started < 20_000);
  assert.equal(client.serverPid, undefined); // the child was stopped
  assert.throws(() => new MeerkatClient({ connectTimeoutMs: 0 }), /connectTimeoutMs must be > 0/);
});

test("connect starts PATH's rkat-rpc with the realm options as arguments, and shakes hands", LIMIT, async () => {
  const { client, log } = stubClient();
  await client.connect({ realmId: "demo", instanceId: "i1", realmBackend: "memory", stateRoot: "/srv/x" });
  await client.createSession("hello", {
    model: "m",
    provider: "anthropic",
    systemPrompt: { action: "disable" },
    maxTokens: 3,
    providerParams: { reasoning_effort: "high" },
    labels: { team: "a" },
    budgetMaxTokens: 10,
  });
  await client.session("0196a3c2-7b2c-7000-8000-00000000a001").stream("more", { maxTokens: 1 }).collect();
  await client.close();
  const [start, ...rest] = log();
  assert.deepEqual(start, { argv: ["--realm", "demo", "--instance", "i1", "--realm-backend", "memory", "--state-root", "/srv/x"] });
  const requests = rest.map((entry) => entry.request as Record<string, unknown>);
  assert.deepEqual(requests.slice(0, 2), [
    { jsonrpc: "2.0", id: 1, method: "initialize", params: {} },
    { jsonrpc: "2.0", id: 2, method: "capabilities/get", params: {} },
  ]);
  assert.deepEqual(requests[2]?.params, {
    prompt: "hello",
    model: "m",
    provider: "anthropic",
    system_prompt: { action: "disable" },
    max_tokens: 3,
    provider_params: { reasoning_effort: "high" },
    labels: { team: "a" },
    budget_max_tokens: 10,
    session_events: false,
  });
  assert.deepEqual(requests[3]?.params, { session_id: "0196a3c2-7b2c-7000-8000-00000000a001", prompt: "more", max_tokens: 1 });
  assert.equal(client.hasCapability("sessions"), true);
  assert.equal(client.capabilities.find((c) => c.id === "shell")?.status, "DisabledByPolicy");

  const isolated = stubClient();
  await isolated.client.connect({ isolated: true });
  await isolated.client.close();
  assert.deepEqual(isolated.log()[0], { argv: ["--isolated"] });

  const database = stubClient(); // the URL (it may hold a password) goes in the environment, not the argv
  await database.client.connect({ realmId: "team", realmBackend: "postgres", databaseUrl: "postgresql://u:pw@db/x" });
  await database.client.close();
  assert.deepEqual(database.log()[0], { argv: ["--realm", "team", "--realm-backend", "postgres"],
                                        database_url: "postgresql://u:pw@db/x" });

  const both = stubClient();
  await assert.rejects(both.client.connect({ realmId: "x", isolated: true }), (error: unknown) => {
    return error instanceof MeerkatError && error.code === "INVALID_PARAMS";
  });
  assert.deepEqual(both.log(), []); // nothing was started
});

test("another contract version is a VersionMismatchError; a crash fails every call with the stderr tail", LIMIT, async () => {
  const newer = stubClient({ STUB_VERSION: "0.10.0" });
  await assert.rejects(newer.client.connect(), (error: unknown) => {
    return error instanceof VersionMismatchError && /"0\.10\.0"/.test(error.message);
  });

  const crashing = stubClient({ STUB_CRASH_ON: "session/list" });
  await crashing.client.connect();
  const crash = await crashing.client.listSessions().then(() => undefined, (error: unknown) => error);
  assert.ok(crash instanceof ConnectionClosedError, String(crash));
  assert.equal(crash.details.exit_code, 3);
  assert.match(String(crash.details.stderr_tail), /crashing on session\/list/);
  await assert.rejects(crashing.client.getConfig(), ConnectionClosedError); // and every later call
  await crashing.client.close();
});

test("a request the server cannot read fails alone with a clear error; the connection keeps serving", LIMIT, async () => {
  const limited = join(tmp, "limited-rkat-rpc");
  writeFileSync(limited, `#!/bin/sh\nexec "${RKAT_RPC}" --max-line-bytes 4096 "$@"\n`);
  chmodSync(limited, 0o755);
  const client = new MeerkatClient({ rkatPath: limited, env: childEnv(tmp) });
  await client.connect();
  try {
    const session = await client.createSession("hi");
    const [tooLong, fits] = await Promise.allSettled([session.turn("x".repeat(5000)), client.listSessions()]);
    assert.ok(tooLong.status === "rejected" && tooLong.reason instanceof MeerkatError, String(tooLong));
    assert.equal(tooLong.reason.code, "PAYLOAD_TOO_LARGE");
    assert.match(tooLong.reason.message, /a line of \d+ bytes exceeds the limit of 4096 bytes/);
    assert.ok(fits.status === "fulfilled" && fits.value.length === 1);

    const halfAnEmoji = "🦦".slice(0, 1);
    const lone = await session.turn(`a ${halfAnEmoji} b`).then(() => undefined, (error: unknown) => error);
    assert.ok(lone instanceof MeerkatError && lone.code === "INVALID_PARAMS", String(lone));
    assert.match(lone.message, /turn\/start request holds a lone UTF-16 surrogate/);
    const big = await session.turn("x", { providerParams: { seed: 10n } }).then(() => undefined, (error: unknown) => error);
    assert.ok(big instanceof MeerkatError && big.code === "INVALID_PARAMS", String(big));
    assert.match(big.message, /turn\/start request cannot be sent as JSON: .*BigInt/);
    const stream = session.stream(halfAnEmoji);
    await assert.rejects(stream.collect(), (error: unknown) => error instanceof MeerkatError && error.code === "INVALID_PARAMS");

    // Whole characters, escaped backslashes and a `\ud800` written as text all pass.
    const text = "🦦 é \\ud800 \\\\";
    assert.equal((await session.turn(text, { providerParams: { reply: "ok" } })).text, "ok");
    const asked = (await session.history()).messages.at(-2);
    assert.ok(asked?.role === "user" && asked.content === text);
  } finally {
    await client.close();
  }
});

test("close() fails pending calls with ClientClosedError and ends the child", LIMIT, async () => {
  const client = new MeerkatClient({ rkatPath: RKAT_RPC, env: childEnv(tmp) });
  await client.connect();
  const pid = client.serverPid!;
  assert.ok(isAlive(pid));
  const session = await client.createSession("hi");
  const pending = session.turn("long", { providerParams: SLOW });
  await until(async () => (await session.read()).isActive, "the turn to start");
  const outcome = assert.rejects(pending, ClientClosedError);
  await client.close();
  await outcome;
  assert.equal(isAlive(pid), false);
  await assert.rejects(client.listSessions(), ClientClosedError);
  await client.close(); // twice is fine
});

/** A Node program using the package from outside it, as an installed dependency would. */
function writeProgram(name: string, body: string): string {
  const path = join(tmp, name);
  const entry = pathToFileURL(join(PACKAGE_ROOT, "dist", "index.js")).href;
  writeFileSync(path, `import { MeerkatClient } from ${JSON.stringify(entry)};\n${body}`);
  return path;
}

test("a program that ends without close() exits by itself, and its child goes with it", LIMIT, async () => {
  // Calls that cannot be sent (a BigInt, half an emoji) fail at once and leave nothing waiting.
  const program = writeProgram(
    "forgets-close.mjs",
    `const client = new MeerkatClient({ rkatPath: ${JSON.stringify(RKAT_RPC)} });
await client.connect();
const session = await client.createSession("hi");
const unsent = await Promise.all([
  session.turn("x", { providerParams: { seed: 10n } }).catch((error) => error.code),
  session.turn("🦦".slice(0, 1)).catch((error) => error.code),
]);
console.log(client.serverPid, unsent.join(","), session.text);
`,
  );
  const output = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, [program], { env: childEnv(tmp), timeout: 30000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
  const [pid, unsent, ...text] = output.trim().split(" ");
  assert.equal(unsent, "INVALID_PARAMS,INVALID_PARAMS");
  assert.equal(text.join(" "), "Mock reply to: hi");
  await until(() => !isAlive(Number(pid)), `rkat-rpc ${pid} to exit`);
});

test("a program killed mid-turn leaves no child behind (stdin closes, the child interrupts and exits)", LIMIT, async () => {
  const program = writeProgram(
    "killed.mjs",
    `const client = new MeerkatClient({ rkatPath: ${JSON.stringify(RKAT_RPC)} });
await client.connect();
const session = await client.createSession("hi");
for await (const event of session.stream("long", { providerParams: { reply_words: 4000, token_delay_ms: 20 } })) {
  if (event.type === "text_delta") { console.log(client.serverPid); await new Promise(() => {}); }
}
`,
  );
  const node = spawn(process.execPath, [program], { env: childEnv(tmp), stdio: ["ignore", "pipe", "inherit"] });
  const pid = await new Promise<number>((resolve) => node.stdout.once("data", (chunk: Buffer) => resolve(Number(chunk.toString()))));
  assert.ok(isAlive(pid));
  node.kill("SIGKILL"); // no exit handler runs
  await until(() => !isAlive(pid), `rkat-rpc ${pid} to exit after its client died`);
});

test("events of types this client does not know pass through; malformed ones are flagged, not fatal", LIMIT, async () => {
  // A server sending what ours never does: an event type from a newer contract, a known type
  // missing its field, an event of another session, and a notification nobody asked for.
  const sessionId = "0196a3c2-7b2c-7000-8000-00000000a001";
  const server = join(tmp, "future-rkat-rpc");
  const envelope = (payload: object, session = sessionId) => ({
    jsonrpc: "2.0",
    method: "session/event",
    params: { session_id: session, event: { event_id: sessionId, source: { type: "session", session_id: session }, seq: 1, timestamp_ms: 1, payload } },
  });
  const frames = [
    envelope({ type: "text_delta", delta: "Hel" }),
    envelope({ type: "hologram_appended", hologram_id: "h1" }),
    envelope({ type: "text_delta" }),
    envelope({ type: "text_delta", delta: "not yours" }, "0196a3c2-7b2c-7000-8000-00000000ffff"),
    { jsonrpc: "2.0", method: "live/status", params: {} },
    envelope({ type: "tool_execution_completed", id: "t1", name: "search", is_error: false }),
    envelope({ type: "text_delta", delta: "lo" }),
  ];
  writeFileSync(
    server,
    `#!${process.execPath}
import { createInterface } from "node:readline";
const frames = ${JSON.stringify(frames)};
const send = (message) => process.stdout.write(JSON.stringify(message) + "\\n");
for await (const line of createInterface({ input: process.stdin })) {
  const request = JSON.parse(line);
  if (request.method === "initialize") send({ jsonrpc: "2.0", id: request.id, result: { contract_version: "0.9.7" } });
  else if (request.method === "capabilities/get") send({ jsonrpc: "2.0", id: request.id, result: { capabilities: [] } });
  else if (request.method === "turn/start") {
    for (const frame of frames) send(frame);
    send({ jsonrpc: "2.0", id: 999, result: {} });
    send({ jsonrpc: "2.0", id: request.id, result: { session_id: "${sessionId}", text: "Hello", turns: 1, tool_calls: 0,
      usage: { input_tokens: 1, output_tokens: 2 }, structured_output: { some_key: 1 } } });
  }
}
`,
  );
  chmodSync(server, 0o755);
  const client = new MeerkatClient({ rkatPath: server });
  await client.connect();
  try {
    const stream = client.session(sessionId).stream("hi");
    const events = [];
    for await (const event of stream) events.push(event);
    assert.deepEqual(events.map((e) => e.type), ["text_delta", "unknown", "malformed_event", "malformed_event", "text_delta"]);
    const [, unknown, malformed, withoutDuration] = events;
    assert.ok(unknown?.type === "unknown");
    assert.equal(unknown.eventType, "hologram_appended");
    assert.deepEqual(unknown.payload, { type: "hologram_appended", hologram_id: "h1" });
    assert.ok(malformed?.type === "malformed_event");
    assert.equal(malformed.eventType, "text_delta");
    assert.match(malformed.problem, /delta should be a string/);
    assert.ok(withoutDuration?.type === "malformed_event");
    assert.match(withoutDuration.problem, /duration_ms should be a number/);
    assert.equal(stream.result.text, "Hello");
    assert.deepEqual(stream.result.structuredOutput, { some_key: 1 }); // data keeps its keys
    assert.equal(client.contractVersion, "0.9.7");
  } finally {
    await client.close();
  }
});
