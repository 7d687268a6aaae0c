"""Unit tests of the domain types: ids, the error table, event and transcript wire shapes."""

from __future__ import annotations

import json

import msgspec
import pytest

from meerkat.errors import ERROR_TABLE, ErrorCode, SessionBusy, error_from_code
from meerkat.events import (
    ContentInput,
    ErrorReport,
    RunCompleted,
    RunFailed,
    RunIdentity,
    RunStarted,
    TextDelta,
    ToolExecutionCompleted,
    TurnCompleted,
    decode_envelope,
    encode_envelope,
    lag_marker,
    make_envelope,
)
from meerkat.ids import canonical_uuid, is_uuid, new_uuid7
from meerkat.transcript import (
    BlockAssistantMessage,
    ToolResult,
    ToolResultsMessage,
    UserMessage,
    decode_messages,
    encode_messages,
    text_block,
    tool_use_block,
)
from meerkat.usage import TurnUsage, Usage, UsageAccounting

SID = "01936f8a-7b2c-7000-8000-000000000001"


def test_uuid7_is_canonical_versioned_and_increasing():
    ids = [new_uuid7() for _ in range(2000)]
    assert all(is_uuid(i) for i in ids)
    assert all(i[14] == "7" and i[19] in "89ab" for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert canonical_uuid(SID.upper()) == SID
    assert canonical_uuid("../x") is None and not is_uuid(SID.upper())


@pytest.mark.parametrize("code, rpc, http, exit_code", [
    ("SESSION_NOT_FOUND", -32001, 404, 10),
    ("SESSION_BUSY", -32002, 409, 11),
    ("REQUEST_CANCELLED", -32005, 499, 14),
    ("PROVIDER_ERROR", -32010, 502, 20),
    ("BUDGET_EXHAUSTED", -32011, 429, 21),
    ("INVALID_PARAMS", -32602, 400, 2),
    ("CONFIG_GENERATION_CONFLICT", -32602, 409, 15),
    ("INTERNAL_ERROR", -32603, 500, 1),
])
def test_error_table_rows(code, rpc, http, exit_code):
    spec = ERROR_TABLE[ErrorCode(code)]
    assert (spec.jsonrpc_code, spec.http_status, spec.exit_code) == (rpc, http, exit_code)


def test_every_code_has_a_row_and_errors_serialise():
    assert set(ERROR_TABLE) == set(ErrorCode)
    busy = SessionBusy(SID, "run-1")
    assert busy.to_dict() == {"error": busy.message, "code": "SESSION_BUSY",
                              "details": {"session_id": SID, "running_run_id": "run-1"}}
    rebuilt = error_from_code("PROVIDER_ERROR", "no key")
    assert rebuilt.code is ErrorCode.PROVIDER_ERROR and rebuilt.spec.jsonrpc_code == -32010


def _wire(payload) -> dict:
    return json.loads(encode_envelope(make_envelope(SID, 3, payload)))


def test_envelope_shape_and_round_trip():
    envelope = make_envelope(SID, 7, TextDelta(delta="The capital"))
    body = json.loads(encode_envelope(envelope))
    assert set(body) == {"event_id", "source", "seq", "timestamp_ms", "payload"}
    assert body["source"] == {"type": "session", "session_id": SID}
    assert is_uuid(body["event_id"]) and body["seq"] == 7
    assert body["payload"] == {"type": "text_delta", "delta": "The capital"}  # unset optionals omitted
    assert decode_envelope(encode_envelope(envelope)) == envelope
    with pytest.raises(msgspec.ValidationError):
        decode_envelope(json.dumps({**body, "payload": {"type": "done"}}))


def test_payload_field_names_match_upstream():
    started = _wire(RunStarted(session_id=SID, input=ContentInput("hi"), identity=RunIdentity(run_id="r")))
    assert started["payload"] == {"type": "run_started", "session_id": SID,
                                  "input": {"kind": "content", "content": "hi"}, "identity": {"run_id": "r"}}
    failed = _wire(RunFailed(session_id=SID, error_report=ErrorReport(error_class="cancelled", message="m")))
    assert failed["payload"]["error_report"] == {"class": "cancelled", "message": "m"}
    completed = _wire(ToolExecutionCompleted(id="t", name="datetime", is_error=False, duration_ms=3))
    assert set(completed["payload"]) == {"type", "id", "name", "is_error", "duration_ms"}  # 0.9.6: no content
    usage = TurnUsage(input_tokens=1, output_tokens=2, accounting=UsageAccounting(
        provider="other", model="mock", presented_tokens=1, convention="host_declared_inclusive_input_total",
        aggregation="provider_inclusive_input_total"))
    turn = _wire(TurnCompleted(stop_reason="end_turn", usage=usage))
    assert turn["payload"]["usage"]["accounting"]["presented_tokens"] == 1
    assert "cache_read_tokens" not in turn["payload"]["usage"]
    done = _wire(RunCompleted(session_id=SID, result="x", usage=Usage(input_tokens=1, output_tokens=2),
                              extraction_required=False))
    assert done["payload"]["extraction_required"] is False
    assert done["payload"]["usage"]["input_tokens"] == 1


def test_lag_marker_is_seq_zero():
    marker = json.loads(encode_envelope(lag_marker(SID, 5)))
    assert marker["seq"] == 0
    assert marker["payload"] == {"type": "stream_truncated", "reason": {"kind": "stream_lagged", "dropped": 5}}


def test_transcript_rows_round_trip_with_upstream_roles():
    rows = [
        UserMessage(content="hello", created_at="2025-01-01T00:00:00+00:00"),
        BlockAssistantMessage(blocks=[text_block("Hi"), tool_use_block("t1", "datetime", {})],
                              stop_reason="tool_use", created_at="2025-01-01T00:00:01+00:00"),
        ToolResultsMessage(results=[ToolResult(tool_use_id="t1", content="now")], created_at="x"),
    ]
    encoded = json.loads(encode_messages(rows))
    assert [r["role"] for r in encoded] == ["user", "block_assistant", "tool_results"]
    assert encoded[1]["blocks"][1] == {"block_type": "tool_use", "data": {"id": "t1", "name": "datetime", "args": {}}}
    assert encoded[2]["results"][0] == {"tool_use_id": "t1", "content": "now", "is_error": False}
    assert decode_messages(encode_messages(rows)) == rows


def test_usage_accumulates_presented_tokens():
    call = TurnUsage(input_tokens=10, output_tokens=5, cache_read_tokens=90, accounting=UsageAccounting(
        provider="anthropic", model="m", presented_tokens=100, convention="anthropic_disjoint_input_components",
        aggregation="sum_disjoint_provider_components"))
    total = Usage().add(call).add(call)
    assert (total.input_tokens, total.output_tokens, total.cache_read_tokens) == (200, 10, 180)
    assert total.to_wire()["total_tokens"] == 210
    assert total.minus(Usage().add(call)).input_tokens == 100


def test_docs_error_table_matches_the_code():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "errors.md").read_text()
    rows = {line.split("|")[1].strip().strip("`"): [c.strip() for c in line.split("|")[2:5]]
            for line in text.splitlines() if line.startswith("| `")}
    assert rows == {code.value: [str(spec.jsonrpc_code), str(spec.http_status), str(spec.exit_code)]
                    for code, spec in ERROR_TABLE.items()}


