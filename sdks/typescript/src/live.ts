/**
 * The live-session API's results and the standalone event subscription:
 * the durable event log, run-fenced stop, injected context, external events, realms.
 */

import type { Connection, StreamItem } from "./connection.js";
import { eventFromPayload, type MeerkatEvent } from "./events.js";
import { ProtocolError } from "./errors.js";
import { AsyncQueue } from "./queue.js";
import { isRecord } from "./wire.js";

/** One logged or streamed event: its session `seq` (0: a lag marker), id, time and typed event. */
export interface EventEnvelope {
  readonly seq: number;
  readonly eventId: string;
  readonly timestampMs: number;
  readonly event: MeerkatEvent;
}

/** Events after a cursor, oldest first; `latest` is the log's newest seq. */
export interface EventsPage {
  readonly events: readonly EventEnvelope[];
  readonly after: number;
  readonly latest: number;
  readonly hasMore: boolean;
}

/** `stopRun`: `stopped`, `not_current` (with `currentRunId`) or `not_stoppable` (with `state`). */
export interface StopReceipt {
  readonly outcome: "stopped" | "not_current" | "not_stoppable";
  readonly runId: string;
  readonly currentRunId?: string | null;
  readonly contributors?: readonly Readonly<Record<string, unknown>>[];
  readonly state?: string;
}

/** `injectContext`: `applied`, or `duplicate` for a retry with the same idempotency key. */
export interface InjectResult {
  readonly status: "applied" | "duplicate";
  readonly inputId: string;
}

/** An input's stored state (injected context or external event). */
export interface InputState {
  readonly inputId: string;
  readonly currentState: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly idempotencyKey?: string;
  readonly lastRunId?: string;
  readonly lastBoundarySequence?: number;
  readonly terminalOutcome?: string;
}

/** `sendExternalEvent`: `accepted` (queued) or `deduplicated` (`existingId`). */
export interface ExternalEventResult {
  readonly outcomeType: "accepted" | "deduplicated" | "rejected";
  readonly inputId?: string;
  readonly existingId?: string;
  readonly state?: InputState;
}

/** A realm under the server's state root (`current`: the one served). */
export interface RealmInfo {
  readonly realmId: string;
  readonly backend?: string;
  readonly current: boolean;
}

function bad(what: string, value: unknown): never {
  throw new ProtocolError(`unexpected ${what} from rkat-rpc: ${JSON.stringify(value)?.slice(0, 200)}`);
}

export function decodeEnvelope(value: unknown): EventEnvelope {
  if (!isRecord(value) || typeof value.seq !== "number" || typeof value.event_id !== "string") bad("event", value);
  return { seq: value.seq, eventId: value.event_id, timestampMs: Number(value.timestamp_ms ?? 0),
    event: eventFromPayload(value.payload) };
}

function sequence(cursor: unknown): number {
  if (!isRecord(cursor) || typeof cursor.sequence !== "number") bad("cursor", cursor);
  return cursor.sequence;
}

export function decodeEventsPage(value: Record<string, unknown>): EventsPage {
  const events = Array.isArray(value.events) ? value.events.map(decodeEnvelope) : bad("events", value.events);
  return { events, after: sequence(value.from_cursor), latest: sequence(value.latest_cursor),
    hasMore: value.has_more === true };
}

export function latestSequence(value: Record<string, unknown>): number {
  return sequence(value.cursor);
}

export function decodeStopReceipt(value: unknown): StopReceipt {
  if (!isRecord(value) || typeof value.outcome !== "string" || typeof value.run_id !== "string") bad("receipt", value);
  const receipt: Record<string, unknown> = { outcome: value.outcome, runId: value.run_id };
  if ("current_run_id" in value) receipt.currentRunId = value.current_run_id;
  if (Array.isArray(value.contributors)) receipt.contributors = value.contributors;
  if (typeof value.state === "string") receipt.state = value.state;
  return receipt as unknown as StopReceipt;
}

