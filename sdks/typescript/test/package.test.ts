/** `npm pack` makes a package that installs and imports, types included, with no dependencies. */

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { LIMIT, PACKAGE_ROOT, tempDir } from "./helpers.js";

/** Run npm (the one running these tests, when npm runs them) in `cwd`; its stdout. */
function npm(args: string[], cwd: string): Promise<string> {
  const [file, prefix] = process.env.npm_execpath
    ? [process.execPath, [process.env.npm_execpath]]
    : ["npm", []];
  return new Promise((resolve, reject) => {
    execFile(file, [...prefix, ...args, "--no-audit", "--no-fund", "--loglevel=error"], { cwd, timeout: 60000 },
      (error, stdout, stderr) => (error ? reject(new Error(`npm ${args.join(" ")}: ${error.message}\n${stderr}`)) : resolve(stdout)));
  });
}

test("npm pack makes an installable package", LIMIT, async () => {
  const dir = tempDir("pack");
  // dist/ is fresh (npm test builds first), so the pack skips prepack's rebuild.
  const packed = JSON.parse(await npm(["pack", "--json", "--ignore-scripts", "--pack-destination", dir], PACKAGE_ROOT));
  const files = (packed[0].files as { path: string }[]).map((f) => f.path).sort();
  assert.ok(files.includes("dist/index.js") && files.includes("dist/index.d.ts") && files.includes("README.md"));
  assert.ok(!files.some((f) => f.startsWith("src/") || f.startsWith("test/") || f.startsWith("node_modules/")));

  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", type: "module" }));
  await npm(["install", "--offline", join(dir, packed[0].filename as string)], dir);
  const installed = JSON.parse(readFileSync(join(dir, "node_modules", "rkat-client", "package.json"), "utf8"));
  assert.equal(installed.dependencies, undefined); // nothing beyond Node itself
  assert.ok(existsSync(join(dir, "node_modules", "rkat-client", "dist", "index.d.ts")));
  writeFileSync(join(dir, "main.mjs"), 'import { MeerkatClient, MeerkatError } from "rkat-client";\n' +
    "console.log(typeof MeerkatClient, new MeerkatError('SESSION_BUSY', 'x').jsonrpcCode);\n");
  const out = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ["main.mjs"], { cwd: dir }, (error, stdout) => (error ? reject(error) : resolve(stdout))));
  assert.equal(out.trim(), "function -32002");
});
