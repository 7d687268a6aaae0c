"""Vendor faults through each real provider client: retried ones, fatal ones, mid-stream ones, cancels.

One service and one fake server per provider; the steps run in sequence on it.
"""

from __future__ import annotations

import pytest
import trio

from meerkat.errors import ProviderError, RequestCancelled
from meerkat.testing import DropConnection, HttpError, Reply, Stall
from provider_cases import CASES, FAST_RETRY, REAL_PROVIDERS, clear_keys, collect, provider_service


def _payloads(events, kind):
    return [e.payload for e in events if e.type == kind]


async def _turn(service, session_id, prompt="go"):
    stream = await service.start_turn_streaming(session_id, prompt)
    events = await collect(stream)
    try:
        return events, await stream.result(), None
    except ProviderError as exc:
        return events, None, exc


@pytest.mark.parametrize("provider", REAL_PROVIDERS)
async def test_faults_give_the_documented_events_and_errors(provider, tmp_path, monkeypatch):
    case = CASES[provider]
    retry = {**FAST_RETRY, "max_retries": 2, "stream_inactivity_timeout_ms": 300}
    async with provider_service(case, tmp_path, monkeypatch, retry=retry) as (service, server):
        server.script(Reply(text="ready"))
        session_id = (await service.create_session("start", model=case.model)).session_id

        # 429 with retry-after, then a 500: both retried (the hint honoured), then the answer.
        server.script(HttpError(429, "slow down", retry_after=0.02), HttpError(500, "boom"), Reply(text="made it"))
        events, result, error = await _turn(service, session_id)
        assert error is None and result.text == "made it"
        retries = _payloads(events, "retrying")
        assert [r.retry.failure.kind for r in retries] == ["rate_limited", "retryable_provider_error"]
        assert [r.retry.plan.attempt for r in retries] == [1, 2]
        assert retries[0].retry.failure.retry_after_ms == 20 and retries[0].retry.plan.selected_delay_ms >= 20
        assert all(r.retry.failure.provider == provider for r in retries)
        assert len(_payloads(events, "turn_started")) == 1  # a retry is not a new turn

        # Retries run out: the run fails with the last error's class and reason.
        server.script(HttpError(503), HttpError(503), HttpError(503))
        before = len(server.requests)
        events, _, error = await _turn(service, session_id)
        assert len(server.requests) - before == 3 and len(_payloads(events, "retrying")) == 2
        report = _payloads(events, "run_failed")[0].error_report
        assert report.error_class == "llm" and report.reason["provider_error_kind"] == "server_overloaded"
        assert isinstance(error, ProviderError)

        # 401: not retried; the run fails as an auth error.
        server.script(HttpError(401, "invalid x-api-key"))
        before = len(server.requests)
        events, _, error = await _turn(service, session_id)
        assert len(server.requests) - before == 1 and not _payloads(events, "retrying")
        failed = _payloads(events, "run_failed")[0]
        assert failed.error_report.reason == {"reason_type": "llm_auth_error"}
        assert failed.terminal_cause_kind == "llm_failure" and "401" in str(error)

        # A read timeout before the first byte is retried like a network error.
        server.script(Stall(2.0), Reply(text="after the stall"))
        events, result, error = await _turn(service, session_id)
        assert error is None and result.text == "after the stall"
        assert [r.retry.failure.kind for r in _payloads(events, "retrying")] == ["network_timeout"]

        # The connection drops mid-stream: no retry, run_failed, and the partial text is kept.
        server.script(DropConnection(Reply(text="one two three four five six seven"), after_events=4))
        before = len(server.requests)
        events, _, error = await _turn(service, session_id, "tell me")
        assert len(server.requests) - before == 1
        shown = "".join(p.delta for p in _payloads(events, "text_delta"))
        assert shown and "seven" not in shown
        report = _payloads(events, "run_failed")[0].error_report
        assert report.reason["provider_error_kind"] == "incomplete_response"
        history = (await service.read_history(session_id)).messages
        assert history[-2].content == "tell me"
        assert history[-1].stop_reason == "cancelled" and history[-1].blocks[0].data["text"] == shown

        # The session is still usable, and the vendor sees the kept partial answer.
        server.script(Reply(text="fine again"))
        _, result, error = await _turn(service, session_id)
        assert error is None and result.text == "fine again"
        assert shown.strip() in str(server.requests[-1].body)


@pytest.mark.parametrize("provider", REAL_PROVIDERS)
async def test_interrupt_closes_the_vendor_stream_at_once(provider, tmp_path, monkeypatch):
    case = CASES[provider]
    async with provider_service(case, tmp_path, monkeypatch, tokens_per_second=50) as (service, server):
        server.script(Reply(text=" ".join(f"word{i}" for i in range(500))))
        stream = await service.create_session_streaming("talk a lot", model=case.model)
        async for envelope in stream:
            if envelope.type == "text_delta":
                break
        await service.interrupt(stream.session_id)
        with pytest.raises(RequestCancelled):
            await stream.result()
        with trio.fail_after(10):  # a deadline, not a timing assertion: the server must see the close
            await server.wait_disconnect()
        assert server.disconnects == 1
        history = (await service.read_history(stream.session_id)).messages
        assert history[-1].stop_reason == "cancelled" and history[-1].blocks[0].data["text"].startswith("word0")


@pytest.mark.parametrize("provider", ["anthropic", "openai", "gemini"])
async def test_missing_key_fails_the_turn_naming_the_variables_and_mock(provider, tmp_path, monkeypatch):
    clear_keys(monkeypatch)
    from actors import open_service

    async with open_service("nokey", state_root=tmp_path, backend="memory") as service:
        with pytest.raises(ProviderError) as caught:
            await service.create_session("hi", model=CASES[provider].model)
        assert await service.list_sessions() == []  # no empty session is left behind to resume by mistake
        existing = await service.create_session(model="mock", run_immediately=False)
        with pytest.raises(ProviderError):  # a turn on an existing session fails the same way
            await service.start_turn(existing.session_id, "hi", model=CASES[provider].model)
    message = caught.value.message
    assert CASES[provider].key_variable in message and f"RKAT_{provider.upper()}_API_KEY" in message
    assert "mock" in message
    if provider == "gemini":
        assert "GOOGLE_API_KEY" in message


async def test_interrupted_anthropic_turn_is_charged_its_input(tmp_path, monkeypatch):
    """Anthropic reports the input in message_start: an interrupted turn keeps that count."""
    case = CASES["anthropic"]
    async with provider_service(case, tmp_path, monkeypatch, tokens_per_second=50) as (service, server):
        server.script(Reply(text=" ".join(f"word{i}" for i in range(500)), input_tokens=1234))
        stream = await service.create_session_streaming("talk a lot", model=case.model)
        async for envelope in stream:
            if envelope.type == "text_delta":
                break
        await service.interrupt(stream.session_id)
        with pytest.raises(RequestCancelled):
            await stream.result()
        usage = (await service.read_session(stream.session_id)).usage
        assert usage.input_tokens == 1234 and usage.output_tokens >= 1, usage
