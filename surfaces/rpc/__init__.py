"""``rkat-rpc``: the host over newline-delimited JSON-RPC 2.0 on stdin and stdout.

Wire-compatible with the published Python SDK ``meerkat-sdk`` 0.9.6 (see
``docs/rpc.md``). The pieces, each with one job:

* :mod:`.framing`   lines in (with a size limit), bytes out;
* :mod:`.wire`      JSON-RPC objects: classify incoming ones, encode outgoing ones;
* :mod:`.methods`   one function per method, wire params -> :class:`actors.SessionService`;
* :mod:`.callbacks` server-to-client ``tool/execute`` requests for callback tools;
* :mod:`.server`    one connection: concurrent requests, ordered output;
* :mod:`.stdio`     trio streams over the process's stdin and stdout;
* :mod:`.main`      the console script.
"""
