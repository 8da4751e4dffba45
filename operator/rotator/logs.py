"""JSON logs with a redaction filter.

Secret values are wrapped in pydantic.SecretStr everywhere, so they never reach a log call in
the first place; the filter is the second belt: any string registered as sensitive (the values
this process generated or read) is masked wherever it appears in a record.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter, OrderedDict
from datetime import UTC, datetime
from typing import Final

MASK: Final = "[REDACTED]"
QUIET_LOGGERS: Final = ("botocore", "boto3", "s3transfer", "urllib3", "kubernetes", "hvac")
_MIN_SENSITIVE_LENGTH: Final = 8  # shorter strings would mask ordinary words
SENSITIVE_LIMIT: Final = 10_000
"""Values the redaction filter keeps (three spellings each, ~1 KiB a value with its index)."""


class _SensitiveValues:
    """A process-wide, thread-safe set of strings that must never be logged.

    Bounded and indexed, because every rotation adds values and every log line is checked: the
    set keeps the ``limit`` most recently registered values (a value is registered again each
    time it is generated, read or written, so one in use stays; one that fell out was last seen
    ``limit`` registrations ago and is long retired), and a message is scanned once for the
    ``_MIN_SENSITIVE_LENGTH``-character prefixes of those values rather than once per value. A
    plain set with a scan per value grew by three strings a rotation for ever and made each log
    line cost as much as the number of rotations so far.
    """

    def __init__(self, limit: int = SENSITIVE_LIMIT) -> None:
        self._lock = threading.Lock()
        self._limit = limit
        self._recent: OrderedDict[str, frozenset[str]] = OrderedDict()  # value -> its forms
        self._by_prefix: dict[str, Counter[str]] = {}  # a form's first characters -> forms

    def add(self, value: str) -> None:
        if len(value) < _MIN_SENSITIVE_LENGTH:
            return
        # Also the escaped spellings a value takes inside JSON bodies and %r-formatted logs.
        forms = frozenset(
            form
            for form in (value, json.dumps(value)[1:-1], repr(value)[1:-1])
            if len(form) >= _MIN_SENSITIVE_LENGTH
        )
        with self._lock:
            if value in self._recent:
                self._recent.move_to_end(value)
                return
            self._recent[value] = forms
            for form in forms:
                self._by_prefix.setdefault(form[:_MIN_SENSITIVE_LENGTH], Counter())[form] += 1
            while len(self._recent) > self._limit:
                _, old = self._recent.popitem(last=False)
                for form in old:
                    prefix = form[:_MIN_SENSITIVE_LENGTH]
                    counts = self._by_prefix[prefix]
                    counts[form] -= 1
                    if counts[form] <= 0:
                        del counts[form]
                        if not counts:
                            del self._by_prefix[prefix]

    def __len__(self) -> int:
        return len(self._recent)

    def redact(self, text: str) -> str:
        found: set[str] = set()
        with self._lock:
            if not self._by_prefix:
                return text
            for start in range(len(text) - _MIN_SENSITIVE_LENGTH + 1):
                forms = self._by_prefix.get(text[start : start + _MIN_SENSITIVE_LENGTH])
                if forms:
                    found.update(form for form in forms if text.startswith(form, start))
        for form in sorted(found, key=len, reverse=True):  # a longer spelling before its part
            text = text.replace(form, MASK)
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
    # Kopf logs "Handler ... succeeded." at INFO for every watch event (a dozen per rotation,
    # thousands in a mass rotation): only with --verbose. Its warnings and errors stay.
    logging.getLogger("kopf.objects").setLevel(level if level <= logging.DEBUG else logging.WARNING)
    for noisy in QUIET_LOGGERS:
        # At DEBUG these print request and response bodies (secret values included): never.
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
