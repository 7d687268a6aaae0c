"""Each tool's arguments as a typed record, and the JSON Schema the client is shown.

One definition serves both sides: :func:`input_schema` turns a record type into
the ``inputSchema`` advertised by ``tools/list``, and :func:`parse_arguments`
checks a call against the very same type. So the schema an LLM reads is exactly
what the server enforces: a call that does not fit it is a protocol error
(INVALID_PARAMS) naming the field, before anything runs.

``null`` is accepted wherever a field is optional and means "not given" (models
often send explicit nulls); the advertised schema leaves that out to stay short.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Annotated, Any, Iterator, Literal

import msgspec

from meerkat.errors import InvalidParams
from meerkat.providers.registry import KNOWN_PROVIDERS
from meerkat.store.base import MAX_LIST_LIMIT
from meerkat.validation import MAX_OFFSET, MAX_OUTPUT_TOKENS, MAX_STORED_INT

__all__ = [
    "MalformedCall", "checking_arguments",
    "RunArguments", "ResumeArguments", "SessionsArguments", "SessionArguments", "ConfigArguments",
    "StreamOpenArguments", "StreamReadArguments", "StreamCloseArguments", "NoArguments",
    "input_schema", "parse_arguments", "given",
]

_D = msgspec.Meta  # short alias: every field below carries a description for the model

#: Longest single wait of ``meerkat_event_stream_read`` (ms); longer waits are a loop of reads.
MAX_READ_TIMEOUT_MS = 300_000
#: Most events one ``meerkat_event_stream_read`` returns.
MAX_READ_EVENTS = 1000


class MalformedCall(Exception):
    """A call that does not fit its tool's input schema: answered with a JSON-RPC error, not a tool result."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@contextmanager
def checking_arguments() -> Iterator[None]:
    """Turn InvalidParams raised while mapping arguments (before anything runs) into :class:`MalformedCall`."""
    try:
        yield
    except InvalidParams as exc:
        raise MalformedCall(exc.message) from None


Prompt = Annotated[Annotated[str, _D(min_length=1)] | Annotated[list[dict[str, Any]], _D(min_length=1)], _D(
    description="What to ask. A string, or a list of content blocks such as "
                "[{\"type\": \"text\", \"text\": \"...\"}].")]
SessionId = Annotated[str, _D(description="The session's id (a UUID) as returned by meerkat_run or meerkat_sessions.")]
Model = Annotated[str, _D(
    description="Model id, e.g. \"claude-sonnet-4-6\" or \"gpt-5.5\"; see meerkat_models_catalog. "
                "Default: the realm config's agent.model; without one, the default model of the first provider "
                "with an API key (anthropic, openai, gemini), else the offline \"mock\" model.")]
Provider = Annotated[Literal[KNOWN_PROVIDERS], _D(  # type: ignore[valid-type]
    description="Provider serving the model; inferred from the model name when left out.")]
ProviderParams = Annotated[dict[str, Any], _D(
    description="Settings passed to the provider, e.g. {\"reasoning_effort\": \"high\"}; "
                "the keys a model accepts are its profile.params_schema in meerkat_models_catalog. The offline "
                "mock model takes reply, reply_words, token_delay_ms, first_token_latency_ms and fail.")]
SystemPrompt = Annotated[str, _D(description="System prompt for the model.")]
MaxTokens = Annotated[int, _D(ge=1, le=MAX_OUTPUT_TOKENS, description="Most output tokens per model call.")]
Labels = Annotated[dict[str, str], _D(description="String labels to tag the session with, e.g. {\"team\": \"alpha\"}.")]
Stream = Annotated[bool, _D(
    description="Send the turn's events while it runs: as notifications/progress when the call carries a "
                "progressToken, otherwise as notifications/message log entries. The result is the same either way.")]
StreamId = Annotated[str, _D(description="The stream_id returned by meerkat_event_stream_open.")]


