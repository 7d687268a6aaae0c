"""Test helpers: fake LLM vendor servers speaking each vendor's streaming wire format.

See :mod:`meerkat.testing.fake_server` (the server) and :mod:`meerkat.testing.script`
(scripted replies and faults). Run one as a process with ``python -m meerkat.testing``.
"""

from .fake_server import (
    FakeProviderServer as FakeProviderServer,
    ReceivedRequest as ReceivedRequest,
    open_fake_provider_server as open_fake_provider_server,
    serve_fake_provider_server as serve_fake_provider_server,
)
from .script import (
    DropConnection as DropConnection,
    HttpError as HttpError,
    Reply as Reply,
    Stall as Stall,
    ToolCall as ToolCall,
    script_from_json as script_from_json,
)

__all__ = ["FakeProviderServer", "ReceivedRequest", "open_fake_provider_server", "serve_fake_provider_server",
           "DropConnection", "HttpError", "Reply", "Stall", "ToolCall", "script_from_json"]
