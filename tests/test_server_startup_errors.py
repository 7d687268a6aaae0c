"""rkat-rpc and rkat-mcp that cannot start say why in one ``error:`` line (as rkat-rest does),
naming the file or the address, with no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from rpc_process import RKAT_RPC, child_env

RKAT_MCP = str(Path(sys.executable).with_name("rkat-mcp"))


def _corrupt_realm(root: Path) -> Path:
    config = root / "broken" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("this is [not toml\n")
    return config


def test_rkat_rpc_with_a_corrupt_config_is_one_error_line(tmp_path):
    config = _corrupt_realm(tmp_path)
    done = subprocess.run([RKAT_RPC, "--realm", "broken", "--state-root", str(tmp_path)], capture_output=True,
                          text=True, timeout=60, env=child_env(tmp_path),
                          input='{"jsonrpc": "2.0", "id": 1, "method": "initialize"}\n')
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"rkat-rpc: error: corrupt config file {config}: "), lines
    assert done.stdout == ""


def test_rkat_mcp_with_its_port_taken_is_one_error_line_naming_the_address(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([RKAT_MCP, "--realm", "busy", "--state-root", str(tmp_path), "--http",
                               f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=60, env=child_env(tmp_path),
                              stdin=subprocess.DEVNULL)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert errors == [f"rkat-mcp: error: cannot serve on 127.0.0.1:{port}: Address already in use"], done.stderr
