"""The Python tabs of the seed (seed-sessions-and-streaming.md), run as written, in order.

Between the snippets only the glue a reader would add: the imports, a ``main``
function, the ids the seed elides (``"01936f8a-..."`` becomes ``session.id``) and,
marked SETUP, the realm state a snippet assumes. Run with ``asyncio`` or ``trio``
as the first argument.
"""

import sys

from meerkat import MeerkatClient, TextDelta


async def main():
    # -- Create a session
    async with MeerkatClient() as client:
        session = await client.create_session(
            "What is the capital of France?",
            model="claude-sonnet-4-6",
        )
        print(session.text)

        # -- Multi-turn
        result = await session.turn("Now explain it in more detail")
        print(result.text)

        # -- List sessions
        sessions = await client.list_sessions()
        for s in sessions:
            print(s.session_id, s.message_count, s.is_active)

        # -- Read session state
        state = await client.read_session(session.id)
        print(state)

        # -- Event streaming
        # Streaming on session create
        async with client.create_session_streaming("Tell me a story") as stream:
            async for event in stream:
                match event:
                    case TextDelta(delta=chunk):
                        print(chunk, end="", flush=True)
            result = stream.result
        print()
        print("STREAM RESULT", result.text)

        # Streaming on a follow-up turn
        async with session.stream("Continue the story") as events:
            async for event in events:
                match event:
                    case TextDelta(delta=chunk):
                        print(chunk, end="", flush=True)
        print()

        # -- Model and provider selection
        session = await client.create_session(
            "Hello",
            model="gpt-5.5",
            provider="openai",
            provider_params={"reasoning_effort": "high"},
        )
        print("OPENAI", await client.read_session(session.id))

        # -- Config management
        for _ in range(3):  # SETUP: the seed's snippet assumes the realm's config is at generation 3
            await client.patch_config({"agent": {}})
        config = await client.get_config()
        await client.set_config({"agent": {"model": "gpt-5.5"}}, expected_generation=3)
        await client.patch_config({"agent": {"max_tokens_per_turn": 8192}}, expected_generation=4)
        print("CONFIG", config["generation"], (await client.get_config())["config"]["agent"])

        # -- Interrupt a turn (a no-op when idle), then archive
        await session.interrupt()
        await session.archive()

    # -- Realm selection
    client = MeerkatClient()
    await client.connect(realm_id="team-alpha", instance_id="worker-1")
    print("REALM", (await client.get_config())["realm_id"], (await client.get_config())["instance_id"])
    await client.close()


if __name__ == "__main__":
    if sys.argv[1] == "trio":
        import trio

        trio.run(main)
    else:
        import asyncio

        asyncio.run(main())
