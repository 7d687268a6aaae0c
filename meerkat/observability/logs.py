"""JSON log lines for operators: one object per line, ready for a log pipeline.

Each line carries ``time`` (RFC 3339, UTC), ``level``, ``logger``, ``message``,
the ``program``, and the session/run/realm ids when the log call passed them
(``log.info("...", extra={"session_id": ..., "run_id": ...})``) or when the
message came from a turn (the turn's log context). Exceptions add ``exc``.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

__all__ = ["JsonFormatter", "CONTEXT_FIELDS"]

#: Record attributes copied into the line when present.
CONTEXT_FIELDS = ("session_id", "run_id", "realm_id", "event", "provider", "model", "status")


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
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)
