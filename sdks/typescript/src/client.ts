/**
 * MeerkatClient: drive an `rkat-rpc` child from Node.
 *
 * ```ts
 * const client = new MeerkatClient();
 * await client.connect();
 * const session = await client.createSession("What is the capital of France?");
 * console.log(session.text);
 * const result = await session.turn("Now explain it in more detail");
 * await client.close();
 * ```
 *
 * `connect()` starts `rkat-rpc` (the `rkatPath` option, `$MEERKAT_BIN_PATH` or
 * `PATH`; never downloaded) with the realm options given, checks its contract
 * version and registers the tools declared so far. `close()` ends it.
 */

import { findRkatRpc } from "./binary.js";
import { Connection } from "./connection.js";
import {
  decodeForkResult,
  decodeRevisionList,
  decodeRevisionPage,
  decodeRewriteResult,
  decodeSystemPromptUpdate,
  rowToWire,
  type ForkResult,
  type RevisionList,
  type RevisionPage,
  type RewriteResult,
  type SystemPromptUpdate,
} from "./history.js";
import {
  decodeEventsPage,
  decodeExternalEventResult,
  decodeInjectResult,
  decodeInputState,
  decodeRealms,
  decodeStopReceipt,
  EventSubscription,
  latestSequence,
  type EventsPage,
  type ExternalEventResult,
  type InjectResult,
  type InputState,
  type RealmInfo,
  type StopReceipt,
} from "./live.js";

function liveScope(sessionId: string): Record<string, string> {
  return { type: "session", session_id: sessionId };
}
import { ClientClosedError, ConnectTimeoutError, MeerkatError, ProtocolError, VersionMismatchError } from "./errors.js";
import { Session } from "./session.js";
import { EventStream } from "./stream.js";
import { CallbackTools, toolToWire, type ToolHandler, type ToolOptions } from "./tools.js";
import {
  decodeCapabilities,
  decodeConfigEnvelope,
  decodeHistoryPage,
  decodeModelsCatalog,
  decodeRunResult,
  decodeSessionDetails,
  decodeSessionInfo,
  type Capability,
  type ConfigEnvelope,
  type HistoryMessage,
  type HistoryPage,
  type ModelsCatalog,
  type Prompt,
  type RunResult,
  type SessionDetails,
  type SessionInfo,
} from "./types.js";
import { configToWire, isRecord, optionsToWire } from "./wire.js";

/** The contract this client speaks; any server reporting 0.9.x is accepted. */
export const CONTRACT_VERSION = "0.9.6";

/** How to find and start `rkat-rpc`. */
export interface ClientOptions {
  /** The `rkat-rpc` to start: a path, or a name looked up on `PATH`. Wins over `$MEERKAT_BIN_PATH`. */
  readonly rkatPath?: string;
  /** The child's environment (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
  /** Milliseconds `connect()` waits for `rkat-rpc` to answer the handshake (default 30000). */
  readonly connectTimeoutMs?: number;
}

/** How long `connect()` waits for the handshake by default. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/** Which realm to serve (all optional: without `realmId`, a fresh realm that ends with the child). */
export interface ConnectOptions {
  /** Sessions and config live in a realm; the same id and state root share them across processes. */
  readonly realmId?: string;
  /** A label for this process in the realm (metadata only). */
  readonly instanceId?: string;
  /** Storage of a new realm: `sqlite` (default), `jsonl`, `memory` or `postgres` (with `databaseUrl`). */
  readonly realmBackend?: "sqlite" | "jsonl" | "memory" | "postgres";
  /**
   * A postgres realm's database (else the child inherits `$RKAT_DATABASE_URL`). It reaches
   * `rkat-rpc` through its environment, never its command line, which other users can read.
   */
  readonly databaseUrl?: string;
  /** A fresh realm of its own (cannot be combined with `realmId`). */
  readonly isolated?: boolean;
  /** The directory realms live under (default `$RKAT_STATE_ROOT` or the user data directory). */
  readonly stateRoot?: string;
  /** A project directory: a `realmId` the `rkat` CLI keeps there is served from there. */
  readonly contextRoot?: string;
  /** Accepted as the published SDK's is; this host keeps all config in the realm. */
  readonly userConfigRoot?: string;
}

