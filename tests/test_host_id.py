"""A host is named by RKAT_HOST_ID (default: the hostname); pid checks apply only within one host id."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from meerkat.store import current_owner, host_id, owner_is_alive


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_host_id_defaults_to_the_hostname(monkeypatch):
    monkeypatch.delenv("RKAT_HOST_ID", raising=False)
    assert host_id() == socket.gethostname()
    assert current_owner() == f"{socket.gethostname()}:{os.getpid()}"
    monkeypatch.setenv("RKAT_HOST_ID", "  ")  # blank is unset
    assert host_id() == socket.gethostname()


def test_rkat_host_id_names_the_owner(monkeypatch):
    monkeypatch.setenv("RKAT_HOST_ID", "worker-a")
    assert current_owner() == f"worker-a:{os.getpid()}"
    assert owner_is_alive(current_owner())


def test_pid_liveness_applies_only_within_one_host_id(monkeypatch):
    pid = _dead_pid()
    monkeypatch.setenv("RKAT_HOST_ID", "worker-a")
    assert not owner_is_alive(f"worker-a:{pid}")
    # The same pid on another host id says nothing about that host: it counts as alive
    # (its lease decides), even though no such process runs here.
    assert owner_is_alive(f"worker-b:{pid}")
    assert owner_is_alive(f"{socket.gethostname()}:{pid}")
