/**
 * The wire to one `rkat-rpc` child: JSON-RPC lines over its stdin and stdout.
 *
 * Requests are written in the order they are made and may be answered in any
 * order; responses are matched by id. `session/event` notifications go to the
 * streams following that session, and a streaming request's response is pushed
 * into its stream's queue *after* the events read before it, which is what ends
 * a stream exactly after its last event. Server-to-client requests
 * (`tool/execute`) are answered by the client's handler, each on its own, so a
 * handler may make calls of its own.
 *
 * The child keeps Node's event loop alive only while a call is pending; idle, it
 * does not hold the program open. When the program exits, every child still
 * running is sent SIGTERM; if the program dies by a signal instead, the child
 * sees its stdin close and exits by itself.
 */

import { spawn, type ChildProcess } from "node:child_process";
import type { Socket } from "node:net";

import {
  ClientClosedError,
  ClientError,
  ConnectionClosedError,
  MeerkatError,
  ProtocolError,
  errorFromWire,
  type ErrorDetails,
} from "./errors.js";
import { eventFromParams, type MeerkatEvent } from "./events.js";
import { decodeEnvelope, SubscriptionEnd } from "./live.js";
import type { AsyncQueue } from "./queue.js";
import { isRecord } from "./wire.js";

/** Longest line accepted from the server. */
export const MAX_LINE_BYTES = 64 * 1024 * 1024;
/** How much of the server's stderr is kept for ConnectionClosedError. */
export const STDERR_TAIL_BYTES = 16 * 1024;
/** Milliseconds to wait for the child after SIGTERM, then again after SIGKILL. */
export const EXIT_WAIT_MS = 5000;

/** The last item of a stream's queue: its response's result, or its error. */
export class StreamEnd {
  constructor(
    readonly result: unknown,
    readonly error: MeerkatError | undefined,
  ) {}
}

/** What a stream's queue holds. */
export type StreamItem = MeerkatEvent | StreamEnd;

/** Answers a server-to-client request (the result object), or throws a MeerkatError. */
export type ServerRequestHandler = (method: string, params: unknown) => Promise<unknown>;

interface Pending {
  resolve(result: unknown): void;
  reject(error: MeerkatError): void;
}

/** A call waiting for its response, and the length of the line it was sent as. */
interface Sent extends Pending {
  readonly lineBytes: number;
}

/** A `\udXXX` escape whose backslash is not itself escaped: JSON.stringify's lone surrogate (pairs stay as is). */
const LONE_SURROGATE = /(?:^|[^\\])(?:\\\\)*\\ud[89a-f][0-9a-f]{2}/;

/**
 * `message` as one JSON-RPC line. A value JSON cannot carry is INVALID_PARAMS
 * here, before anything is sent: a BigInt or a cycle, or a lone UTF-16
 * surrogate (half of a character, e.g. an emoji cut by `slice`), which the
 * server could not parse and so could not answer by id.
 */
function encodeFrame(message: Record<string, unknown>, what: string): string {
  let line: string;
  try {
    line = JSON.stringify(message);
  } catch (error) {
    throw new MeerkatError("INVALID_PARAMS", `the ${what} cannot be sent as JSON: ${(error as Error).message}`);
  }
  const lone = line.includes("\\ud") ? LONE_SURROGATE.exec(line) : null;
  if (lone !== null) {
    const at = lone.index + lone[0].length;
    throw new MeerkatError(
      "INVALID_PARAMS",
      `a string in the ${what} holds a lone UTF-16 surrogate (half of a character, e.g. an emoji cut in two), ` +
        `which JSON-RPC cannot carry: ...${line.slice(Math.max(0, at - 46), at + 20)}...`,
    );
  }
  return `${line}\n`;
}

