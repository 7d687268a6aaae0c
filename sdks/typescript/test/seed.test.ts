/**
 * The seed's TypeScript examples (examples/seed.ts, compiled), run as written against rkat-rpc.
 *
 * The models they name (claude-sonnet-4-6, gpt-5.5) are served by the fake
 * vendor server of `meerkat.testing`, run as its own process on loopback; the
 * real provider SDKs inside rkat-rpc talk to it.
 */

import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";

import { LIMIT, PACKAGE_ROOT, PYTHON, RKAT_RPC, childEnv, tempDir } from "./helpers.js";

const REPLY = "Paris is the capital of France.";
const vendor = spawn(PYTHON, ["-m", "meerkat.testing", "--port", "0", "--reply", REPLY], {
  stdio: ["ignore", "pipe", "inherit"],
});
let vendorUrl = "";

before(async () => {
  vendorUrl = await new Promise<string>((resolve, reject) => {
    vendor.stdout.once("data", (chunk: Buffer) => resolve(chunk.toString().trim().split("\n")[0]!));
    vendor.once("exit", (code) => reject(new Error(`the fake vendor exited with ${code}`)));
  });
  assert.match(vendorUrl, /^http:\/\/127\.0\.0\.1:\d+/);
});
after(() => {
  vendor.kill("SIGTERM");
});

test("the seed's TypeScript examples run as written", LIMIT, async () => {
  const root = tempDir("seed");
  const env = childEnv(root, {
    PATH: `${dirname(RKAT_RPC)}:${process.env.PATH ?? ""}`, // found on PATH, as a user's would be
    ANTHROPIC_API_KEY: "sk-ant-test",
    RKAT_ANTHROPIC_BASE_URL: vendorUrl,
    OPENAI_API_KEY: "sk-openai-test",
    RKAT_OPENAI_BASE_URL: `${vendorUrl}/v1`,
    GEMINI_API_KEY: "gemini-test",
    RKAT_GEMINI_BASE_URL: vendorUrl,
  });
  const script = join(PACKAGE_ROOT, "build-test", "examples", "seed.js");
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, [script], { env, cwd: root, timeout: 60000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
  const lines = out.split("\n");
  assert.equal(lines[0], REPLY); // create
  assert.equal(lines[1], REPLY); // the follow-up turn
  assert.match(lines[2] ?? "", /^[0-9a-f-]{36} 4 false$/); // listed: id, messages, active
  assert.match(out, /model: 'claude-sonnet-4-6',\s+provider: 'anthropic'/); // the state read
  assert.ok(out.includes(`STREAM RESULT ${REPLY}`));
  assert.ok(out.split(REPLY).length - 1 >= 5);
  const openai = JSON.parse(lines.find((line) => line.startsWith("OPENAI "))!.slice("OPENAI ".length));
  assert.equal(openai.model, "gpt-5.5");
  assert.equal(openai.provider, "openai");
  assert.equal(openai.lastAssistantText, REPLY);
  const config = lines.find((line) => line.startsWith("CONFIG "))!.split(" ");
  assert.equal(config[1], "3");
  const agent = JSON.parse(config.slice(2).join(" "));
  assert.equal(agent.model, "gpt-5.5");
  assert.equal(agent.max_tokens_per_turn, 8192);
  assert.equal(lines.at(-2), "REALM team-alpha worker-1");
});