/** Options of a turn. */
export interface TurnOptions {
  /** A model id (`claude-sonnet-4-6`, `gpt-5.5`, `mock`...); the provider is inferred from the catalog. */
  readonly model?: string;
  readonly provider?: string;
  readonly systemPrompt?: string;
  /** Most output tokens of each model call. */
  readonly maxTokens?: number;
  /** Passed to the provider as is (`{ reasoning_effort: "high" }`). */
  readonly providerParams?: Readonly<Record<string, unknown>>;
  /** System instructions for this turn only (after the system prompt). */
  readonly additionalInstructions?: readonly string[];
}

/** Options of a new session. */
export interface CreateSessionOptions extends Omit<TurnOptions, "systemPrompt"> {
  /** A system prompt, or `{ action: "disable" }` for none at all (not even the realm config's). */
  readonly systemPrompt?: string | { readonly action: "disable" };
  /** String labels to find the session by (`listSessions({ labels })`). */
  readonly labels?: Readonly<Record<string, string>>;
  /** The session's token budget. */
  readonly budgetMaxTokens?: number;
}

/** Which sessions `listSessions` returns. */
export interface ListSessionsOptions {
  /** Keep sessions having every one of these labels. */
  readonly labels?: Readonly<Record<string, string>>;
  /** At most this many (default 100). */
  readonly limit?: number;
  readonly offset?: number;
}

/** A compare-and-swap config write. */
export interface ConfigWriteOptions {
  /** Write only if the config is still at this generation (else CONFIG_GENERATION_CONFLICT). */
  readonly expectedGeneration?: number;
}

const TURN_OPTIONS = ["model", "provider", "systemPrompt", "maxTokens", "providerParams", "additionalInstructions"] as const;
const CREATE_OPTIONS = [...TURN_OPTIONS, "labels", "budgetMaxTokens"] as const;

/** `rkat-rpc` arguments for these realm options, in the order the published SDK uses. */
export function connectArgv(options: ConnectOptions = {}): string[] {
  if (options.realmId && options.isolated) {
    throw new MeerkatError("INVALID_PARAMS", "realmId and isolated: true cannot be used together");
  }
  const argv: string[] = options.isolated ? ["--isolated"] : [];
  const flags: [string, string | undefined][] = [
    ["--realm", options.realmId],
    ["--instance", options.instanceId],
    ["--realm-backend", options.realmBackend],
    ["--state-root", options.stateRoot],
    ["--context-root", options.contextRoot],
    ["--user-config-root", options.userConfigRoot],
  ];
  for (const [flag, value] of flags) {
    if (value) argv.push(flag, value);
  }
  return argv;
}

function compatible(version: unknown): version is string {
  if (typeof version !== "string") return false;
  const parts = version.split(/[-+]/, 1)[0]!.split(".");
  if (parts.length < 2 || parts.some((part) => !/^\d+$/.test(part))) return false;
  return Number(parts[0]) === 0 && Number(parts[1]) === 9;
}

/** A connection to one realm served by an `rkat-rpc` child process. */
export class MeerkatClient {
  private readonly rkatPath: string | undefined;
  private readonly env: NodeJS.ProcessEnv | undefined;
  /** Milliseconds `connect()` waits for the handshake. */
  readonly connectTimeoutMs: number;
  private readonly tools = new CallbackTools();
  private conn: Connection | undefined;
  /** What the server reported at connect. */
  capabilities: Capability[] = [];
  /** `{ name, version }` of the server. */
  serverInfo: Readonly<Record<string, unknown>> = {};
  /** The server's contract version (`"0.9.6"`). */
  contractVersion: string | undefined;
  /** Failures of tools declared while connected (registered in the background). */
  readonly toolRegistrationErrors: MeerkatError[] = [];

  /** `new MeerkatClient()`, `new MeerkatClient("/path/to/rkat-rpc")` or `new MeerkatClient({ rkatPath, env })`. */
  constructor(options: string | ClientOptions = {}) {
    const resolved = typeof options === "string" ? { rkatPath: options } : options;
    this.rkatPath = resolved.rkatPath;
    this.env = resolved.env;
    this.connectTimeoutMs = resolved.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    if (!(this.connectTimeoutMs > 0)) {
      throw new MeerkatError("INVALID_PARAMS", `connectTimeoutMs must be > 0, got ${String(resolved.connectTimeoutMs)}`);
    }
  }

  // -- lifecycle -----------------------------------------------------------------------------