class _Arguments(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every tool's arguments: unknown argument names are refused."""


class RunArguments(_Arguments):
    """Arguments of ``meerkat_run``."""

    prompt: Prompt
    model: Model | None = None
    provider: Provider | None = None
    provider_params: ProviderParams | None = None
    system_prompt: SystemPrompt | None = None
    max_tokens: MaxTokens | None = None
    labels: Labels | None = None
    budget_max_tokens: Annotated[int, _D(
        ge=1, le=MAX_STORED_INT,
        description="Token budget for the whole session; turns fail with BUDGET_EXHAUSTED beyond it.",
    )] | None = None
    stream: Stream = False


class ResumeArguments(_Arguments):
    """Arguments of ``meerkat_resume``."""

    session_id: SessionId
    prompt: Prompt
    model: Annotated[str, _D(description="Switch the session to this model (kept for later turns).")] | None = None
    provider: Provider | None = None
    provider_params: Annotated[dict[str, Any], _D(
        description="Provider settings for this turn (default: the session's).")] | None = None
    system_prompt: Annotated[str, _D(description="System prompt for this turn (default: the session's).")] | None = None
    max_tokens: MaxTokens | None = None
    stream: Stream = False


class SessionsArguments(_Arguments):
    """Arguments of ``meerkat_sessions``."""

    limit: Annotated[int, _D(ge=0, le=MAX_LIST_LIMIT,
                             description="Most sessions to return (default 100).")] | None = None
    offset: Annotated[int, _D(ge=0, le=MAX_OFFSET,
                              description="Sessions to skip, for paging (default 0).")] | None = None
    labels: Annotated[dict[str, str], _D(
        description="Only sessions carrying every one of these labels.")] | None = None


class SessionArguments(_Arguments):
    """Arguments of the tools that act on one session (read, archive, interrupt)."""

    session_id: SessionId


class ConfigArguments(_Arguments):
    """Arguments of ``meerkat_config``."""

    action: Annotated[Literal["get", "set", "patch"], _D(
        description="get: read the config; set: replace it with `config`; patch: apply the RFC 7396 merge "
                    "patch `patch` (null removes a key).")]
    config: Annotated[dict[str, Any], _D(
        description="The new config, for action=set; sections left out take their defaults.")] | None = None
    patch: Annotated[dict[str, Any], _D(
        description="The merge patch, for action=patch, e.g. {\"agent\": {\"max_tokens_per_turn\": 8192}}.",
    )] | None = None
    expected_generation: Annotated[int, _D(
        ge=0, le=MAX_STORED_INT, description="Write only if the config is still at this generation (from a previous get); "
                          "otherwise the call fails with CONFIG_GENERATION_CONFLICT and nothing is written.",
    )] | None = None


class StreamOpenArguments(_Arguments):
    """Arguments of ``meerkat_event_stream_open``."""

    session_id: SessionId
    after_seq: Annotated[int, _D(
        ge=0, le=MAX_STORED_INT, description="Replay the session's events after this seq first, from the durable log (default: live events only).",
    )] | None = None


class StreamReadArguments(_Arguments):
    """Arguments of ``meerkat_event_stream_read``."""

    stream_id: StreamId
    timeout_ms: Annotated[int, _D(
        ge=0, le=MAX_READ_TIMEOUT_MS,
        description="How long to wait for the next event before returning status \"timeout\" (default 5000).")] = 5000
    max_events: Annotated[int, _D(
        ge=1, le=MAX_READ_EVENTS,
        description="Most events to return at once; events already waiting are returned together (default 100).")] = 100


class StreamCloseArguments(_Arguments):
    """Arguments of ``meerkat_event_stream_close``."""

    stream_id: StreamId


class NoArguments(_Arguments):
    """For tools that take no arguments."""


def input_schema(arguments_type: type[_Arguments]) -> dict[str, Any]:
    """The compact JSON Schema (``type: object``) advertised for ``arguments_type``."""
    full = msgspec.json.schema(arguments_type)
    name = full["$ref"].rsplit("/", 1)[-1]
    schema = _simplify(full["$defs"][name])
    schema.pop("title", None)
    schema.pop("description", None)  # the tool's own description says it better
    schema.setdefault("properties", {})
    if not schema.get("required"):
        schema.pop("required", None)
    return schema


def _simplify(node: Any) -> Any:
    """Drop the ``null`` branch of optional fields, null defaults and titles."""
    if isinstance(node, list):
        return [_simplify(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _simplify(value) for key, value in node.items() if key != "title"}
    branches = node.get("anyOf")
    if branches is not None:
        kept = [b for b in branches if b != {"type": "null"}]
        if len(kept) == 1:
            node.pop("anyOf")
            node = {**kept[0], **node}
        else:
            node["anyOf"] = kept
    if "default" in node and node["default"] is None:
        node.pop("default")
    return node


def parse_arguments(arguments_type: type[_Arguments], arguments: dict[str, Any] | None) -> Any:
    """``arguments`` checked against ``arguments_type``; :class:`MalformedCall` names the bad field."""
    try:
        return msgspec.convert(arguments or {}, arguments_type, strict=True)
    except msgspec.ValidationError as exc:
        raise MalformedCall(f"invalid arguments: {exc}") from None


def given(arguments: msgspec.Struct, *, without: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields the caller set (not ``None``), as a wire dict for :mod:`surfaces.session_params`."""
    return {key: value for key, value in msgspec.structs.asdict(arguments).items()
            if value is not None and key not in without}
