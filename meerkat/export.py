"""A session's transcript exported for other tools: ATIF trajectories, Markdown, JSON.

ATIF (the Agent Trajectory Interchange Format, schema ``ATIF-v1.4``) is what
evaluation and training tools read: one ``step`` per transcript row, numbered
from 1, with ``source`` ``system`` / ``user`` / ``agent``. An agent step carries
its text, its reasoning, its ``tool_calls`` and, as its ``observation``, the
results of those calls (taken from the ``tool_results`` row that answers them).
Usage is known per session, not per row, so it is reported once, in
``final_metrics``.
"""

from __future__ import annotations

import json
from typing import Any

from . import __version__
from .store import SessionRecord
from .transcript import BlockAssistantMessage, Message, SystemMessage, ToolResultsMessage, UserMessage

__all__ = ["ATIF_SCHEMA_VERSION", "atif_trajectory", "markdown_transcript", "json_transcript", "EXPORT_FORMATS"]

ATIF_SCHEMA_VERSION = "ATIF-v1.4"
#: The formats ``rkat session export`` and ``GET /sessions/{id}/export`` offer.
EXPORT_FORMATS = ("atif", "json", "markdown")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif isinstance(block, dict):
            parts.append(f"[{block.get('type', 'block')}]")
    return "\n".join(parts)


def atif_trajectory(record: SessionRecord, rows: list[Message], *, agent_name: str | None = None,
                    agent_version: str | None = None, model_name: str | None = None) -> dict[str, Any]:
    """The session as an ATIF trajectory document."""
    model = model_name or record.model
    steps: list[dict[str, Any]] = []
    open_calls: dict[str, dict[str, Any]] = {}  # tool_use id -> the agent step that made the call
    for row in rows:
        if isinstance(row, ToolResultsMessage):
            for result in row.results:
                caller = open_calls.pop(result.tool_use_id, None)
                entry = {"source_call_id": result.tool_use_id, "content": _text(result.content)}
                if caller is None:  # a result without its call (a rewritten transcript): keep it as a system step
                    steps.append({"step_id": len(steps) + 1, "timestamp": row.created_at, "source": "system",
                                  "message": f"tool result {result.tool_use_id}: {entry['content']}"})
                    continue
                caller.setdefault("observation", {"results": []})["results"].append(entry)
            continue
        step: dict[str, Any] = {"step_id": len(steps) + 1, "timestamp": row.created_at}
        if isinstance(row, SystemMessage):
            step.update(source="system", message=row.content)
        elif isinstance(row, UserMessage):
            step.update(source="user", message=_text(row.content))
        elif isinstance(row, BlockAssistantMessage):
            text = "".join(b.data.get("text", "") for b in row.blocks if b.block_type == "text")
            reasoning = "".join(b.data.get("text", "") for b in row.blocks if b.block_type == "reasoning")
            step.update(source="agent", message=text, model_name=model)
            if reasoning:
                step["reasoning_content"] = reasoning
            calls = [{"tool_call_id": str(b.data.get("id")), "function_name": str(b.data.get("name")),
                      "arguments": b.data.get("args", {})} for b in row.blocks if b.block_type == "tool_use"]
            if calls:
                step["tool_calls"] = calls
                for call in calls:
                    open_calls[call["tool_call_id"]] = step
            extra = {k: v for k, v in (("stop_reason", row.stop_reason), ("run_id", row.run_id)) if v}
            if extra:
                step["extra"] = extra
        steps.append(step)
    usage = record.usage
    return {
        "schema_version": ATIF_SCHEMA_VERSION,
        "session_id": record.session_id,
        "agent": {"name": agent_name or "rkat", "version": agent_version or __version__, "model_name": model,
                  "extra": {"provider": record.provider}},
        "steps": steps,
        "final_metrics": {
            "total_prompt_tokens": usage.input_tokens,
            "total_completion_tokens": usage.output_tokens,
            "total_cached_tokens": usage.cache_read_tokens or 0,
            "total_steps": len(steps),
        },
        "extra": {"transcript_revision": record.transcript_revision,
                  **({"forked_from": record.forked_from, "fork_point": record.fork_point}
                     if record.forked_from else {})},
    }


def markdown_transcript(record: SessionRecord, rows: list[Message]) -> str:
    """The transcript as Markdown, one section per row (for people)."""
    lines = [f"# Session {record.session_id}", "", f"- model: {record.provider}/{record.model}",
             f"- messages: {len(rows)}", f"- revision: {record.transcript_revision}", ""]
    for index, row in enumerate(rows):
        if isinstance(row, SystemMessage):
            lines += [f"## {index}. System", "", row.content, ""]
        elif isinstance(row, UserMessage):
            lines += [f"## {index}. User", "", _text(row.content), ""]
        elif isinstance(row, BlockAssistantMessage):
            lines += [f"## {index}. Assistant", ""]
            for block in row.blocks:
                if block.block_type == "text":
                    lines.append(str(block.data.get("text", "")))
                elif block.block_type == "reasoning":
                    lines.append("> " + str(block.data.get("text", "")).replace("\n", "\n> "))
                elif block.block_type == "tool_use":
                    lines += [f"Tool call `{block.data.get('name')}` ({block.data.get('id')}):", "",
                              "```json", json.dumps(block.data.get("args", {}), ensure_ascii=False), "```"]
            lines.append("")
        elif isinstance(row, ToolResultsMessage):
            lines += [f"## {index}. Tool results", ""]
            for result in row.results:
                flag = " (error)" if result.is_error else ""
                lines += [f"- `{result.tool_use_id}`{flag}: {_text(result.content)}"]
            lines.append("")
    return "\n".join(lines)


def json_transcript(record: SessionRecord, rows: list[Message]) -> dict[str, Any]:
    """The session and its rows as plain JSON (the ``session/history`` row shape)."""
    import msgspec

    return {"session_id": record.session_id, "model": record.model, "provider": record.provider,
            "transcript_revision": record.transcript_revision, "message_count": len(rows),
            "messages": msgspec.to_builtins(rows)}
