/**
 * Typed events of a turn: a discriminated union on `type`.
 *
 * `type` keeps the wire name (`"text_delta"`); the other fields are camelCase
 * (`turn_number` -> `turnNumber`). A type this package has no interface for
 * arrives as an {@link UnknownEvent} (`type: "unknown"`, the wire name in
 * `eventType`), and a known type with missing fields as a
 * {@link MalformedEvent}: neither ends the stream.
 *
 * ```ts
 * for await (const event of session.stream("Tell me a story")) {
 *   switch (event.type) {
 *     case "text_delta":
 *       process.stdout.write(event.delta);
 *       break;
 *     case "tool_call_requested":
 *       console.log(`calling ${event.name}`, event.args);
 *       break;
 *     case "turn_completed":
 *       console.log(event.stopReason, event.usage?.outputTokens);
 *       break;
 *   }
 * }
 * ```
 */

import type { ContentBlock, Prompt, StopReason, Usage } from "./types.js";
import { camelize, isRecord } from "./wire.js";

/** Who a run is: `runId` is what an interrupt or a SESSION_BUSY error names. */
export interface RunIdentity {
  readonly runId?: string | null;
  readonly interactionId?: string | null;
}

/** Why a run failed: `class` (`cancelled`, `llm`, ...), a message, and sometimes a structured reason. */
export interface ErrorReport {
  readonly class: string;
  readonly message: string;
  readonly reason?: Readonly<Record<string, unknown>> | null;
}

/** A run began: its input (the user's content, or tool results being resumed). */
export interface RunStartedEvent {
  readonly type: "run_started";
  readonly sessionId: string;
  readonly input: { readonly kind: "content"; readonly content: Prompt } | { readonly kind: "pending_tool_results" };
  readonly identity?: RunIdentity;
}

/** A model call began (`turnNumber` counts from 0 within the run). */
export interface TurnStartedEvent {
  readonly type: "turn_started";
  readonly turnNumber: number;
  readonly assistantMessageId?: string;
}

export interface ReasoningDeltaEvent {
  readonly type: "reasoning_delta";
  readonly delta: string;
  readonly assistantMessageId?: string;
}

export interface ReasoningCompleteEvent {
  readonly type: "reasoning_complete";
  readonly content: string;
  readonly assistantMessageId?: string;
}

/** A piece of the answer; the deltas of a run join to its text. */
export interface TextDeltaEvent {
  readonly type: "text_delta";
  readonly delta: string;
  readonly assistantMessageId?: string;
}

/** The whole text of one model call. */
export interface TextCompleteEvent {
  readonly type: "text_complete";
  readonly content: string;
  readonly assistantMessageId?: string;
}

/** The model asked for a tool. */
export interface ToolCallRequestedEvent {
  readonly type: "tool_call_requested";
  readonly id: string;
  readonly name: string;
  readonly args: Readonly<Record<string, unknown>>;
}

export interface ToolExecutionStartedEvent {
  readonly type: "tool_execution_started";
  readonly id: string;
  readonly name: string;
}

export interface ToolExecutionCompletedEvent {
  readonly type: "tool_execution_completed";
  readonly id: string;
  readonly name: string;
  readonly isError: boolean;
  readonly durationMs: number;
}

/** A tool's result, as the model will see it. */
export interface ToolResultReceivedEvent {
  readonly type: "tool_result_received";
  readonly id: string;
  readonly name: string;
  readonly content: readonly ContentBlock[];
  readonly isError: boolean;
}

/** A model call ended; `usage` is that call's counters. */
export interface TurnCompletedEvent {
  readonly type: "turn_completed";
  readonly stopReason: StopReason;
  readonly usage?: Usage | null;
  readonly assistantMessageId?: string;
}

/** The run ended well: its final text and the session's cumulative usage. */
export interface RunCompletedEvent {
  readonly type: "run_completed";
  readonly sessionId: string;
  readonly result: string;
  readonly usage: Usage;
  readonly extractionRequired?: boolean;
  readonly terminalCauseKind?: string;
  readonly structuredOutput?: unknown;
  readonly assistantMessageId?: string;
  readonly identity?: RunIdentity;
}

/** The run failed or was interrupted (`errorReport.class === "cancelled"`); the call then throws. */
export interface RunFailedEvent {
  readonly type: "run_failed";
  readonly sessionId: string;
  readonly errorReport: ErrorReport;
  readonly terminalCauseKind?: string;
  readonly identity?: RunIdentity;
}

/** A provider call failed in a way worth retrying; `retry` says what failed and when the next attempt is. */
export interface RetryingEvent {
  readonly type: "retrying";
  readonly retry: {
    readonly failure: { readonly provider: string; readonly kind: string; readonly message: string };
    readonly plan: { readonly attempt: number; readonly maxRetries: number; readonly selectedDelayMs: number };
  };
  readonly assistantMessageId?: string;
}

/** A budget is nearly used up. */
export interface BudgetWarningEvent {
  readonly type: "budget_warning";
  readonly budgetType: "tokens" | "time" | "tool_calls";
  readonly used: number;
  readonly limit: number;
  readonly percent: number;
}