/** Children still running, killed when the program exits. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function killLiveChildren(): void {
  for (const child of live) {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
  }
}

/** A running `rkat-rpc`; open with {@link Connection.open}, end with {@link Connection.close}. */
export class Connection {
  private nextId = 0;
  private readonly pending = new Map<number, Sent>();
  private readonly routes = new Map<string, Set<AsyncQueue<StreamItem>>>();
  /** Standalone subscriptions (`session/stream_open`) by stream id. */
  private readonly streamRoutes = new Map<string, AsyncQueue<unknown>>();
  private failure: MeerkatError | undefined;
  private stdoutBuffer: Buffer[] = [];
  private stdoutBuffered = 0;
  private stderrTail = Buffer.alloc(0);
  private exited: Promise<void>;
  private closing: Promise<void> | undefined;
  private referenced = true;

  private constructor(
    private readonly child: ChildProcess,
    private readonly onRequest: ServerRequestHandler,
  ) {
    this.exited = new Promise((resolve) => {
      child.once("close", (code: number | null, signal: NodeJS.Signals | null) => {
        live.delete(child);
        this.failAll(this.exitError(code, signal));
        resolve();
      });
    });
    child.once("error", (error: NodeJS.ErrnoException) => {
      // The spawn itself failed (ENOENT, EACCES...): no "close" may follow.
      live.delete(child);
      this.failAll(new ConnectionClosedError(`could not start ${child.spawnfile}: ${error.message}`, { errno: error.code }));
    });
    child.stdin?.on("error", () => {
      // EPIPE after the child died: the "close" handler reports it.
    });
    child.stdout?.on("data", (chunk: Buffer) => this.receive(chunk));
    child.stderr?.on("data", (chunk: Buffer) => {
      this.stderrTail = Buffer.concat([this.stderrTail, chunk]);
      if (this.stderrTail.length > STDERR_TAIL_BYTES) this.stderrTail = this.stderrTail.subarray(-STDERR_TAIL_BYTES);
    });
    this.setReferenced(false);
  }

