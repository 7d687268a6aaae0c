/** The README's first example runs as printed, without a key (the offline mock model answers). */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { LIMIT, PACKAGE_ROOT, RKAT_RPC, childEnv, tempDir } from "./helpers.js";

test("the README's first example runs without a key", LIMIT, async () => {
  const readme = readFileSync(join(PACKAGE_ROOT, "README.md"), "utf8");
  const example = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(example && example.includes("createSession"), "the README starts with a ts example");
  // The example is plain JavaScript too; inside the package "rkat-client" resolves to this build.
  const script = join(PACKAGE_ROOT, "build-test", "readme-example.mjs");
  writeFileSync(script, example);
  const env = childEnv(tempDir("readme"), { MEERKAT_BIN_PATH: RKAT_RPC });
  try {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [script], { cwd: PACKAGE_ROOT, env, timeout: 50_000 }, (error, stdout, stderr) =>
        error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)));
    assert.match(out, /^Mock reply to: What is the capital of France\?\nMock reply to: Now explain it in more detail/);
  } finally {
    rmSync(script, { force: true });
  }
});
