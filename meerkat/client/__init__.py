"""The Python SDK: drive an ``rkat-rpc`` child over JSON-RPC, under asyncio or trio.

::

    from meerkat import MeerkatClient, TextDelta

    async with MeerkatClient() as client:
        async with client.create_session_streaming("Tell me a story") as stream:
            async for event in stream:
                match event:
                    case TextDelta(delta=chunk):
                        print(chunk, end="", flush=True)
        print(stream.result.usage)

Imports nothing from :mod:`actors` or :mod:`surfaces`: it talks to the host like
any other client, through ``rkat-rpc``. See ``docs/python-sdk.md``.
"""

from ._client import CONTRACT_VERSION as CONTRACT_VERSION, MeerkatClient as MeerkatClient
from ._errors import (
    BinaryNotFound as BinaryNotFound,
    ClientClosed as ClientClosed,
    ClientError as ClientError,
    ConnectionClosed as ConnectionClosed,
    ConnectTimeout as ConnectTimeout,
    ProtocolError as ProtocolError,
    StreamNotConsumed as StreamNotConsumed,
    VersionMismatch as VersionMismatch,
)
from ._events import Event as Event, UnknownEvent as UnknownEvent
from ._history import (
    ForkInfo as ForkInfo,
    RevisionEntry as RevisionEntry,
    RevisionList as RevisionList,
    RevisionPage as RevisionPage,
    RewriteInfo as RewriteInfo,
    SystemPromptInfo as SystemPromptInfo,
)
from ._live import (
    EventsPage as EventsPage,
    EventSubscription as EventSubscription,
    ExternalEventResult as ExternalEventResult,
    InjectResult as InjectResult,
    InputState as InputState,
    RealmInfo as RealmInfo,
    StopReceipt as StopReceipt,
)
from ._session import Session as Session
from ._stream import EventStream as EventStream
from ._tools import ToolCallDedupeKey as ToolCallDedupeKey
from ._types import Capability as Capability, SessionDetails as SessionDetails, SessionInfo as SessionInfo

__all__ = ["MeerkatClient", "CONTRACT_VERSION", "Session", "EventStream", "Event", "UnknownEvent",
           "ToolCallDedupeKey", "Capability", "SessionInfo", "SessionDetails", "ClientError", "BinaryNotFound",
           "ConnectionClosed", "ConnectTimeout", "ClientClosed", "ProtocolError", "VersionMismatch", "StreamNotConsumed",
           "ForkInfo", "RewriteInfo", "RevisionEntry", "RevisionList", "RevisionPage", "SystemPromptInfo",
           "EventSubscription", "EventsPage", "StopReceipt", "InjectResult", "InputState", "ExternalEventResult",
           "RealmInfo"]
