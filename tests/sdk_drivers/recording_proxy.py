"""Sits between a client and the real ``rkat-rpc``, recording both directions.

Started (through a wrapper script named ``rkat-rpc``) by the published SDK, it
starts ``$PROXY_TARGET`` with the same arguments and relays stdin and stdout
line by line, appending to ``$PROXY_LOG`` one JSON line per event:
``{"argv": [...]}``, ``{"to_server": {...}}``, ``{"to_client": {...}}``.
Signals are passed on, and the proxy exits when the server does (with its exit
code), so shutdown and a server that refuses to start behave as without the proxy.
"""

import json
import os
import signal
import subprocess
import sys
import threading

LOCK = threading.Lock()


def record(entry):
    with LOCK, open(os.environ["PROXY_LOG"], "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


def main():
    record({"argv": sys.argv[1:]})
    child = subprocess.Popen([os.environ["PROXY_TARGET"], *sys.argv[1:]], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
    signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))

    def downstream():
        for line in child.stdout:
            record({"to_client": json.loads(line)})
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
        os._exit(child.wait())  # the server is gone: so is the proxy, even if our stdin is still open

    threading.Thread(target=downstream, daemon=True).start()
    for line in sys.stdin.buffer:
        record({"to_server": json.loads(line)})
        try:
            child.stdin.write(line)
            child.stdin.flush()
        except BrokenPipeError:
            break
    record({"stdin": "eof"})
    try:
        child.stdin.close()
    except BrokenPipeError:
        pass
    threading.Event().wait()  # until downstream sees the server exit


if __name__ == "__main__":
    main()
