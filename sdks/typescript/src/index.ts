/**
 * rkat-client: drive rkat sessions from Node through an `rkat-rpc` child.
 *
 * ```ts
 * import { MeerkatClient } from "rkat-client";
 *
 * const client = new MeerkatClient();
 * await client.connect();
 * const session = await client.createSession("What is the capital of France?");
 * for await (const event of session.stream("Now explain it in more detail")) {
 *   if (event.type === "text_delta") process.stdout.write(event.delta);
 * }
 * await client.close();
 * ```
 *
 * See README.md for the whole API.
 */

export {
  CONTRACT_VERSION,
  MeerkatClient,
  connectArgv,
  type ClientOptions,
  type ConfigWriteOptions,
  type ConnectOptions,
  type CreateSessionOptions,
  type ListSessionsOptions,
  type TurnOptions,
} from "./client.js";
export { DEFAULT_BINARY, findRkatRpc } from "./binary.js";
export {
  EventSubscription,
  type EventEnvelope,
  type EventsPage,
  type ExternalEventResult,
  type InjectResult,
  type InputState,
  type RealmInfo,
  type StopReceipt,
} from "./live.js";
export {
  BinaryNotFoundError,
  ClientClosedError,
  ClientError,
  ConnectionClosedError,
  ConnectTimeoutError,
  ERROR_CODES,
  MeerkatError,
  ProtocolError,
  StreamNotConsumedError,
  VersionMismatchError,
  type ErrorCode,
  type ErrorDetails,
} from "./errors.js";
export {
  KNOWN_EVENT_TYPES,
  type BudgetWarningEvent,
  type ErrorReport,
  type MalformedEvent,
  type MeerkatEvent,
  type ReasoningCompleteEvent,
  type ReasoningDeltaEvent,
  type RetryingEvent,
  type RunCompletedEvent,
  type RunFailedEvent,
  type RunIdentity,
  type RunStartedEvent,
  type StreamTruncatedEvent,
  type TextCompleteEvent,
  type TextDeltaEvent,
  type ToolCallRequestedEvent,
  type ToolExecutionCompletedEvent,
  type ToolExecutionStartedEvent,
  type ToolResultReceivedEvent,
  type TurnCompletedEvent,
  type TurnStartedEvent,
  type TurnUsageAccountingUnmeasuredEvent,
  type UnknownEvent,
} from "./events.js";
export type {
  ForkResult,
  RevisionEntry,
  RevisionList,
  RevisionPage,
  RewriteResult,
  SystemPromptUpdate,
} from "./history.js";
export { Session } from "./session.js";
export { EventStream } from "./stream.js";
export type { ToolCall, ToolCallDedupeKey, ToolHandler, ToolOptions } from "./tools.js";
export type {
  AssistantBlock,
  BlockAssistantMessage,
  CatalogModel,
  CatalogProvider,
  Capability,
  ConfigDocument,
  ConfigEnvelope,
  ContentBlock,
  ContractVersion,
  HistoryMessage,
  HistoryPage,
  ModelsCatalog,
  Prompt,
  ResolvedPaths,
  RunResult,
  SessionDetails,
  SessionInfo,
  StopReason,
  SystemMessage,
  ToolResult,
  ToolResultsMessage,
  Usage,
  UsageAccounting,
  UserMessage,
} from "./types.js";
