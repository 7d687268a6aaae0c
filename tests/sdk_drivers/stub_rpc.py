"""A stand-in ``rkat-rpc`` for client tests of what a real server cannot be made to do.

Environment knobs:

* ``STUB_VERSION``   the contract_version ``initialize`` reports (default 0.9.6);
* ``STUB_CRASH_ON``  a method that makes the stub write to stderr and exit 3 mid-call;
* ``STUB_HANG_ON``   a method that is never answered;
* ``STUB_LOG``       a file getting one JSON line per event: ``{"argv": [...]}`` at start (with
                   ``"database_url"`` when ``RKAT_DATABASE_URL`` is set), then
  ``{"request": {...}}`` for every line read.

``session/create`` and ``turn/start`` get a minimal RunResult, every other method ``{}``. It speaks just enough JSON-RPC for a handshake.
"""

import json
import os
import sys


def log(entry):
    path = os.environ.get("STUB_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")


def reply(request_id, result):
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}) + "\n")
    sys.stdout.flush()


def main():
    # The database URL an SDK passes in the environment (never in argv), when it passes one.
    database_url = os.environ.get("RKAT_DATABASE_URL")
    log({"argv": sys.argv[1:], **({"database_url": database_url} if database_url else {})})
    version = os.environ.get("STUB_VERSION", "0.9.6")
    for line in sys.stdin:
        request = json.loads(line)
        log({"request": request})
        method = request.get("method")
        if method == os.environ.get("STUB_CRASH_ON"):
            sys.stderr.write(f"stub: crashing on {method} as asked\n")
            sys.stderr.flush()
            sys.exit(3)
        if method == os.environ.get("STUB_HANG_ON"):
            continue
        if method == "initialize":
            reply(request["id"], {"contract_version": version, "methods": ["initialize"]})
        elif method == "capabilities/get":
            reply(request["id"], {"capabilities": [
                {"id": "sessions", "description": "Sessions", "status": "Available"},
                {"id": "shell", "description": "Shell", "status": {"DisabledByPolicy": {"description": "off"}}}]})
        elif method in ("session/create", "turn/start"):
            reply(request["id"], {"session_id": "0196a3c2-7b2c-7000-8000-00000000a001", "text": "stub", "turns": 1,
                                  "tool_calls": 0, "usage": {"input_tokens": 1, "output_tokens": 1}})
        elif "id" in request:
            reply(request["id"], {})


if __name__ == "__main__":
    main()
