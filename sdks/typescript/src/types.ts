/**
 * What the calls take and return, with camelCase fields.
 *
 * The wire's snake_case names map one to one (`tool_calls` -> `toolCalls`,
 * `usage.input_tokens` -> `usage.inputTokens`). Labels, tool arguments,
 * provider params, JSON schemas, content blocks and config documents keep the
 * keys they were written with.
 */

import { ProtocolError } from "./errors.js";
import { camelize, isRecord } from "./wire.js";

/** A content block of a prompt, a tool result or a history row, in its wire form. */
export type ContentBlock = { readonly type: string; readonly [key: string]: unknown };

/** A prompt: text, or content blocks (`{ type: "text", text }`, images...). */
export type Prompt = string | readonly ContentBlock[];

/** Why a model call ended. */
export type StopReason =
  | "end_turn"
  | "tool_use"
  | "max_tokens"
  | "stop_sequence"
  | "content_filter"
  | "cancelled"
  | "refusal"
  | "pause_turn"
  | "context_window_exceeded";

/** How a provider's input counters were normalised (on a single call's usage). */
export interface UsageAccounting {
  readonly provider: string;
  readonly model: string;
  readonly presentedTokens: number;
  readonly convention: string;
  readonly aggregation: string;
}

/**
 * Token usage. On a RunResult and `run_completed` it is the session's running
 * total; on `turn_completed` one model call's counters (with `accounting`).
 */
export interface Usage {
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly totalTokens?: number;
  readonly cacheCreationTokens?: number | null;
  readonly cacheReadTokens?: number | null;
  readonly reasoningTokens?: number | null;
  readonly accounting?: UsageAccounting;
}

/** The end of a run: a `createSession`, `session.turn` or a stream's `result`. */
export interface RunResult {
  readonly sessionId: string;
  /** The run's id (the one a SESSION_BUSY error names). */
  readonly runId?: string;
  /** The final answer. */
  readonly text: string;
  /** Model calls the run made. */
  readonly turns: number;
  /** Tool calls the run made. */
  readonly toolCalls: number;
  /** The session's cumulative usage after the run. */
  readonly usage: Usage;
  /** This run's share of it. */
  readonly runUsage?: Usage;
  /** `<realm_id>:<session_id>`, the handle other surfaces accept. */
  readonly sessionRef?: string;
  readonly terminalCauseKind?: string;
  readonly structuredOutput?: unknown;
}

/** A session as `listSessions` shows it; times are Unix seconds. */
export interface SessionInfo {
  readonly sessionId: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly messageCount: number;
  readonly totalTokens: number;
  /** True while a turn runs. */
  readonly isActive: boolean;
  readonly labels: Readonly<Record<string, string>>;
  readonly sessionRef?: string;
}

/** A session as `readSession` shows it: also its model, provider, usage and last answer. */
export interface SessionDetails extends SessionInfo {
  readonly model: string;
  readonly provider: string;
  readonly lastAssistantText?: string | null;
  readonly usage: Usage;
}

/** One block of an assistant row: `blockType` plus its data (`text`, or a tool call's `id`, `name`, `args`). */
export interface AssistantBlock {
  readonly blockType: string;
  readonly data: Readonly<Record<string, unknown>>;
  readonly text?: string;
  readonly id?: string;
  readonly name?: string;
  readonly args?: Readonly<Record<string, unknown>>;
}

/** The result of one tool call, in the row after the call. */
export interface ToolResult {
  readonly toolUseId: string;
  readonly content: string | readonly ContentBlock[];
  readonly isError: boolean;
}

export interface UserMessage {
  readonly role: "user";
  readonly content: Prompt;
  readonly createdAt: string;
  readonly runId?: string;
}

export interface BlockAssistantMessage {
  readonly role: "block_assistant";
  readonly blocks: readonly AssistantBlock[];
  readonly stopReason: StopReason;
  readonly createdAt: string;
  readonly assistantMessageId?: string;
  readonly runId?: string;
}

export interface ToolResultsMessage {
  readonly role: "tool_results";
  readonly results: readonly ToolResult[];
  readonly createdAt: string;
  readonly runId?: string;
}

export interface SystemMessage {
  readonly role: "system";
  readonly content: string;
  readonly createdAt: string;
}

/** A transcript row, oldest first; tell them apart by `role`. */
export type HistoryMessage = UserMessage | BlockAssistantMessage | ToolResultsMessage | SystemMessage;

/** A page of a session's transcript. `messageCount` is the session's total. */
export interface HistoryPage {
  readonly sessionId: string;
  readonly messageCount: number;
  readonly offset: number;
  readonly limit?: number | null;
  readonly hasMore: boolean;
  readonly messages: readonly HistoryMessage[];
  readonly sessionRef?: string;
}

/** Where a realm keeps its files. */
export interface ResolvedPaths {
  readonly root?: string;
  readonly manifestPath?: string;
  readonly configPath?: string;
  readonly sessionsSqlitePath?: string;
  readonly sessionsJsonlDir?: string;
  readonly [key: string]: unknown;
}

/** A realm config document, with the host's own (snake_case) key names as stored. */
export type ConfigDocument = Record<string, unknown>;

