"""A fake Anthropic/OpenAI/Gemini server as its own process, and the env that points a host at it.

Surface tests (CLI, rkat-rpc, rkat-rest, rkat-mcp) run the seed's hosted-model
examples against this instead of a vendor: ``python -m meerkat.testing`` on a
free loopback port, replying ``reply`` to every call.
"""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from typing import Iterator

__all__ = ["fake_vendor_process", "vendor_env"]


@contextmanager
def fake_vendor_process(reply: str) -> Iterator[str]:
    """Run the fake vendor server until the block exits; yields its base URL."""
    proc = subprocess.Popen([sys.executable, "-m", "meerkat.testing", "--port", "0", "--reply", reply],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()


def vendor_env(url: str) -> dict[str, str]:
    """Fake keys and base URLs that send the anthropic, openai and gemini providers to the fake vendor at ``url``."""
    return {"ANTHROPIC_API_KEY": "sk-ant-test", "RKAT_ANTHROPIC_BASE_URL": url,
            "OPENAI_API_KEY": "sk-openai-test", "RKAT_OPENAI_BASE_URL": f"{url}/v1",
            "GEMINI_API_KEY": "gemini-test", "RKAT_GEMINI_BASE_URL": url}
