/** A session handle: continue it, stream it, read it, interrupt or archive it. */

import type { MeerkatClient, TurnOptions } from "./client.js";
import type { RevisionList, RewriteResult, SystemPromptUpdate } from "./history.js";
import type { EventSubscription, InjectResult, StopReceipt } from "./live.js";
import type { EventStream } from "./stream.js";
import type { HistoryPage, Prompt, RunResult, SessionDetails, Usage } from "./types.js";

const NO_USAGE: Usage = { inputTokens: 0, outputTokens: 0, totalTokens: 0 };

/** One session of the connected realm; `text`, `usage`, `turns`, `toolCalls` are its last run's. */
export class Session {
  /** The last run's result (undefined before any run this handle saw). */
  lastResult: RunResult | undefined;

  /** @internal Made by the client: `createSession`, `stream.session`, `client.session(id)`. */
  constructor(
    private readonly client: MeerkatClient,
    readonly id: string,
    lastResult?: RunResult,
  ) {
    this.lastResult = lastResult;
  }

  /** `<realm_id>:<session_id>`, the handle other surfaces accept. */
  get ref(): string | undefined {
    return this.lastResult?.sessionRef;
  }

  /** The last run's final text (`""` before any run). */
  get text(): string {
    return this.lastResult?.text ?? "";
  }

  /** The session's cumulative token usage after the last run. */
  get usage(): Usage {
    return this.lastResult?.usage ?? NO_USAGE;
  }

  /** Model calls the last run made. */
  get turns(): number {
    return this.lastResult?.turns ?? 0;
  }

  /** Tool calls the last run made. */
  get toolCalls(): number {
    return this.lastResult?.toolCalls ?? 0;
  }

  /** Run one turn and return its result (also kept as {@link Session.lastResult}). */
  async turn(prompt: Prompt, options?: TurnOptions): Promise<RunResult> {
    const result = await this.client.startTurn(this.id, prompt, options);
    this.lastResult = result;
    return result;
  }

  /** Run one turn, yielding its events live; `stream.result` once it has ended. */
  stream(prompt: Prompt, options?: TurnOptions): EventStream {
    return this.client.startTurnStreaming(this.id, prompt, options, (result) => {
      this.lastResult = result;
    });
  }

  /** A page of the transcript, oldest first. */
  history(options?: { offset?: number; limit?: number }): Promise<HistoryPage> {
    return this.client.readSessionHistory(this.id, options);
  }

  /** The session's state now. */
  read(): Promise<SessionDetails> {
    return this.client.readSession(this.id);
  }

  /** Cancel the running turn (a no-op when idle); resolves once the turn has ended. */
  async interrupt(): Promise<void> {
    await this.client.interrupt(this.id);
  }

  /** Follow this session's events without starting a turn. */
  subscribeEvents(): Promise<EventSubscription> {
    return this.client.subscribeEvents(this.id);
  }

  /** Stop `runId` only if it is still this session's current run. */
  stopRun(runId: string, reason = ""): Promise<StopReceipt> {
    return this.client.stopRun(this.id, runId, reason);
  }

  /** Add a durable system message the model sees from its next call on. */
  injectContext(text: string, options?: { source?: string; idempotencyKey?: string }): Promise<InjectResult> {
    return this.client.injectContext(this.id, text, options);
  }

  /** A new session with this one's first `at` rows (all when omitted); this session is unchanged. */
  async fork(at?: number): Promise<Session> {
    const result = await this.client.forkSession(this.id, at === undefined ? {} : { at });
    return new Session(this.client, result.sessionId);
  }

  /** This transcript's rewrite commits and its head revision. */
  revisions(): Promise<RevisionList> {
    return this.client.transcriptRevisions(this.id);
  }

  /** Make an older revision's rows the transcript again (as a new revision). */
  restore(revision: string): Promise<RewriteResult> {
    return this.client.restoreTranscriptRevision(this.id, revision);
  }

  /** Set the system prompt from the next model call (see `MeerkatClient.updateSystemPrompt`). */
  updateSystemPrompt(content: string, options?: { key?: string; expectedVersion?: number; targetMessageIndex?: number }):
    Promise<SystemPromptUpdate> {
    return this.client.updateSystemPrompt(this.id, content, options);
  }

  /** Hide the session: reads and turns then fail with SESSION_NOT_FOUND. */
  async archive(): Promise<void> {
    await this.client.archiveSession(this.id);
  }
}