/** What `getConfig`, `setConfig` and `patchConfig` return. */
export interface ConfigEnvelope {
  /** The whole document, every default filled in, keys as the host names them (`max_tokens_per_turn`). */
  readonly config: ConfigDocument;
  /** Goes up by one with every write; pass it as `expectedGeneration` to compare-and-swap. */
  readonly generation: number;
  readonly realmId: string;
  readonly instanceId?: string | null;
  readonly backend: string;
  readonly resolvedPaths: ResolvedPaths;
}

/** Contract version in its object form. */
export interface ContractVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

/** One model of the catalog. */
export interface CatalogModel {
  readonly id: string;
  readonly displayName?: string;
  readonly tier?: string;
  readonly contextWindow?: number;
  readonly maxOutputTokens?: number;
  /** `modelFamily`, `supportsThinking`, ..., and `paramsSchema` (a JSON schema of the accepted `providerParams`). */
  readonly profile?: Readonly<Record<string, unknown>>;
  readonly [key: string]: unknown;
}

/** One provider of the catalog. */
export interface CatalogProvider {
  readonly provider: string;
  readonly defaultModelId: string;
  readonly models: readonly CatalogModel[];
}

/** What `getModelsCatalog` returns. */
export interface ModelsCatalog {
  readonly contractVersion: ContractVersion;
  readonly providers: readonly CatalogProvider[];
}

/** One entry of the server's capabilities. */
export interface Capability {
  readonly id: string;
  readonly description: string;
  /** `"Available"`, or why not (`"NotCompiled"`, `"DisabledByPolicy"`...). */
  readonly status: string;
  readonly available: boolean;
}

// -- decoding -------------------------------------------------------------------

function expectFields(value: unknown, what: string, fields: Record<string, string>): Record<string, unknown> {
  if (!isRecord(value)) throw new ProtocolError(`unexpected ${what} from rkat-rpc: not an object`);
  for (const [field, kind] of Object.entries(fields)) {
    const actual = Array.isArray(value[field]) ? "array" : typeof value[field];
    if (actual !== kind) {
      throw new ProtocolError(`unexpected ${what} from rkat-rpc: ${field} should be a ${kind}, got ${actual}`);
    }
  }
  return value;
}

/** A RunResult from the wire (ProtocolError if it lacks what every result has). */
export function decodeRunResult(value: unknown): RunResult {
  const raw = expectFields(value, "run result", {
    session_id: "string",
    text: "string",
    turns: "number",
    tool_calls: "number",
    usage: "object",
  });
  return camelize(raw) as RunResult;
}

/** A `session/list` entry. */
export function decodeSessionInfo(value: unknown): SessionInfo {
  const raw = expectFields(value, "session", { session_id: "string", message_count: "number", is_active: "boolean" });
  return camelize({ ...raw, labels: raw.labels ?? {} }) as SessionInfo;
}

/** A `session/read` result. */
export function decodeSessionDetails(value: unknown): SessionDetails {
  expectFields(value, "session", { model: "string", provider: "string" });
  return decodeSessionInfo(value) as SessionDetails;
}

function decodeMessage(value: unknown): HistoryMessage {
  const row = camelize(value) as Record<string, unknown>;
  if (row.role === "block_assistant" && Array.isArray(row.blocks)) {
    row.blocks = row.blocks.map((block) => {
      const data = isRecord(block) && isRecord(block.data) ? block.data : {};
      return { ...data, ...(block as object), data };
    });
  }
  return row as unknown as HistoryMessage;
}

/** A `session/history` page. */
export function decodeHistoryPage(value: unknown): HistoryPage {
  const raw = expectFields(value, "history page", { session_id: "string", has_more: "boolean", messages: "array" });
  const page = camelize({ ...raw, messages: [] }) as Record<string, unknown>;
  page.messages = (raw.messages as unknown[]).map(decodeMessage);
  return page as unknown as HistoryPage;
}

/** A config envelope. */
export function decodeConfigEnvelope(value: unknown): ConfigEnvelope {
  const raw = expectFields(value, "config", { config: "object", generation: "number" });
  return camelize({ ...raw, resolved_paths: raw.resolved_paths ?? {} }) as ConfigEnvelope;
}

/** The models catalog (its contract version normalised to the object form). */
export function decodeModelsCatalog(value: unknown): ModelsCatalog {
  const raw = expectFields(value, "models catalog", { providers: "array" });
  const catalog = camelize(raw) as Record<string, unknown>;
  if (typeof catalog.contractVersion === "string") {
    const [major, minor, patch] = catalog.contractVersion.split(".").map(Number);
    catalog.contractVersion = { major, minor, patch };
  }
  return catalog as unknown as ModelsCatalog;
}

/** The capabilities of `capabilities/get`. */
export function decodeCapabilities(value: unknown): Capability[] {
  const list = isRecord(value) ? value.capabilities : undefined;
  if (!Array.isArray(list)) throw new ProtocolError("unexpected capabilities from rkat-rpc: no capabilities list");
  return list.map((entry) => {
    const raw = expectFields(entry, "capability", { id: "string", description: "string" });
    const status = isRecord(raw.status) ? (Object.keys(raw.status)[0] ?? "") : String(raw.status ?? "");
    return { id: raw.id as string, description: raw.description as string, status, available: status === "Available" };
  });
}
