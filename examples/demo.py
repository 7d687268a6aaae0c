"""A tour of the in-process API with the offline ``mock`` provider (no key needed).

Creates a session, streams a turn, continues it, lists, reads and archives,
all in a realm under ``./.rkat/realms`` (pass another state root as argv[1]).
Run it with ``make demo``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from actors import open_service
from meerkat.errors import SessionNotFound

SLOW = {"token_delay_ms": 30}  # the mock streams word by word, slowly enough to watch


async def main(state_root: Path) -> None:
    async with open_service("demo", state_root=state_root) as service:
        print(f"realm {service.realm.realm_id} ({service.realm.backend}) under {state_root}\n")

        print("> What is the capital of France?   [streamed]")
        stream = await service.create_session_streaming("What is the capital of France?",
                                                        provider_params=SLOW, labels={"demo": "yes"})
        async for envelope in stream:
            if envelope.type == "text_delta":
                print(envelope.payload.delta, end="", flush=True)
        result = await stream.result()
        print(f"\n  [session {result.session_id}, {result.usage.total_tokens} tokens so far]\n")

        print("> What time is it? tool:datetime   [a tool call]")
        again = await service.start_turn(result.session_id, "What time is it? tool:datetime")
        print(f"{again.text}\n  [{again.turns} model calls, {again.tool_calls} tool call]\n")

        print("sessions in this realm:")
        for summary in await service.list_sessions(limit=5):
            print(f"  {summary.session_id}  messages={summary.message_count}  tokens={summary.total_tokens}")

        view = await service.read_session(result.session_id)
        history = await service.read_history(result.session_id)
        print(f"\nread: model={view.model} provider={view.provider} messages={view.message_count}")
        for row in history.messages:
            print(f"  {type(row).__name__}")

        await service.archive(result.session_id)
        try:
            await service.read_session(result.session_id)
        except SessionNotFound as exc:
            print(f"\narchived: reading it now says {exc.code.value}: {exc.message}")


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".rkat/realms"))
