/**
 * Errors: the host's own, rebuilt from the wire, and this client's.
 *
 * Every error the server sends names its row of the host's one error table in
 * `error.data.error_code` (`SESSION_BUSY`, `SESSION_NOT_FOUND`, ...); that name
 * is {@link MeerkatError.code}. From a server that names no row, the numeric
 * JSON-RPC code picks it. Problems on this side of the wire are
 * {@link ClientError} subclasses (their `code` stays `INTERNAL_ERROR`, as in the
 * Python SDK: the class says what happened).
 *
 * ```ts
 * try {
 *   await session.turn("again");
 * } catch (err) {
 *   if (err instanceof MeerkatError && err.code === "SESSION_BUSY") {
 *     console.log("still running:", err.details.running_run_id);
 *   }
 * }
 * ```
 */

/** The rows of the host's error table (`meerkat/errors.py`), as named on the wire. */
export const ERROR_CODES = {
  SESSION_NOT_FOUND: -32001,
  SESSION_BUSY: -32002,
  SESSION_NOT_RUNNING: -32003,
  DUPLICATE_INPUT: -32004,
  REQUEST_CANCELLED: -32005,
  PROVIDER_ERROR: -32010,
  BUDGET_EXHAUSTED: -32011,
  HOOK_DENIED: -32012,
  AGENT_ERROR: -32013,
  CAPABILITY_UNAVAILABLE: -32020,
  INVALID_PARAMS: -32602,
  CONFIG_GENERATION_CONFLICT: -32602,
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  METHOD_NOT_ALLOWED: -32601,
  PAYLOAD_TOO_LARGE: -32600,
  UNSUPPORTED_MEDIA_TYPE: -32600,
  UNAUTHORIZED: -32600,
  STORE_ERROR: -32603,
  INTERNAL_ERROR: -32603,
} as const;

/** A row of the error table: `"SESSION_BUSY"`, `"CONFIG_GENERATION_CONFLICT"`, ... */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Details an error carries, with the wire's own (snake_case) keys, e.g. `{ session_id, running_run_id }`. */
export type ErrorDetails = Readonly<Record<string, unknown>>;

/** Every error this package throws. `code` is the table row, `jsonrpcCode` its wire number. */
export class MeerkatError extends Error {
  override name = "MeerkatError";
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message);
    this.code = code;
    this.details = details;
  }

  /** The JSON-RPC error code of this row (`-32002` for SESSION_BUSY). */
  get jsonrpcCode(): number {
    return ERROR_CODES[this.code];
  }
}

/** A failure on this side of the wire; the subclass says which. */
export class ClientError extends MeerkatError {
  override name = "ClientError";

  constructor(message: string, details: ErrorDetails = {}) {
    super("INTERNAL_ERROR", message, details);
  }
}

/** No `rkat-rpc` to start (this package never downloads one). */
export class BinaryNotFoundError extends ClientError {
  override name = "BinaryNotFoundError";
}

/** `rkat-rpc` exited or closed its output; `details.exit_code`, `details.stderr_tail` say why. */
export class ConnectionClosedError extends ClientError {
  override name = "ConnectionClosedError";
}

/** `rkat-rpc` started but did not answer the handshake within `connectTimeoutMs`. */
export class ConnectTimeoutError extends ConnectionClosedError {
  override name = "ConnectTimeoutError";
}

/** `close()` was called while the call was pending, or before it was made. */
export class ClientClosedError extends ClientError {
  override name = "ClientClosedError";
}

/** `rkat-rpc` wrote something that is not JSON-RPC, or an unusable result. */
export class ProtocolError extends ClientError {
  override name = "ProtocolError";
}

/** The server speaks another contract version than this client (0.9.x). */
export class VersionMismatchError extends ClientError {
  override name = "VersionMismatchError";
}

/** A stream's `result` was read before the stream ended. */
export class StreamNotConsumedError extends ClientError {
  override name = "StreamNotConsumedError";
}

/** The first error-table row with this JSON-RPC number (a server that names no row). */
function rowForNumber(code: unknown): ErrorCode {
  if (code === ERROR_CODES.INTERNAL_ERROR) return "INTERNAL_ERROR";
  for (const [name, number] of Object.entries(ERROR_CODES)) {
    if (number === code) return name as ErrorCode;
  }
  return "INTERNAL_ERROR";
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The error to throw for a JSON-RPC `error` object. */
export function errorFromWire(error: unknown): MeerkatError {
  if (!isRecord(error)) {
    return new ProtocolError(`malformed error object from rkat-rpc: ${JSON.stringify(error)}`);
  }
  const message = typeof error.message === "string" ? error.message : "error without a message";
  const data = isRecord(error.data) ? error.data : undefined;
  const details = data !== undefined && isRecord(data.details) ? data.details : {};
  const named = data?.error_code;
  if (typeof named === "string" && Object.hasOwn(ERROR_CODES, named)) {
    return new MeerkatError(named as ErrorCode, message, details);
  }
  return new MeerkatError(rowForNumber(error.code), message, { jsonrpc_code: error.code, ...details });
}