  /** Start `argv` and serve it. */
  static open(argv: readonly string[], onRequest: ServerRequestHandler, env?: NodeJS.ProcessEnv): Connection {
    const [file, ...args] = argv;
    if (file === undefined) throw new ClientError("no program to start");
    const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"], env: env ?? process.env });
    live.add(child);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.once("exit", killLiveChildren);
    }
    return new Connection(child, onRequest);
  }

  /** The child's process id (undefined if it could not start). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  // -- calls ----------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.failure !== undefined) throw cloneError(this.failure);
  }

  /** Write a request and wait for its answer; a request that cannot be encoded throws and waits for nothing. */
  private send(method: string, params: Record<string, unknown>, pending: Pending): void {
    this.checkOpen();
    const id = this.nextId + 1;
    const line = encodeFrame({ jsonrpc: "2.0", id, method, params }, `${method} request`);
    this.nextId = id;
    this.pending.set(id, { ...pending, lineBytes: Buffer.byteLength(line) - 1 });
    this.setReferenced(true);
    this.child.stdin?.write(line);
  }

  /** The call waiting for response `id`, no longer waiting. */
  private take(id: unknown): Sent | undefined {
    const call = typeof id === "number" ? this.pending.get(id) : undefined;
    if (call === undefined) return undefined;
    this.pending.delete(id as number);
    if (this.pending.size === 0 && this.streamRoutes.size === 0) this.setReferenced(false);
    return call;
  }

  /** Call `method` and return its result (throws the server's error as a MeerkatError). */
  request(method: string, params: Record<string, unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => this.send(method, params, { resolve, reject }));
  }

  /** Send a request whose answer ends `sink` (as a {@link StreamEnd}) instead of settling a promise. */
  requestInto(method: string, params: Record<string, unknown>, sink: AsyncQueue<StreamItem>): void {
    this.send(method, params, {
      resolve: (result) => sink.push(new StreamEnd(result, undefined)),
      reject: (error) => sink.push(new StreamEnd(undefined, error)),
    });
  }

  /** Send `sessionId`'s events to `sink` until the returned function is called. */
  follow(sessionId: string, sink: AsyncQueue<StreamItem>): () => void {
    let sinks = this.routes.get(sessionId);
    if (sinks === undefined) {
      sinks = new Set();
      this.routes.set(sessionId, sinks);
    }
    sinks.add(sink);
    return () => {
      const current = this.routes.get(sessionId);
      current?.delete(sink);
      if (current !== undefined && current.size === 0) this.routes.delete(sessionId);
    };
  }

  /**
   * Send a subscription's envelopes (and its end) to `sink` until the returned function is called.
   * An open subscription holds the event loop open, as an open socket would, until it ends or is closed.
   */
  followStream(streamId: string, sink: AsyncQueue<StreamItem>): () => void {
    this.streamRoutes.set(streamId, sink as AsyncQueue<unknown>);
    if (this.failure === undefined) this.setReferenced(true);
    return () => {
      this.streamRoutes.delete(streamId);
      if (this.pending.size === 0 && this.streamRoutes.size === 0) this.setReferenced(false);
    };
  }

  // -- the child's output -------------------------------------------------------------------

  private receive(chunk: Buffer): void {
    let start = 0;
    let newline = chunk.indexOf(0x0a, start);
    while (newline !== -1) {
      const piece = chunk.subarray(start, newline);
      const line = this.stdoutBuffered === 0 ? piece : Buffer.concat([...this.stdoutBuffer, piece]);
      this.stdoutBuffer = [];
      this.stdoutBuffered = 0;
      this.dispatch(line);
      start = newline + 1;
      newline = chunk.indexOf(0x0a, start);
    }
    if (start < chunk.length) {
      this.stdoutBuffer.push(chunk.subarray(start));
      this.stdoutBuffered += chunk.length - start;
      if (this.stdoutBuffered > MAX_LINE_BYTES) {
        this.fatal(new ProtocolError(`rkat-rpc wrote a line longer than ${MAX_LINE_BYTES} bytes`));
      }
    }
  }

  private dispatch(line: Buffer): void {
    if (this.failure !== undefined) return;
    let frame: unknown;
    try {
      frame = JSON.parse(line.toString("utf8"));
    } catch (error) {
      const shown = line.subarray(0, 200).toString("utf8");
      this.fatal(new ProtocolError(`malformed JSON frame from rkat-rpc: ${(error as Error).message}: ${shown}`));
      return;
    }
    if (!isRecord(frame)) {
      this.fatal(new ProtocolError(`rkat-rpc wrote a line that is not a JSON object: ${line.subarray(0, 200).toString("utf8")}`));
      return;
    }
    if ("id" in frame && frame.id !== null) {
      if (typeof frame.method === "string") {
        void this.answerServer(frame.id, frame.method, frame.params);
        return;
      }
      const pending = this.take(frame.id);
      if (pending === undefined) return; // nobody waits for it (a call failed by close())
      if (frame.error) pending.reject(errorFromWire(frame.error));
      else pending.resolve(frame.result ?? {});
      return;
    }
    if (frame.id === null && frame.error) {
      this.failOversized(errorFromWire(frame.error));
      return;
    }
    if (frame.method === "session/event") {
      const routed = eventFromParams(frame.params);
      if (routed === undefined) return;
      for (const sink of this.routes.get(routed.sessionId) ?? []) sink.push(routed.event);
    } else if (frame.method === "session/stream_event" || frame.method === "session/stream_end") {
      const params = frame.params;
      const sink = isRecord(params) && typeof params.stream_id === "string"
        ? this.streamRoutes.get(params.stream_id) : undefined;
      if (sink === undefined || !isRecord(params)) return;
      if (frame.method === "session/stream_end") {
        sink.push(new SubscriptionEnd(typeof params.reason === "string" ? params.reason : "session_ended"));
      } else {
        try {
          sink.push(decodeEnvelope(params.event));
        } catch {
          // an envelope this SDK cannot read: skipped, the subscription goes on
        }
      }
    }
    // Other notifications are not ours to act on.
  }

  /**
   * An error the server could not tie to a request, having not read its line.
   * Ours are always valid JSON-RPC, so it is a line over the server's
   * `--max-line-bytes`: every call sent as a longer line gets the error.
   */
  private failOversized(error: MeerkatError): void {
    if (error.code !== "PAYLOAD_TOO_LARGE") return;
    // details.limit since rkat-rpc names it there; the message's "limit of N bytes" before that.
    const named = error.details["limit"];
    const fromText = /limit of (\d+) bytes/.exec(error.message);
    const limit = typeof named === "number" ? named : fromText !== null ? Number(fromText[1]) : undefined;
    if (limit === undefined) return;
    for (const [id, call] of this.pending) {
      if (call.lineBytes > limit) this.take(id)?.reject(cloneError(error));
    }
  }

  /** Answer a server-to-client request; whatever the handler returns or throws, the server gets a reply. */
  private async answerServer(id: unknown, method: string, params: unknown): Promise<void> {
    let line: string;
    try {
      line = encodeFrame({ jsonrpc: "2.0", id, result: await this.onRequest(method, params) }, `${method} reply`);
    } catch (error) {
      const known = error instanceof MeerkatError ? error : new ClientError(String(error));
      const failure = { code: known.jsonrpcCode, message: known.message };
      line = encodeFrame({ jsonrpc: "2.0", id, error: failure }, `${method} error reply`);
    }
    if (this.failure === undefined) this.child.stdin?.write(line);
  }

  // -- failure and shutdown -----------------------------------------------------------------

  private exitError(code: number | null, signal: NodeJS.Signals | null): ConnectionClosedError {
    const tail = this.stderrTail.toString("utf8");
    const how = signal !== null ? `signal ${signal}` : `code ${code}`;
    const shown = tail.slice(-2000).trim() || "(empty)";
    return new ConnectionClosedError(`rkat-rpc exited (${how}); stderr: ${shown}`, {
      exit_code: code,
      signal,
      stderr_tail: tail,
    });
  }

  /** The child broke the protocol: fail everything and stop it. */
  private fatal(error: MeerkatError): void {
    this.failAll(error);
    this.child.kill("SIGTERM");
  }

  private failAll(error: MeerkatError): void {
    if (this.failure === undefined) this.failure = error;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const call of pending) call.reject(cloneError(this.failure));
    for (const sink of this.streamRoutes.values()) sink.push(new SubscriptionEnd("connection_closed"));
    this.streamRoutes.clear();
    this.setReferenced(false);
  }

  /** Hold the event loop open (while calls are pending or closing) or let it go (idle). */
  private setReferenced(on: boolean, force = false): void {
    if (on === this.referenced && !force) return;
    this.referenced = on;
    const handles = [this.child, this.child.stdin, this.child.stdout, this.child.stderr] as (
      | ChildProcess
      | Socket
      | null
    )[];
    for (const handle of handles) {
      if (handle === null) continue;
      if (on) handle.ref?.();
      else handle.unref?.();
    }
  }

  /** Fail pending calls (ClientClosedError), close the child's stdin, SIGTERM it, reap it. */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.closing = this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.failAll(new ClientClosedError("the client was closed"));
    this.setReferenced(true, true); // `await client.close()` keeps the program alive until the child is gone
    const child = this.child;
    child.stdin?.end();
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      child.kill("SIGTERM");
      if (!(await settlesWithin(this.exited, EXIT_WAIT_MS))) {
        child.kill("SIGKILL");
        await settlesWithin(this.exited, EXIT_WAIT_MS);
      }
    }
    live.delete(child);
    this.setReferenced(false, true);
  }
}

/** True if `promise` settled within `ms` (the timer does not keep the program alive by itself). */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A fresh copy to throw to another caller (each gets its own stack). */
function cloneError(error: MeerkatError): MeerkatError {
  if (error instanceof ClientError) {
    const Kind = error.constructor as new (message: string, details: ErrorDetails) => ClientError;
    return new Kind(error.message, error.details);
  }
  return new MeerkatError(error.code, error.message, error.details);
}
