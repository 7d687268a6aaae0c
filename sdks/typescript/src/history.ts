/**
 * The history API's results (forks, transcript revisions, system prompt) and the
 * conversions between the SDK's camelCase rows and the wire's.
 */

import { ProtocolError } from "./errors.js";
import { decodeHistoryPage, type HistoryMessage, type HistoryPage } from "./types.js";
import { camelize, isRecord } from "./wire.js";

/** A fork: the new session, its rows and where the source was cut. */
export interface ForkResult {
  readonly sourceSessionId: string;
  readonly sessionId: string;
  readonly sessionRef?: string;
  readonly messageCount: number;
  readonly forkPoint: number;
  readonly sourceRevision: string;
  readonly reactivatedInstructionCount: number;
  readonly cacheInheritance: Readonly<Record<string, unknown>>;
}

/** A committed rewrite or restore. */
export interface RewriteResult {
  readonly sessionId: string;
  readonly parentRevision: string;
  readonly revision: string;
  readonly messageCount: number;
  readonly commit: Readonly<Record<string, unknown>>;
}

/** One rewrite commit (`committedAt`: Unix milliseconds). */
export interface RevisionEntry {
  readonly revision: string;
  readonly parentRevision: string;
  readonly reason: string;
  readonly note?: string | null;
  readonly actor?: string | null;
  readonly committedAt: number;
  readonly messagesBefore: number;
  readonly messagesAfter: number;
  readonly restoredFrom?: string;
}

/** A session's rewrite commits (oldest first) and its head revision (`r0`: never rewritten). */
export interface RevisionList {
  readonly headRevision: string;
  readonly entries: readonly RevisionEntry[];
  readonly total: number;
}

/** A page of one retained revision's rows. */
export interface RevisionPage extends HistoryPage {
  readonly revision: string;
  readonly headRevision: string;
}

/** What `updateSystemPrompt` did: `applied` (a new version) or `duplicate`. */
export interface SystemPromptUpdate {
  readonly sessionId: string;
  readonly key: string;
  readonly version: number;
  readonly messageIndex: number;
  readonly status: "applied" | "duplicate";
  readonly transcriptRevision: string;
  readonly commit: Readonly<Record<string, unknown>> | null;
}

function expect(value: unknown, what: string, fields: Record<string, string>): Record<string, unknown> {
  if (!isRecord(value)) throw new ProtocolError(`unexpected ${what} from rkat-rpc: not an object`);
  for (const [field, kind] of Object.entries(fields)) {
    const actual = Array.isArray(value[field]) ? "array" : typeof value[field];
    if (actual !== kind) {
      throw new ProtocolError(`unexpected ${what} from rkat-rpc: ${field} should be a ${kind}, got ${actual}`);
    }
  }
  return value;
}

/** A `session/fork_at` / `session/fork_replace` result. */
export function decodeForkResult(value: unknown): ForkResult {
  const raw = expect(value, "fork result", { session_id: "string", source_session_id: "string", message_count: "number" });
  return { ...(camelize(raw) as object), cacheInheritance: raw.cache_inheritance ?? {} } as ForkResult;
}

/** A rewrite / restore result (the commit keeps its wire keys). */
export function decodeRewriteResult(value: unknown): RewriteResult {
  const raw = expect(value, "rewrite result", { revision: "string", parent_revision: "string", commit: "object" });
  return { ...(camelize({ ...raw, commit: {} }) as object), commit: raw.commit } as RewriteResult;
}

/** A `session/transcript_revisions` result. */
export function decodeRevisionList(value: unknown): RevisionList {
  const raw = expect(value, "revision list", { head_revision: "string", entries: "array" });
  return camelize({ total: (raw.entries as unknown[]).length, ...raw }) as RevisionList;
}

/** A `session/transcript_revision` result. */
export function decodeRevisionPage(value: unknown): RevisionPage {
  expect(value, "revision page", { revision: "string", head_revision: "string" });
  return decodeHistoryPage(value) as RevisionPage;
}

/** A `session/update_system_prompt` result. */
export function decodeSystemPromptUpdate(value: unknown): SystemPromptUpdate {
  const raw = expect(value, "system prompt update", { key: "string", version: "number", status: "string" });
  return { ...(camelize({ ...raw, commit: null }) as object), commit: raw.commit ?? null } as SystemPromptUpdate;
}

const ROW_KEYS: Record<string, string> = {
  createdAt: "created_at", stopReason: "stop_reason", runId: "run_id", assistantMessageId: "assistant_message_id",
  toolUseId: "tool_use_id", isError: "is_error", promptVersion: "prompt_version",
  instructionActivation: "instruction_activation",
};

/** A transcript row for a rewrite: a row read with `readSessionHistory` (camelCase) or a wire row (snake_case). */
export function rowToWire(row: HistoryMessage | Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(row)) {
    const name = ROW_KEYS[key] ?? key;
    if (name === "blocks" && Array.isArray(value)) {
      out.blocks = value.map((block) => {
        const b = block as Record<string, unknown>;
        return { block_type: b.blockType ?? b.block_type, data: b.data ?? {} };
      });
    } else if (name === "results" && Array.isArray(value)) {
      out.results = value.map((result) => rowToWire(result as Record<string, unknown>));
    } else {
      out[name] = value;
    }
  }
  return out;
}
