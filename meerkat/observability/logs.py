"""Logs an operator can use: JSON lines, and one line per turn start and end.

:class:`JsonFormatter` writes each record as one JSON object: ``time`` (RFC
3339, UTC), ``level``, ``program``, ``logger``, ``message``, and the ids of the
turn the line belongs to (``session_id``, ``run_id``, ``realm_id``), taken from
the record (``extra=``) or else from the task's log context, which every turn
sets (:func:`meerkat.observability.set_log_context`), plus ``event`` and other
fields a line carries. Exceptions add ``exc``.

:class:`TurnLogObserver` logs ``run_started`` and ``run_completed`` /
``run_failed`` / ``run_interrupted`` at INFO on the ``rkat.turns`` logger, so
``--log-level info`` shows what the host does, turn by turn.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from typing import Any

from . import Observer, TurnInfo, TurnProbe, log_context

__all__ = ["JsonFormatter", "JsonLines", "TurnLogObserver", "CONTEXT_FIELDS"]

#: Record attributes copied into the line when present.
CONTEXT_FIELDS = ("session_id", "run_id", "realm_id", "event", "provider", "model", "status", "duration_ms",
                  "error_class", "input_tokens", "output_tokens")
_IDS = ("session_id", "run_id", "realm_id")
turn_log = logging.getLogger("rkat.turns")


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object (no newlines inside)."""

    def __init__(self, program: str) -> None:
        super().__init__()
        self.program = program

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "program": self.program,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        context = log_context()
        if context:
            for name in _IDS:
                if name not in line and context.get(name):
                    line[name] = context[name]
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class JsonLines:
    """A text stream that writes each line it is given as a JSON object, unless it already is one.

    Installed as ``sys.stderr`` under ``--log-format json``, so that what a server
    prints itself (start-up notes, "shutting down", a traceback) reaches the log
    pipeline as JSON lines too. Everything but ``write``/``flush`` is the wrapped stream's.
    """

    def __init__(self, stream: Any, program: str) -> None:
        self._stream = stream
        self._program = program
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            self._emit(line)
        return len(text)

    def _emit(self, line: str) -> None:
        if line.startswith("{") and line.endswith("}"):
            self._stream.write(line + "\n")
            return
        if not line.strip():
            return
        message = line.removeprefix(f"{self._program}: ")
        level = "error" if message.startswith("error:") else "warning" if message.startswith("warning:") else "info"
        self._stream.write(json.dumps({
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": level, "program": self._program, "logger": "stderr", "message": message,
        }, ensure_ascii=False) + "\n")

    def flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, ""
            self._emit(pending)
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class TurnLogObserver(Observer):
    """Logs each turn's start and end at INFO (``rkat.turns``)."""

    def turn(self, info: TurnInfo) -> TurnProbe:
        return _TurnLog(info)


class _TurnLog(TurnProbe):
    __slots__ = ("_info", "_started")

    def __init__(self, info: TurnInfo) -> None:
        self._info = info
        self._started = time.perf_counter()
        turn_log.info("run %s of session %s started (%s/%s)", info.run_id, info.session_id, info.provider,
                      info.model, extra=self._fields("run_started"))

    def _fields(self, event: str, **more: Any) -> dict[str, Any]:
        info = self._info
        return {"event": event, "session_id": info.session_id, "run_id": info.run_id, "realm_id": info.realm_id,
                "provider": info.provider, "model": info.model, **more}

    def finish(self, status: str, usage: Any, report: Any, cause: str | None) -> None:
        event = {"completed": "run_completed", "interrupted": "run_interrupted"}.get(status, "run_failed")
        duration_ms = round((time.perf_counter() - self._started) * 1000, 1)
        more: dict[str, Any] = {"status": status, "duration_ms": duration_ms}
        if usage is not None:
            more.update(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)
        if report is not None and status == "failed":
            more["error_class"] = report.error_class
            turn_log.warning("run %s of session %s failed (%s): %s", self._info.run_id, self._info.session_id,
                             report.error_class, report.message, extra=self._fields(event, **more))
            return
        turn_log.info("run %s of session %s %s in %.1f ms", self._info.run_id, self._info.session_id, status,
                      duration_ms, extra=self._fields(event, **more))