/** Events were skipped for a subscriber that fell behind. */
export interface StreamTruncatedEvent {
  readonly type: "stream_truncated";
  readonly reason: { readonly kind: string; readonly dropped?: number };
}

/** A model call reported no usage. */
export interface TurnUsageAccountingUnmeasuredEvent {
  readonly type: "turn_usage_accounting_unmeasured";
  readonly sessionId: string;
  readonly unmeasured: { readonly provider: string; readonly model: string };
}

/** An event type this package has no interface for; `payload` is its wire form. */
export interface UnknownEvent {
  readonly type: "unknown";
  readonly eventType: string;
  readonly payload: Readonly<Record<string, unknown>>;
}

/** An event of a known type that lacks a field it needs; `payload` is its wire form. */
export interface MalformedEvent {
  readonly type: "malformed_event";
  readonly eventType: string;
  readonly payload: Readonly<Record<string, unknown>>;
  /** What was wrong. */
  readonly problem: string;
}

/** Every event a stream yields. */
export type MeerkatEvent =
  | RunStartedEvent
  | TurnStartedEvent
  | ReasoningDeltaEvent
  | ReasoningCompleteEvent
  | TextDeltaEvent
  | TextCompleteEvent
  | ToolCallRequestedEvent
  | ToolExecutionStartedEvent
  | ToolExecutionCompletedEvent
  | ToolResultReceivedEvent
  | TurnCompletedEvent
  | RunCompletedEvent
  | RunFailedEvent
  | RetryingEvent
  | BudgetWarningEvent
  | StreamTruncatedEvent
  | TurnUsageAccountingUnmeasuredEvent
  | UnknownEvent
  | MalformedEvent;

/** Fields (wire names) and their JSON kinds each known type needs. */
const REQUIRED: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  run_started: { session_id: "string", input: "object" },
  turn_started: { turn_number: "number" },
  reasoning_delta: { delta: "string" },
  reasoning_complete: { content: "string" },
  text_delta: { delta: "string" },
  text_complete: { content: "string" },
  tool_call_requested: { id: "string", name: "string", args: "object" },
  tool_execution_started: { id: "string", name: "string" },
  tool_execution_completed: { id: "string", name: "string", is_error: "boolean", duration_ms: "number" },
  tool_result_received: { id: "string", name: "string", content: "object", is_error: "boolean" },
  turn_completed: { stop_reason: "string" },
  run_completed: { session_id: "string", result: "string", usage: "object" },
  run_failed: { session_id: "string" },
  retrying: { retry: "object" },
  budget_warning: { budget_type: "string", used: "number", limit: "number", percent: "number" },
  stream_truncated: { reason: "object" },
  turn_usage_accounting_unmeasured: { session_id: "string", unmeasured: "object" },
};

/** The wire names of the event types this package types. */
export const KNOWN_EVENT_TYPES: ReadonlySet<string> = new Set(Object.keys(REQUIRED));

function missingField(payload: Record<string, unknown>, type: string): string | undefined {
  for (const [field, kind] of Object.entries(REQUIRED[type] ?? {})) {
    const value = payload[field];
    const actual = value === null ? "null" : typeof value;
    if (actual !== kind) return `${field} should be a ${kind}, got ${actual}`;
  }
  if (type === "tool_result_received" && !Array.isArray(payload.content)) {
    return "content should be a list of content blocks";
  }
  return undefined;
}

/** A `run_failed` payload in the 0.9.6 form (an `error_report`), also from the older flat form. */
function withErrorReport(payload: Record<string, unknown>): Record<string, unknown> {
  if (isRecord(payload.error_report)) return payload;
  return {
    ...payload,
    error_report: { class: String(payload.error_class ?? "unknown"), message: String(payload.error ?? "") },
  };
}

/** The typed event for one wire payload; never throws. */
export function eventFromPayload(payload: unknown): MeerkatEvent {
  if (!isRecord(payload) || typeof payload.type !== "string") {
    const raw = isRecord(payload) ? payload : { value: payload };
    return { type: "malformed_event", eventType: "", payload: raw, problem: "the event has no type" };
  }
  const type = payload.type;
  if (!KNOWN_EVENT_TYPES.has(type)) return { type: "unknown", eventType: type, payload };
  const problem = missingField(payload, type);
  if (problem !== undefined) return { type: "malformed_event", eventType: type, payload, problem };
  const wire = type === "run_failed" ? withErrorReport(payload) : payload;
  return camelize(wire) as MeerkatEvent;
}

/** `(sessionId, event)` of a `session/event` notification's params, or undefined when unusable. */
export function eventFromParams(params: unknown): { sessionId: string; event: MeerkatEvent } | undefined {
  if (!isRecord(params) || typeof params.session_id !== "string") return undefined;
  const envelope = params.event;
  const payload = isRecord(envelope) ? envelope.payload : undefined;
  return { sessionId: params.session_id, event: eventFromPayload(payload) };
}