export function decodeInjectResult(value: Record<string, unknown>): InjectResult {
  if (value.status !== "applied" && value.status !== "duplicate") bad("inject result", value);
  return { status: value.status, inputId: String(value.input_id) };
}

export function decodeInputState(value: unknown): InputState {
  if (!isRecord(value) || typeof value.input_id !== "string" || typeof value.current_state !== "string") {
    bad("input state", value);
  }
  const state: Record<string, unknown> = {
    inputId: value.input_id, currentState: value.current_state,
    createdAt: String(value.created_at), updatedAt: String(value.updated_at),
  };
  if (typeof value.idempotency_key === "string") state.idempotencyKey = value.idempotency_key;
  if (typeof value.last_run_id === "string") state.lastRunId = value.last_run_id;
  if (typeof value.last_boundary_sequence === "number") state.lastBoundarySequence = value.last_boundary_sequence;
  if (typeof value.terminal_outcome === "string") state.terminalOutcome = value.terminal_outcome;
  return state as unknown as InputState;
}

export function decodeExternalEventResult(value: Record<string, unknown>): ExternalEventResult {
  const outcome = value.outcome_type;
  if (outcome !== "accepted" && outcome !== "deduplicated" && outcome !== "rejected") bad("external event result", value);
  const result: Record<string, unknown> = { outcomeType: outcome };
  if (typeof value.input_id === "string") result.inputId = value.input_id;
  if (typeof value.existing_id === "string") result.existingId = value.existing_id;
  if (value.state !== undefined) result.state = decodeInputState(value.state);
  return result as unknown as ExternalEventResult;
}

export function decodeRealms(value: Record<string, unknown>): RealmInfo[] {
  if (!Array.isArray(value.realms)) bad("realm list", value);
  return value.realms.map((realm: unknown) => {
    if (!isRecord(realm) || typeof realm.realm_id !== "string") bad("realm", realm);
    return { realmId: realm.realm_id, current: realm.current === true,
      ...(typeof realm.backend === "string" ? { backend: realm.backend } : {}) };
  });
}

/** Why a subscription ended. */
export class SubscriptionEnd {
  constructor(readonly reason: string) {}
}

/**
 * A standalone subscription to one session's events (`session/stream_open`): live from when it was
 * opened, turns of any client and process included. Iterate it with `for await`; it ends when closed
 * ({@link EventSubscription.close}), when the session is archived, or when the connection ends.
 */
export class EventSubscription implements AsyncIterable<EventEnvelope> {
  /** `closed`, `session_ended` or `shutdown`, once it has ended. */
  endReason: string | undefined;
  /** The seq of the last event delivered. */
  lastSeq: number | undefined;
  private readonly queue = new AsyncQueue<EventEnvelope | SubscriptionEnd>();
  private readonly unfollow: () => void;
  private closed = false;

  constructor(private readonly conn: Connection, readonly streamId: string, readonly sessionId: string) {
    this.unfollow = conn.followStream(streamId, this.queue as unknown as AsyncQueue<StreamItem>);
  }

  async next(): Promise<IteratorResult<EventEnvelope, undefined>> {
    const item = await this.queue.next();
    if (item.done) return { value: undefined, done: true };
    if (item.value instanceof SubscriptionEnd) {
      this.endReason ??= item.value.reason;
      this.finish();
      return { value: undefined, done: true };
    }
    if (item.value.seq) this.lastSeq = item.value.seq;
    return { value: item.value, done: false };
  }

  [Symbol.asyncIterator](): AsyncIterator<EventEnvelope, undefined> {
    return { next: () => this.next() };
  }

  private finish(): void {
    this.unfollow();
    this.queue.close();
  }

  /** Close the stream on the server and end the iteration. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.conn.request("session/stream_close", { stream_id: this.streamId });
    } finally {
      this.endReason ??= "closed";
      this.finish();
    }
  }
}
