/**
 * Finding the `rkat-rpc` executable. Nothing is ever downloaded.
 *
 * Order: the `rkatPath` option, then `$MEERKAT_BIN_PATH`, then `rkat-rpc` on
 * `PATH`. A value with a slash names a file; one without is looked up on `PATH`.
 */

import { accessSync, constants, statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, delimiter, isAbsolute, join, resolve } from "node:path";

import { BinaryNotFoundError } from "./errors.js";

/** The server's executable name. */
export const DEFAULT_BINARY = "rkat-rpc";

const HOW =
  "put rkat-rpc on PATH, set MEERKAT_BIN_PATH=/path/to/rkat-rpc, or pass new MeerkatClient({ rkatPath })";

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `name` looked up on `PATH` (absolute), or undefined. */
export function which(name: string, pathValue: string = process.env.PATH ?? ""): string | undefined {
  for (const dir of pathValue.split(delimiter)) {
    if (dir === "") continue;
    const candidate = resolve(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

function resolveValue(value: string, source: string, pathValue: string): string {
  let found: string | undefined;
  if (value.includes("/") || value.includes("\\")) {
    const expanded = value.startsWith("~/") ? join(homedir(), value.slice(2)) : value;
    const path = isAbsolute(expanded) ? expanded : resolve(expanded);
    let isFile = false;
    try {
      isFile = statSync(path).isFile();
    } catch {
      isFile = false;
    }
    if (!isFile) throw new BinaryNotFoundError(`${source} names ${JSON.stringify(value)}, which is not a file; ${HOW}`);
    if (!isExecutableFile(path)) {
      throw new BinaryNotFoundError(`${source} names ${JSON.stringify(value)}, which is not executable`);
    }
    found = path;
  } else {
    found = which(value, pathValue);
    if (found === undefined) {
      throw new BinaryNotFoundError(`${source} names ${JSON.stringify(value)}, which is not on PATH; ${HOW}`);
    }
  }
  // `rkat` is the CLI: it speaks no JSON-RPC on stdio.
  if (basename(found) === "rkat") {
    throw new BinaryNotFoundError(`${source} names the rkat CLI; point it at rkat-rpc instead`);
  }
  return found;
}

/**
 * The absolute path of the server to start: `rkatPath` if given, else
 * `$MEERKAT_BIN_PATH`, else `rkat-rpc` on `PATH`. Throws
 * {@link BinaryNotFoundError} saying how to fix it.
 */
export function findRkatRpc(rkatPath?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (rkatPath !== undefined) {
    if (rkatPath.trim() === "") throw new BinaryNotFoundError(`the rkatPath option is empty; ${HOW}`);
    return resolveValue(rkatPath.trim(), "the rkatPath option", env.PATH ?? "");
  }
  const fromEnv = env.MEERKAT_BIN_PATH;
  if (fromEnv !== undefined && fromEnv !== "") {
    if (fromEnv.trim() === "") throw new BinaryNotFoundError(`MEERKAT_BIN_PATH is set but blank; ${HOW}`);
    return resolveValue(fromEnv.trim(), "MEERKAT_BIN_PATH", env.PATH ?? "");
  }
  const located = which(DEFAULT_BINARY, env.PATH ?? "");
  if (located !== undefined) return located;
  throw new BinaryNotFoundError(`rkat-rpc not found; ${HOW} (it is installed with the rkat Python package, which is not on PyPI: ` +
    "pip install /path/to/the/rkat/repository, or a wheel built there with `pip wheel --no-deps .`; " +
    "see the README's Install section)");
}
