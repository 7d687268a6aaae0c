/**
 * What the tests share: where the real `rkat-rpc` is, a private state root and
 * environment per test file, and a look at whether a process is still alive.
 *
 * The server is the repository's own `rkat-rpc` (`.venv/bin/rkat-rpc`, or
 * `$MEERKAT_BIN_PATH` when set), run with the offline mock provider.
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after } from "node:test";

/** The package directory (tests run compiled, from build-test/test/). */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** The repository root. */
export const REPO_ROOT = resolve(PACKAGE_ROOT, "..", "..");
/** The real server under test. */
export const RKAT_RPC = process.env.MEERKAT_BIN_PATH || join(REPO_ROOT, ".venv", "bin", "rkat-rpc");
/** The Python that has the host installed (for the fake vendor and the stub server). */
export const PYTHON = join(dirname(RKAT_RPC), "python");

/** Mock provider params that make a turn slow enough to interrupt (400 words, 20 ms apart). */
export const SLOW = { reply_words: 400, token_delay_ms: 20 } as const;

/** A temporary directory removed when the test file ends. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `rkat-ts-${prefix}-`));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** This process's environment without provider keys or endpoints, with a private state root. */
export function childEnv(stateRoot: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.endsWith("_API_KEY") || key.endsWith("_BASE_URL") || key === "MEERKAT_BIN_PATH") continue;
    env[key] = value;
  }
  return { ...env, RKAT_STATE_ROOT: stateRoot, ...extra };
}

/** True while a process with this id exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Every test's time limit: a safety net so a hung server fails the run instead of stalling it. */
export const LIMIT = { timeout: 60_000 } as const;

/** Poll `condition` until it holds (a safety net against hangs, not a measurement). */
export async function until(condition: () => boolean | Promise<boolean>, what: string, limitMs = 15000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 10));
  }
}
