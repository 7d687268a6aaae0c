"""``rkat-mcp``: the host's sessions as MCP tools, for agents that speak the Model Context Protocol.

Modules, each with one job:

* :mod:`.main` - the command line (``rkat-mcp``), realm options, choosing stdio or HTTP;
* :mod:`.server` - the low-level MCP server: tool listing, dispatch, error mapping, HTTP serving;
* :mod:`.stdio` - serving one client on stdin/stdout;
* :mod:`.tools` - the ``meerkat_*`` tools: descriptions and handlers over ``SessionService``;
* :mod:`.arguments` - each tool's arguments as a typed record, which is also its input schema;
* :mod:`.results` - result and error payloads (JSON text plus ``structuredContent``);
* :mod:`.notify` - streaming a turn's events as progress or log notifications;
* :mod:`.streams` - the managed event streams behind ``meerkat_event_stream_*``.
* :mod:`.turns` - the turns tool calls started, so only a client's cancellation interrupts one.

Importing this package imports nothing heavy; ``mcp`` is loaded when the server starts.
"""