  /** Start `rkat-rpc` on a realm and shake hands. */
  async connect(options: ConnectOptions = {}): Promise<this> {
    if (this.conn !== undefined) throw new MeerkatError("INVALID_PARAMS", "already connected; close() first");
    const args = connectArgv(options);
    const binary = findRkatRpc(this.rkatPath, this.env ?? process.env);
    const env = options.databaseUrl === undefined
      ? this.env
      : { ...(this.env ?? process.env), RKAT_DATABASE_URL: options.databaseUrl };
    const conn = Connection.open([binary, ...args], (method, params) => this.onServerRequest(method, params), env);
    this.conn = conn;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ConnectTimeoutError(
        `${binary} did not answer the handshake within ${this.connectTimeoutMs / 1000} s; is it this ` +
          "repository's rkat-rpc? (new MeerkatClient({ connectTimeoutMs }) allows a slower start)",
        { binary, connect_timeout_ms: this.connectTimeoutMs },
      )), this.connectTimeoutMs);
    });
    timedOut.catch(() => undefined); // rejected only when nobody is racing it any more
    try {
      await Promise.race([this.handshake(conn), timedOut]);
    } catch (error) {
      await this.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    return this;
  }

  private async handshake(conn: Connection): Promise<void> {
    {
      const init = await conn.request("initialize", {});
      const version = isRecord(init) ? init.contract_version : undefined;
      if (!compatible(version)) {
        throw new VersionMismatchError(
          `rkat-rpc speaks contract ${JSON.stringify(version)}; this client speaks ${CONTRACT_VERSION}`,
        );
      }
      this.contractVersion = version;
      this.serverInfo = isRecord(init) && isRecord(init.server_info) ? init.server_info : {};
      this.capabilities = decodeCapabilities(await conn.request("capabilities/get", {}));
      if (this.tools.size > 0) await conn.request("tools/register", { tools: this.tools.toWire() });
    }
  }

  /** End the child (pending calls fail with ClientClosedError). Safe to call twice. */
  async close(): Promise<void> {
    const conn = this.conn;
    this.conn = undefined;
    await conn?.close();
  }

  /** The process id of the `rkat-rpc` child (undefined when not connected). */
  get serverPid(): number | undefined {
    return this.conn?.pid;
  }

  /** True when the server reported `capabilityId` as available. */
  hasCapability(capabilityId: string): boolean {
    return this.capabilities.some((c) => c.id === capabilityId && c.available);
  }

  // -- plumbing ------------------------------------------------------------------------------

  private connection(): Connection {
    if (this.conn === undefined) {
      throw new ClientClosedError("not connected: call connect() first");
    }
    return this.conn;
  }

  private async call(method: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
    const result = await this.connection().request(method, params);
    if (!isRecord(result)) throw new ProtocolError(`${method}: expected an object result, got ${JSON.stringify(result)}`);
    return result;
  }

  private async onServerRequest(method: string, params: unknown): Promise<unknown> {
    if (method === "tool/execute") return this.tools.execute(params);
    throw new MeerkatError("METHOD_NOT_FOUND", `Method not supported: ${method}`);
  }

  private turnParams(sessionId: string, prompt: Prompt, options: TurnOptions | undefined): Record<string, unknown> {
    return { session_id: sessionId, prompt, ...optionsToWire(options, TURN_OPTIONS, "turn option") };
  }

  /** A handle on an existing session of the realm (nothing is sent). */
  session(sessionId: string): Session {
    return new Session(this, sessionId);
  }

  private stream(
    starter: ConstructorParameters<typeof EventStream>[1],
    onResult?: (result: RunResult) => void,
  ): EventStream {
    return new EventStream(() => this.connection(), starter, (id, result) => new Session(this, id, result), onResult);
  }

  // -- tools ---------------------------------------------------------------------------------

  /**
   * Declare a callback tool: `handler(args, call)` answers the model's calls of it.
   *
   * ```ts
   * client.tool("search", { description: "Search the docs",
   *   inputSchema: { type: "object", properties: { q: { type: "string" } } } },
   *   async (args) => `results for ${args.q}`);
   * ```
   *
   * Declared before `connect()`, tools are registered during it; declared while
   * connected, at once (before any later call reaches the server; failures land
   * in {@link MeerkatClient.toolRegistrationErrors}).
   */
  tool(name: string, handler: ToolHandler): this;
  tool(name: string, options: ToolOptions, handler: ToolHandler): this;
  tool(name: string, optionsOrHandler: ToolOptions | ToolHandler, maybeHandler?: ToolHandler): this {
    const [options, handler] =
      typeof optionsOrHandler === "function" ? [{}, optionsOrHandler] : [optionsOrHandler, maybeHandler];
    const tool = this.tools.declare(name, options, handler as ToolHandler);
    if (this.conn !== undefined) {
      this.conn.request("tools/register", { tools: [toolToWire(tool)] }).catch((error: unknown) => {
        if (error instanceof MeerkatError) this.toolRegistrationErrors.push(error);
      });
    }
    return this;
  }

  // -- sessions ------------------------------------------------------------------------------

  /** Create a session and run its first turn; the {@link Session} holds the result. */
  async createSession(prompt: Prompt, options?: CreateSessionOptions): Promise<Session> {
    const params = { prompt, ...optionsToWire(options, CREATE_OPTIONS, "session option"), session_events: false };
    const result = decodeRunResult(await this.call("session/create", params));
    return new Session(this, result.sessionId, result);
  }

  /** Create a session and stream its first turn live (see {@link EventStream}). */
  createSessionStreaming(prompt: Prompt, options?: CreateSessionOptions): EventStream {
    // The session is created first (settings only), so its first turn streams live like any other.
    const create = { prompt, ...optionsToWire(options, CREATE_OPTIONS, "session option"), initial_turn: "deferred" };
    return this.stream(async (start) => {
      const created = await this.call("session/create", create);
      if (typeof created.session_id !== "string" || created.session_id === "") {
        throw new ProtocolError("session/create returned no session_id");
      }
      start(created.session_id, { session_id: created.session_id, prompt });
      return created.session_id;
    });
  }

  /** Run a turn on session `sessionId` (what {@link Session.turn} does). */
  async startTurn(sessionId: string, prompt: Prompt, options?: TurnOptions): Promise<RunResult> {
    const params = { ...this.turnParams(sessionId, prompt, options), session_events: false };
    return decodeRunResult(await this.call("turn/start", params));
  }

  /** Stream a turn on session `sessionId` (what {@link Session.stream} does). */
  startTurnStreaming(
    sessionId: string,
    prompt: Prompt,
    options?: TurnOptions,
    onResult?: (result: RunResult) => void,
  ): EventStream {
    const params = this.turnParams(sessionId, prompt, options);
    return this.stream(async (start) => {
      start(sessionId, params);
      return sessionId;
    }, onResult);
  }

  /** Cancel the running turn of `sessionId` (a no-op when idle). */
  async interrupt(sessionId: string): Promise<void> {
    await this.call("turn/interrupt", { session_id: sessionId });
  }

  /** Archive `sessionId`: hidden from list and read; its history is kept. */
  async archiveSession(sessionId: string): Promise<void> {
    await this.call("session/archive", { session_id: sessionId });
  }

  /** Live sessions, most recently updated first. */
  async listSessions(options?: ListSessionsOptions): Promise<SessionInfo[]> {
    const params = optionsToWire(options, ["labels", "limit", "offset"], "list option");
    const result = await this.call("session/list", params);
    if (!Array.isArray(result.sessions)) throw new ProtocolError("session/list returned no sessions list");
    return result.sessions.map(decodeSessionInfo);
  }

  /** One session's state (SESSION_NOT_FOUND if unknown or archived). */
  async readSession(sessionId: string): Promise<SessionDetails> {
    return decodeSessionDetails(await this.call("session/read", { session_id: sessionId }));
  }

  /** A page of a session's transcript, oldest first (default 100 rows). */
  async readSessionHistory(sessionId: string, options?: { offset?: number; limit?: number }): Promise<HistoryPage> {
    const params = { session_id: sessionId, offset: 0, ...optionsToWire(options, ["offset", "limit"], "history option") };
    return decodeHistoryPage(await this.call("session/history", params));
  }

  // -- config and models -----------------------------------------------------------------------

  /** The realm's config and its generation. */
  async getConfig(): Promise<ConfigEnvelope> {
    return decodeConfigEnvelope(await this.call("config/get", {}));
  }

  /**
   * Replace the config (missing keys take their defaults). Keys may be the
   * host's (`max_tokens_per_turn`) or camelCase (`maxTokensPerTurn`).
   */
  async setConfig(config: Readonly<Record<string, unknown>>, options?: ConfigWriteOptions): Promise<ConfigEnvelope> {
    const params = { config: configToWire(config), ...optionsToWire(options, ["expectedGeneration"], "config option") };
    return decodeConfigEnvelope(await this.call("config/set", params));
  }

  /** Merge-patch the config (RFC 7396: `null` resets a key to its default), optionally compare-and-swap. */
  async patchConfig(patch: Readonly<Record<string, unknown>>, options?: ConfigWriteOptions): Promise<ConfigEnvelope> {
    const params = { patch: configToWire(patch), ...optionsToWire(options, ["expectedGeneration"], "config option") };
    return decodeConfigEnvelope(await this.call("config/patch", params));
  }

  // -- live sessions: subscriptions, the event log, stop_run, inputs, discovery -----------------

  /** Follow `sessionId`'s events without starting a turn (turns of other clients and processes too). */
  async subscribeEvents(sessionId: string): Promise<EventSubscription> {
    const opened = await this.call("session/stream_open", { session_id: sessionId });
    return new EventSubscription(this.connection(), String(opened.stream_id), String(opened.session_id));
  }

  /** The seq of the session's newest logged event (0: none yet). */
  async latestEventCursor(sessionId: string): Promise<number> {
    return latestSequence(await this.call("events/latest_cursor", { scope: liveScope(sessionId) }));
  }

  /** Logged events after cursor `after` (any process, after restarts); STALE_CURSOR once pruned. */
  async listEventsSince(sessionId: string, after = 0, options: { limit?: number } = {}): Promise<EventsPage> {
    const params: Record<string, unknown> = {
      scope: liveScope(sessionId), cursor: { scope: liveScope(sessionId), sequence: after },
    };
    if (options.limit !== undefined) params.limit = options.limit;
    return decodeEventsPage(await this.call("events/list_since", params));
  }

  /** Stop `runId` only if it is still the session's current run (in any process). */
  async stopRun(sessionId: string, runId: string, reason = ""): Promise<StopReceipt> {
    const answer = await this.call("turn/stop_run", { session_id: sessionId, run_id: runId, reason });
    return decodeStopReceipt(answer.receipt);
  }

  /** Append a durable system message the model sees from its next call on. */
  async injectContext(
    sessionId: string, text: string, options: { source?: string; idempotencyKey?: string } = {},
  ): Promise<InjectResult> {
    const params: Record<string, unknown> = { session_id: sessionId, content: { type: "text", text } };
    if (options.source !== undefined) params.source = options.source;
    if (options.idempotencyKey !== undefined) params.idempotency_key = options.idempotencyKey;
    return decodeInjectResult(await this.call("session/inject_context", params));
  }

  /** An input's state by `inputId` or `idempotencyKey` (exactly one); undefined when none matches. */
  async inputState(
    sessionId: string, selector: { inputId?: string; idempotencyKey?: string },
  ): Promise<InputState | undefined> {
    if ((selector.inputId === undefined) === (selector.idempotencyKey === undefined)) {
      throw new TypeError("give exactly one of inputId or idempotencyKey");
    }
    const by = selector.inputId !== undefined
      ? { by: "input_id", value: selector.inputId } : { by: "idempotency_key", value: selector.idempotencyKey };
    const answer = await this.call("session/input_status", { session_id: sessionId, selector: by });
    return answer.state === null || answer.state === undefined ? undefined : decodeInputState(answer.state);
  }

  /** Queue an external event; it runs as a turn of its own once the session is free. */
  async sendExternalEvent(
    sessionId: string, eventType: string, payload: unknown, options: { idempotencyKey?: string } = {},
  ): Promise<ExternalEventResult> {
    const params: Record<string, unknown> = { session_id: sessionId, kind: "generic_json", event_type: eventType, payload };
    if (options.idempotencyKey !== undefined) params.idempotency_key = options.idempotencyKey;
    return decodeExternalEventResult(await this.call("session/external_event", params));
  }

  /** Realms under the server's state root, the served one first. */
  async listRealms(): Promise<RealmInfo[]> {
    return decodeRealms(await this.call("realm/list", {}));
  }

  /** The server process: id, version, realm, feature flags, health (wire shape). */
  async runtimeHostInfo(): Promise<Record<string, unknown>> {
    return this.call("runtime/host_info", {});
  }

  // -- history: forks, revisions, system prompt, instructions, export ----------------------------

  /**
   * A new session with the first `at` rows of `sessionId` (all when omitted); the source is unchanged.
   * With `replacement` (`{type: "message", message}` or a block replacement) the row at `at` is replaced and kept.
   */
  async forkSession(
    sessionId: string,
    options: { at?: number; replacement?: Record<string, unknown>; inheritedInstructions?: string } = {},
  ): Promise<ForkResult> {
    const at = options.at ?? (await this.readSession(sessionId)).messageCount;
    const params: Record<string, unknown> = { session_id: sessionId, message_index: at };
    if (options.replacement !== undefined) params.replacement = options.replacement;
    if (options.inheritedInstructions !== undefined) params.inherited_instructions = options.inheritedInstructions;
    const method = options.replacement !== undefined ? "session/fork_replace" : "session/fork_at";
    return decodeForkResult(await this.call(method, params));
  }

  /** Replace rows `[start, end)` of an idle session with `replacement` as a new revision (the old one stays readable). */
  async rewriteTranscript(
    sessionId: string,
    edit: {
      start: number; end: number; replacement: ReadonlyArray<HistoryMessage | Record<string, unknown>>;
      reason?: string; note?: string; actor?: string; expectedParentRevision?: string;
    },
  ): Promise<RewriteResult> {
    const params: Record<string, unknown> = {
      session_id: sessionId, selection: { type: "message_range", start: edit.start, end: edit.end },
      replacement: edit.replacement.map(rowToWire), reason: { kind: edit.reason ?? "edit", note: edit.note ?? null },
    };
    if (edit.actor !== undefined) params.actor = edit.actor;
    if (edit.expectedParentRevision !== undefined) params.expected_parent_revision = edit.expectedParentRevision;
    return decodeRewriteResult(await this.call("session/rewrite_transcript", params));
  }

  /** Make a retained revision's rows the transcript again, as a new revision. */
  async restoreTranscriptRevision(
    sessionId: string, revision: string, options: { reason?: string; expectedParentRevision?: string } = {},
  ): Promise<RewriteResult> {
    const params: Record<string, unknown> = { session_id: sessionId, revision, reason: { kind: options.reason ?? "restore" } };
    if (options.expectedParentRevision !== undefined) params.expected_parent_revision = options.expectedParentRevision;
    return decodeRewriteResult(await this.call("session/restore_transcript_revision", params));
  }

  /** The session's rewrite commits, oldest first, and its head revision. */
  async transcriptRevisions(sessionId: string): Promise<RevisionList> {
    return decodeRevisionList(await this.call("session/transcript_revisions", { session_id: sessionId }));
  }

  /** A page of a retained revision's rows. */
  async transcriptRevision(
    sessionId: string, revision: string, options?: { offset?: number; limit?: number },
  ): Promise<RevisionPage> {
    const params = { session_id: sessionId, revision, offset: 0, ...optionsToWire(options, ["offset", "limit"], "revision option") };
    return decodeRevisionPage(await this.call("session/transcript_revision", params));
  }

  /**
   * Set the next version of a keyed system prompt (default key `main`); the model sees it from its next call.
   * `targetMessageIndex: 0` replaces the session's original system prompt instead of adding one.
   */
  async updateSystemPrompt(
    sessionId: string, content: string,
    options: { key?: string; expectedVersion?: number; targetMessageIndex?: number } = {},
  ): Promise<SystemPromptUpdate> {
    const params: Record<string, unknown> = { session_id: sessionId, key: options.key ?? "main", content };
    if (options.expectedVersion !== undefined) params.expected_version = options.expectedVersion;
    if (options.targetMessageIndex !== undefined) params.target_message_index = options.targetMessageIndex;
    return decodeSystemPromptUpdate(await this.call("session/update_system_prompt", params));
  }

  /** Activate an instruction revision (`{revision, activation_id, expectation, body}`, wire keys); the receipt. */
  async activateInstruction(sessionId: string, activation: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.call("session/activate_instruction", { session_id: sessionId, activation });
  }

  /** `{records, key_state, next_offset}`: the session's instruction activations in transcript order. */
  async instructionActivations(
    sessionId: string, options: { namespace?: string; key?: string } = {},
  ): Promise<Record<string, unknown>> {
    return this.call("session/instruction_activations", { session_id: sessionId, ...options });
  }

  /** The session as an ATIF trajectory document (wire keys, as evaluation tools read it). */
  async exportAtif(sessionId: string, options: { agentName?: string; agentVersion?: string } = {}): Promise<Record<string, unknown>> {
    const params: Record<string, unknown> = { session_id: sessionId };
    if (options.agentName !== undefined) params.agent_name = options.agentName;
    if (options.agentVersion !== undefined) params.agent_version = options.agentVersion;
    return this.call("session/export_atif", params);
  }

  /** Providers, their models, context windows and accepted `providerParams`. */
  async getModelsCatalog(): Promise<ModelsCatalog> {
    return decodeModelsCatalog(await this.call("models/catalog", {}));
  }
}
