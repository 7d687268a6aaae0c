/**
 * Callback tools: functions in this program that the model can call.
 *
 * Declare one with `client.tool(name, options, handler)`. When the model calls
 * it, `rkat-rpc` sends a `tool/execute` request; the handler runs (it may make
 * calls on the client itself) and what it returns goes back as the tool's
 * result:
 *
 * - a string, or an array of content blocks, as is;
 * - `undefined`/`null` as an empty string, anything else JSON-encoded;
 * - a thrown error as `"Tool error: <message>"` with `isError` set.
 */

import { isRecord } from "./wire.js";

/** Identifies one call: the run, the model call in it (`round`), the call id and a digest of name and arguments. */
export interface ToolCallDedupeKey {
  readonly runId: string;
  readonly round: number;
  readonly callId: string;
  readonly callDigest: string;
}

/** What a handler learns about the call besides its arguments. */
export interface ToolCall {
  /** The tool's name. */
  readonly name: string;
  /** The model's id for this call. */
  readonly toolUseId: string;
  /** Present when the server sent a well-formed one; a tool with effects can deduplicate on it. */
  readonly dedupeKey?: ToolCallDedupeKey;
}

/** Answers the model's calls of a tool. */
export type ToolHandler = (args: Record<string, unknown>, call: ToolCall) => unknown;

/** What the model is told about a tool. */
export interface ToolOptions {
  /** Defaults to `"Tool: <name>"`. */
  readonly description?: string;
  /** A JSON schema of the arguments; defaults to `{ type: "object" }`. */
  readonly inputSchema?: Readonly<Record<string, unknown>>;
}

/** A declared tool. */
export interface CallbackTool {
  readonly name: string;
  readonly description: string;
  readonly inputSchema: Readonly<Record<string, unknown>>;
  readonly handler: ToolHandler;
}

/** The `tools/register` entry of a tool. */
export function toolToWire(tool: CallbackTool): Record<string, unknown> {
  return { name: tool.name, description: tool.description, input_schema: tool.inputSchema };
}

function dedupeKeyFromWire(value: unknown): ToolCallDedupeKey | undefined {
  if (!isRecord(value)) return undefined;
  const { run_id: runId, round, call_id: callId, call_digest: callDigest } = value;
  if (
    typeof runId === "string" &&
    typeof callId === "string" &&
    typeof callDigest === "string" &&
    typeof round === "number" &&
    Number.isInteger(round) &&
    round >= 0
  ) {
    return { runId, round, callId, callDigest };
  }
  return undefined;
}

function contentOf(value: unknown): string | unknown[] {
  if (typeof value === "string" || Array.isArray(value)) return value;
  if (value === undefined || value === null) return "";
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** The tools one client has declared, by name. */
export class CallbackTools {
  private readonly tools = new Map<string, CallbackTool>();

  /** Add (or replace) a tool. */
  declare(name: string, options: ToolOptions, handler: ToolHandler): CallbackTool {
    if (typeof name !== "string" || name === "") throw new TypeError("a tool needs a non-empty name");
    if (typeof handler !== "function") throw new TypeError(`tool ${name}: the handler must be a function`);
    const tool: CallbackTool = {
      name,
      description: options.description || `Tool: ${name}`,
      inputSchema: options.inputSchema ?? { type: "object" },
      handler,
    };
    this.tools.set(name, tool);
    return tool;
  }

  get size(): number {
    return this.tools.size;
  }

  /** Every tool, as `tools/register` takes them. */
  toWire(): Record<string, unknown>[] {
    return [...this.tools.values()].map(toolToWire);
  }

  /** Answer one `tool/execute` request; never throws. */
  async execute(params: unknown): Promise<{ content: string | unknown[]; is_error: boolean }> {
    const call = isRecord(params) ? params : {};
    const name = typeof call.name === "string" ? call.name : "";
    const tool = this.tools.get(name);
    if (tool === undefined) return { content: `Unknown tool: ${name}`, is_error: true };
    const args = isRecord(call.arguments) ? call.arguments : {};
    const dedupeKey = dedupeKeyFromWire(call.dedupe_key);
    const info: ToolCall = {
      name,
      toolUseId: typeof call.tool_use_id === "string" ? call.tool_use_id : "",
      ...(dedupeKey !== undefined ? { dedupeKey } : {}),
    };
    try {
      return { content: contentOf(await tool.handler(args, info)), is_error: false };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return { content: `Tool error: ${message}`, is_error: true };
    }
  }
}
