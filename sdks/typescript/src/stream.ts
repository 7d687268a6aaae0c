/**
 * Live event streams of one turn: `session.stream(...)` and `client.createSessionStreaming(...)`.
 *
 * ```ts
 * const stream = session.stream("Continue the story");
 * for await (const event of stream) {
 *   if (event.type === "text_delta") process.stdout.write(event.delta);
 * }
 * console.log(stream.result.text);
 * ```
 *
 * Nothing is sent until iteration starts. Events are yielded as they happen,
 * also for a new session (it is created first, then its first turn streams
 * like any other). Iteration ends when the turn's response arrives (every
 * event of the turn comes before it); an interrupted or failed turn throws its
 * error after the events it produced. Leaving the loop early stops following
 * the turn; the turn itself goes on.
 */

import type { Connection, StreamItem } from "./connection.js";
import { StreamEnd } from "./connection.js";
import { StreamNotConsumedError } from "./errors.js";
import type { MeerkatEvent } from "./events.js";
import { AsyncQueue } from "./queue.js";
import type { Session } from "./session.js";
import { decodeRunResult, type RunResult } from "./types.js";

/** Starts a stream: follows a session, sends its `turn/start`, returns the session id. */
export type StreamStarter = (start: (sessionId: string, params: Record<string, unknown>) => void) => Promise<string>;

/** One turn's events, then its {@link EventStream.result}. */
export class EventStream implements AsyncIterableIterator<MeerkatEvent> {
  private readonly queue = new AsyncQueue<StreamItem>();
  private started: Promise<void> | undefined;
  private unfollow: (() => void) | undefined;
  private finished = false;
  private runResult: RunResult | undefined;
  private id: string | undefined;

  /** @internal Made by the client and by sessions. */
  constructor(
    private readonly connection: () => Connection,
    private readonly starter: StreamStarter,
    private readonly makeSession: (sessionId: string, result: RunResult | undefined) => Session,
    private readonly onResult?: (result: RunResult) => void,
  ) {}

  /** The session the turn runs in (known once iteration has started). */
  get sessionId(): string | undefined {
    return this.id;
  }

  /** The turn's result; {@link StreamNotConsumedError} until the stream has ended. */
  get result(): RunResult {
    if (this.runResult === undefined) {
      throw new StreamNotConsumedError("the stream has not ended yet: iterate it to the end first");
    }
    return this.runResult;
  }

  /** The session this stream's turn runs in, holding the result once the stream has ended. */
  get session(): Session {
    if (this.id === undefined) {
      throw new StreamNotConsumedError("the stream has not started yet: iterate it first");
    }
    return this.makeSession(this.id, this.runResult);
  }

  private start(): Promise<void> {
    this.started ??= this.starter((sessionId, params) => {
      const connection = this.connection();
      this.id = sessionId;
      this.unfollow = connection.follow(sessionId, this.queue);
      connection.requestInto("turn/start", params, this.queue);
    }).then((sessionId) => {
      this.id = sessionId;
    });
    return this.started;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<MeerkatEvent, undefined>> {
    if (this.finished) return { value: undefined, done: true };
    try {
      await this.start();
    } catch (error) {
      this.stop();
      throw error;
    }
    const item = await this.queue.next();
    if (item.done) {
      this.stop();
      return { value: undefined, done: true };
    }
    if (!(item.value instanceof StreamEnd)) return { value: item.value, done: false };
    this.stop();
    if (item.value.error !== undefined) throw item.value.error;
    this.runResult = decodeRunResult(item.value.result);
    this.onResult?.(this.runResult);
    return { value: undefined, done: true };
  }

  /** Stop following (`break` out of `for await` calls this); the turn itself goes on. */
  async return(): Promise<IteratorResult<MeerkatEvent, undefined>> {
    this.stop();
    return { value: undefined, done: true };
  }

  private stop(): void {
    this.finished = true;
    this.unfollow?.();
    this.unfollow = undefined;
    this.queue.close();
  }

  /** Consume the whole stream and return its result. */
  async collect(): Promise<RunResult> {
    for await (const _ of this) {
      // only the result matters
    }
    return this.result;
  }

  /** Consume the whole stream: the text its deltas spelled, and the result. */
  async collectText(): Promise<{ text: string; result: RunResult }> {
    const parts: string[] = [];
    for await (const event of this) {
      if (event.type === "text_delta") parts.push(event.delta);
    }
    return { text: parts.join(""), result: this.result };
  }
}
