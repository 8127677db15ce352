"""Structured logs: one JSON object per line on stdout, so log collectors need no parser."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

LOGGER_NAME = "sync_runner"
_FIELDS = "fields"


class JsonLineFormatter(logging.Formatter):
    """Renders a record as one JSON line: ts, level, event, then the event's fields."""

    def __init__(self, static: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            **self.static,
        }
        extra = getattr(record, _FIELDS, None)
        if isinstance(extra, dict):
            line.update(extra)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


def configure(static: dict[str, Any] | None = None, level: str = "INFO") -> None:
    """Send the runner's logs to stdout as JSON lines, tagged with `static` fields."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonLineFormatter(static))
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False


def get_logger(name: str = "") -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO,
              exc_info: bool = False, **fields: Any) -> None:
    """Log one event with its fields (kept as structured data, not formatted into text)."""
    logger.log(level, event, extra={_FIELDS: fields}, exc_info=exc_info)


class Throttle:
    """Lets one message through per `seconds`, so an outage logs a line, not a flood."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last = float("-inf")

    def ready(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self.seconds:
            self._last = now
            return True
        return False
