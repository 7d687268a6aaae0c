/**
 * Between the wire's snake_case and this package's camelCase.
 *
 * Results are converted key by key, recursively, except inside values that are
 * data rather than API: labels, tool arguments, provider params, JSON schemas,
 * content blocks, structured output, error details and config documents keep
 * the keys they were written with.
 */

/** Keys whose values pass through untouched (user data, schemas, content blocks). */
const OPAQUE = new Set([
  "labels",
  "args",
  "arguments",
  "provider_params",
  "params_schema",
  "input_schema",
  "content",
  "structured_output",
  "details",
  "config",
]);

/** `"max_tokens_per_turn"` -> `"maxTokensPerTurn"`. */
export function toCamel(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());
}

/** `"maxTokensPerTurn"` -> `"max_tokens_per_turn"` (snake_case keys stay as they are). */
export function toSnake(key: string): string {
  return key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A wire value with camelCase keys, leaving {@link OPAQUE} values as they came. */
export function camelize(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelize);
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[toCamel(key)] = OPAQUE.has(key) ? inner : camelize(inner);
  }
  return out;
}

/** Sections of the realm config whose own fields are named by the host (so camelCase can be mapped). */
const TYPED_SECTIONS = new Set(["agent", "budget", "limits", "retry", "tools", "rest", "mock"]);

/**
 * A config document or merge patch with the host's key names: section names,
 * and the fields of the typed sections (`agent`, `budget`, `limits`, `retry`,
 * `tools`, `rest`, `mock`), may be written in camelCase (`maxTokensPerTurn`) and
 * become snake_case (`max_tokens_per_turn`). Anything deeper (provider params,
 * model tables, self-hosted servers) is left as written: its keys are names.
 */
export function configToWire(document: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [sectionKey, section] of Object.entries(document)) {
    const name = toSnake(sectionKey);
    if (TYPED_SECTIONS.has(name) && isRecord(section)) {
      const fields: Record<string, unknown> = {};
      for (const [field, value] of Object.entries(section)) fields[toSnake(field)] = value;
      out[name] = fields;
    } else {
      out[name] = section;
    }
  }
  return out;
}

/** `{ fooBar: 1, skipped: undefined }` -> `{ foo_bar: 1 }`, checking each key against `accepted`. */
export function optionsToWire(
  options: object | undefined,
  accepted: readonly string[],
  what: string,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (options === undefined || options === null) return out;
  if (!isRecord(options)) throw new TypeError(`${what} must be an object`);
  for (const [key, value] of Object.entries(options)) {
    if (!accepted.includes(key)) {
      throw new TypeError(`unexpected ${what} ${JSON.stringify(key)}; accepted: ${accepted.join(", ")}`);
    }
    if (value !== undefined && value !== null) out[toSnake(key)] = value;
  }
  return out;
}
