"""Throw-away realms are removed when their process exits; `rkat realm list|prune` handles crash leftovers."""

from __future__ import annotations

import os
import signal
import subprocess

from cli_process import Cli
from rpc_process import RKAT_RPC, RpcProcess, child_env
from test_rest_server import RestServer

from meerkat.client import MeerkatClient


def _realm_dirs(root):
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_cli_isolated_realm_is_gone_after_the_command(tmp_path):
    rkat = Cli(tmp_path / "state", tmp_path)
    assert rkat("--isolated", "run", "hi").out == "Mock reply to: hi\n"
    assert _realm_dirs(tmp_path / "state") == []


async def test_sdk_client_without_a_realm_leaves_nothing(tmp_path):
    async with await MeerkatClient().connect(state_root=tmp_path) as client:
        await client.create_session("hello")
        assert [name[:6] for name in _realm_dirs(tmp_path)] == ["realm-"]
    assert _realm_dirs(tmp_path) == []


def test_rest_server_without_a_realm_removes_it_on_shutdown(tmp_path):
    with RestServer("--state-root", str(tmp_path)) as server:
        assert len(_realm_dirs(tmp_path)) == 1
        server.stop(signal.SIGINT)
    assert _realm_dirs(tmp_path) == []


def test_list_and_prune_crash_leftovers_but_never_a_realm_in_use(tmp_path):
    state = tmp_path / "state"
    rkat = Cli(state, tmp_path)
    rkat("-r", "named", "run", "keep me")
    # A server killed with SIGKILL cannot clean up after itself.
    crashed = RpcProcess(state_root=state)
    serving = RpcProcess(state_root=state)
    try:
        # Both have made and opened their realm once they answer (a fixed pause used to stand in for this).
        crashed.result("initialize", {})
        serving.result("initialize", {})
        crashed.proc.kill()
        crashed.proc.wait()
        listed = {r["realm_id"]: r for r in rkat("realm", "list", "--format", "json").json()}
        assert len(listed) == 3 and listed["named"]["origin"] == "explicit"
        generated = {rid: r for rid, r in listed.items() if r["origin"] == "generated"}
        assert sorted(r["in_use"] for r in generated.values()) == [False, True]
        text = rkat("realm", "list").out
        assert text.startswith("REALM") and "named" in text and "generated" in text

        assert rkat("realm", "prune").out == ""  # nothing is 7 days old
        dry = rkat("realm", "prune", "--older-than", "0", "--dry-run")
        leftover = next(rid for rid, r in generated.items() if not r["in_use"])
        assert dry.out.startswith(f"would remove {leftover} ") and len(dry.out.splitlines()) == 1
        assert len(_realm_dirs(state)) == 3
        pruned = rkat("realm", "prune", "--older-than", "0")
        assert pruned.out.startswith(f"removed {leftover} ") and pruned.err == "1 realm(s) removed.\n"
        remaining = {r["realm_id"] for r in rkat("realm", "list", "--format", "json").json()}
        assert remaining == set(listed) - {leftover}
        assert "--older-than" in rkat("realm", "prune", "--older-than", "soon", expect=2).err
        # Options that choose one realm mean nothing to commands about all of them: refused, not ignored.
        assert "No such option '--realm'" in rkat("realm", "prune", "--realm", "team", expect=2).err
        assert "--isolated" not in rkat("realm", "list", "--help").out
    finally:
        serving.close_stdin()
        serving.wait()  # a clean exit: it removes its own realm
        serving.stop()  # (closes the pipes)
        crashed.stop()
    assert sorted(os.listdir(state)) == ["named"]  # the live server removed its own on exit


def test_mcp_server_without_a_realm_removes_it_when_its_client_leaves(tmp_path):
    rkat_mcp = os.path.join(os.path.dirname(RKAT_RPC), "rkat-mcp")
    done = subprocess.run([rkat_mcp, "--state-root", str(tmp_path)], input="", capture_output=True, text=True,
                          timeout=60, env=child_env(tmp_path))
    assert done.returncode == 0 and "serving a fresh realm" in done.stderr
    assert _realm_dirs(tmp_path) == []