def test_session_refs_name_a_session_of_this_realm_only():
    from meerkat.errors import InvalidParams
    from meerkat.views import session_id_from_ref, session_ref

    sid = "01936f8a-7b2c-7000-8000-000000000001"
    assert session_id_from_ref(sid.upper(), "team") == sid
    assert session_id_from_ref(session_ref("team", sid), "team") == sid
    with pytest.raises(InvalidParams, match="active realm is 'team'"):
        session_id_from_ref(f"other:{sid}", "team")
    with pytest.raises(InvalidParams, match="expected a session id"):
        session_id_from_ref("team:not-a-uuid", "team")


def test_forked_children_mint_different_event_ids():
    """Processes forked from one parent (a pre-fork server) must not repeat each other's event ids."""
    import os

    from meerkat.ids import new_event_id

    read_end, write_end = os.pipe()
    pids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:  # the child: write a few ids and leave at once
            os.write(write_end, ("|".join(new_event_id() for _ in range(4)) + "\n").encode())
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    os.close(write_end)
    with os.fdopen(read_end) as reader:
        minted = reader.read().split()
    assert len(minted) == 2
    # Compare only the random tails (the last 48 bits): the timestamps differ anyway.
    tails = [[minted_id[-12:] for minted_id in line.split("|") if minted_id] for line in minted]
    assert set(tails[0]).isdisjoint(tails[1])
