"""``docs/config.md``, generated from the schema so it cannot drift from it.

Keys, types and defaults come from :class:`~meerkat.config.Config` itself; only
the sentence saying what each key does lives here, in :data:`EFFECTS`. A key
added to the schema without an entry here fails ``tests/test_config_reference.py``,
as does a ``docs/config.md`` that is not what :func:`render` produces.

Regenerate with ``python -m meerkat.config.reference > docs/config.md``.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from meerkat.config.schema import Config

__all__ = ["EFFECTS", "rows", "render"]

#: What each key does (the schema gives its type and default).
EFFECTS: dict[str, str] = {
    "agent.model": "Model used when a session names none. Empty: a keyed provider's default model, else the "
                   "offline `mock`. Must be a catalogued model (`rkat models`), a self-hosted alias, or a "
                   "`[models.\"ID\"]` table with a `provider`; checked when written.",
    "agent.max_tokens_per_turn": "Most output tokens one model call may produce (`--max-tokens` overrides it "
                                 "per session). An answer cut off here ends with stop reason `max_tokens`.",
    "agent.system_prompt": "System prompt of new sessions that give none.",
    "agent.temperature": "Sampling temperature sent to models that accept one (>= 0).",
    "agent.max_turns": "Most model calls in one run (each tool round trip is one); past it the run fails "
                       "with AGENT_ERROR.",
    "agent.budget_warning_threshold": "Fraction of a token budget, in (0, 1], at which a budget warning is "
                                      "emitted.",
    "agent.provider_params": "Default provider parameters (`reasoning_effort`, ...), sent only to models that "
                             "accept them; a session's or turn's own override them.",
    "budget.max_tokens": "Token budget of a session: once used up, new turns fail with BUDGET_EXHAUSTED.",
    "budget.max_duration": "Accepted for compatibility (a duration such as \"30m\", checked when written); "
                           "not enforced yet.",
    "budget.max_tool_calls": "Accepted for compatibility (>= 0); not enforced yet.",
    "limits.budget": "Token budget of a session when `budget.max_tokens` is unset.",
    "limits.max_duration": "Accepted for compatibility (a duration, checked when written); not enforced yet.",
    "limits.max_turn_duration": "Longest one whole turn may take: every model call, retry and tool call "
                                "of one run (\"90s\", \"5m\", \"1h30m\"; at most \"365d\", as every duration key); past it "
                                "the run fails naming this key.",
    "limits.max_sessions": "Accepted for compatibility (> 0); not enforced yet.",
    "limits.event_retention": "Events the durable log keeps per session (unset: 10,000); older ones are "
                              "pruned.",
    "limits.inbox_capacity": "External events that may wait for one session at once (unset: 64).",
    "retry.max_retries": "Retries of a failed model call (rate limits, 5xx, timeouts, refused connections) "
                         "before the run fails. Shown as `retry N/M` by the CLI.",
    "retry.initial_delay_ms": "Wait before the first retry; later waits grow by `multiplier`.",
    "retry.max_delay_ms": "Longest wait between retries (a server's `retry-after` may ask for more).",
    "retry.multiplier": "Growth of the wait from one retry to the next (> 0).",
    "retry.rate_limit_floor_ms": "Least wait after a rate limit (HTTP 429), whatever the server says.",
    "retry.connect_timeout_ms": "Time allowed to open a connection to a provider.",
    "retry.first_byte_timeout_ms": "Time allowed, once connected, for the provider's response headers. A server "
                                   "that accepts and never answers fails here, naming the URL and this key.",
    "retry.stream_inactivity_timeout_ms": "Longest silence allowed in a streaming reply (long reasoning pauses "
                                          "are legitimate: keep it generous).",
    "tools.builtins_enabled": "Accepted for compatibility; the built-in tools are always offered.",
    "tools.default_timeout_secs": "Longest a tool call may run before it fails as a tool error.",
    "tools.max_concurrent": "Tool calls of one model reply run at most this many at a time.",
    "rest.host": "Address `rkat-rest` binds when `--host` is not given (a non-loopback one needs a token).",
    "rest.port": "Port `rkat-rest` binds when `--port` is not given (0: a free one).",
    "models": "Per-provider default models (`anthropic = \"claude-...\"`), and `[models.\"ID\"]` tables with "
              "`provider = \"...\"` declaring models the catalog lacks.",
    "self_hosted": "OpenAI-compatible servers (`[self_hosted.servers.NAME] base_url, api_style`) and the model "
                   "aliases they serve (`[self_hosted.models.ALIAS] server, remote_model`); see providers.md.",
    "providers": "Per-provider endpoints: `[providers.anthropic] base_url = \"...\"` (anthropic, openai, gemini). "
                 "Only `base_url`: API keys live in environment variables, never in config.",
    "provider_tools": "Accepted for compatibility; not used yet.",
    "mock.token_delay_ms": "Pause between the offline mock model's tokens.",
    "mock.first_token_latency_ms": "Pause before the offline mock model's first token.",
    "storage.postgres.pool_size": "Most connections one host keeps to a postgres realm's database for its "
                                  "sessions and config (1-100; live events use a few more). Read when the host "
                                  "opens the realm, so a change applies from each host's next start; all hosts "
                                  "together must stay under the server's `max_connections` (see "
                                  "[deployment.md](deployment.md)). Ignored by file realms.",
}


def _type_name(kind: Any) -> str:
    if isinstance(kind, msgspec.inspect.UnionType):
        return " or ".join(_type_name(member) for member in kind.types)
    names: dict[type, str] = {msgspec.inspect.StrType: "string", msgspec.inspect.IntType: "integer",
                              msgspec.inspect.FloatType: "number", msgspec.inspect.BoolType: "boolean",
                              msgspec.inspect.NoneType: "unset", msgspec.inspect.DictType: "table"}
    name = names.get(type(kind), type(kind).__name__)
    most = getattr(kind, "le", None)
    if most is not None:  # the schema's upper bound (``schema._most``)
        name += f" (at most {most:,})" if isinstance(most, int) else f" (at most {most:,g})"
    return name


def _default(field: msgspec.inspect.Field) -> str:
    if field.default is not msgspec.NODEFAULT:
        value = field.default
    elif field.default_factory is not msgspec.NODEFAULT:
        value = field.default_factory()
    else:
        return "(required)"
    if value is None:
        return "unset"
    if value == {}:
        return "empty"
    return f"`{json.dumps(value)}`"


def rows(struct_type: type = Config, prefix: str = "") -> list[tuple[str, str, str]]:
    """``(key path, type, default)`` for every key of the schema, in schema order."""
    info = msgspec.inspect.type_info(struct_type)
    assert isinstance(info, msgspec.inspect.StructType)
    found: list[tuple[str, str, str]] = []
    for field in info.fields:
        if isinstance(field.type, msgspec.inspect.StructType):
            found.extend(rows(field.type.cls, f"{prefix}{field.name}."))
        else:
            found.append((f"{prefix}{field.name}", _type_name(field.type), _default(field)))
    return found


_HEADER = """\
# Config reference

