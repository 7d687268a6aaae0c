"""A damaged JSONL session file is reported, not silently dropped from view."""

from __future__ import annotations

from cli_process import Cli


def test_damaged_session_files_are_reported(tmp_path):
    rkat = Cli(tmp_path / "state", tmp_path)
    first = rkat("run", "-r", "j", "--realm-backend", "jsonl", "--output", "json", "one").json()["session_id"]
    second = rkat("run", "-r", "j", "--output", "json", "two").json()["session_id"]
    rkat("run", "-r", "j", "--resume", second, "three")
    files = {path.stem: path for path in (tmp_path / "state").rglob("*.jsonl")}
    head_lost = files[first]
    head_lost.write_bytes(b"{not json\n" + head_lost.read_bytes().split(b"\n", 1)[1])
    middle = files[second]
    lines = middle.read_bytes().split(b"\n")
    lines[1] = b"\x00garbage"
    middle.write_bytes(b"\n".join(lines))
    listed = rkat("session", "list", "-r", "j")
    assert f"session file {head_lost} is damaged" in listed.err and first in listed.err, listed.err
    assert f"session file {middle} has 1 damaged line(s)" in listed.err, listed.err
    assert second in listed.out or second[:8] in listed.out
