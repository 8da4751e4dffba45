"""JSON logs with a redaction filter.

Secret values are wrapped in pydantic.SecretStr everywhere, so they never reach a log call in
the first place; the filter is the second belt: any string registered as sensitive (the values
this process generated or read) is masked wherever it appears in a record.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from typing import Final

MASK: Final = "[REDACTED]"
QUIET_LOGGERS: Final = ("botocore", "boto3", "s3transfer", "urllib3", "kubernetes", "hvac")
_MIN_SENSITIVE_LENGTH: Final = 8  # shorter strings would mask ordinary words


class _SensitiveValues:
    """A process-wide, thread-safe set of strings that must never be logged."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()

    def add(self, value: str) -> None:
        if len(value) >= _MIN_SENSITIVE_LENGTH:
            # Also the escaped spellings a value takes inside JSON bodies and %r-formatted logs.
            forms = {value, json.dumps(value)[1:-1], repr(value)[1:-1]}
            with self._lock:
                self._values.update(forms)

    def redact(self, text: str) -> str:
        with self._lock:
            values = tuple(self._values)
        for value in values:
            if value in text:
                text = text.replace(value, MASK)
        return text


SENSITIVE = _SensitiveValues()


class RedactingFilter(logging.Filter):
    """Rewrites a record's message in place so no handler ever sees a registered value."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = SENSITIVE.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exception"] = SENSITIVE.redact(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)


def configure(level: int = logging.INFO, json_output: bool = True) -> None:
    """Install the redacting filter on every root handler; JSON unless a human is watching."""
    root = logging.getLogger()
    root.setLevel(level)
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if json_output
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    handler.addFilter(RedactingFilter())
    root.handlers[:] = [handler]
    for noisy in QUIET_LOGGERS:
        # At DEBUG these print request and response bodies (secret values included): never.
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