<!-- Generated from the schema by `python -m meerkat.config.reference > docs/config.md`;
     tests/test_config_reference.py fails when this file is not current. Do not edit by hand. -->

A realm's config is one TOML document (`config.toml` in the realm directory) with a
generation. Read and write it with `rkat config get|set|patch` ([cli.md](cli.md)),
`GET|PUT|PATCH /config` ([rest.md](rest.md)), `config/get|set|patch` ([rpc.md](rpc.md))
or the `meerkat_config` MCP tool. Keys left out take the defaults below. Every write
checks every key: a misspelt one is INVALID_PARAMS naming its full path with a
did-you-mean, and nothing is written.

```toml
[agent]
model = "claude-sonnet-4-6"
max_tokens_per_turn = 8192

[retry]
first_byte_timeout_ms = 30000
```
"""


def render() -> str:
    """The whole ``docs/config.md``."""
    lines = [_HEADER]
    section = None
    for key, kind, default in rows():
        head = key.split(".")[0] if "." in key else "top-level tables"
        if head != section:
            section = head
            title = f"`[{head}]`" if head != "top-level tables" else "Free-form tables"
            lines += [f"## {title}", "", "| key | type | default | effect |", "|---|---|---|---|"]
        effect = EFFECTS.get(key, "")
        lines.append(f"| `{key}` | {kind} | {default} | {effect} |")
    out: list[str] = []
    for line in lines:
        if line.startswith("## ") and out and out[-1] != "":
            out.append("")
        out.append(line)
    return "\n".join(out).rstrip("\n") + "\n"


if __name__ == "__main__":
    print(render(), end="")
