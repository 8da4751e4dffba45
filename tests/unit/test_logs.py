"""The logs' second belt: values registered as sensitive are masked in messages and tracebacks."""

from __future__ import annotations

import io
import json
import logging

import pytest

from rotator import logs


@pytest.fixture
def captured() -> logging.Logger:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.RedactingFilter())
    logger = logging.getLogger("rotator.test-logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.stream = stream  # type: ignore[attr-defined]
    return logger


def lines(logger: logging.Logger) -> list[dict[str, str]]:
    text = logger.stream.getvalue()  # type: ignore[attr-defined]
    return [json.loads(line) for line in text.splitlines()]


def test_registered_value_is_masked_in_message_args_and_traceback(captured: logging.Logger) -> None:
    value = "Zq8sP2mXvB7tK4nR"
    logs.SENSITIVE.add(value)
    captured.info("connecting with %s", value)
    try:
        raise RuntimeError(f"bad password {value}")
    except RuntimeError:
        captured.exception("failed")
    out = lines(captured)
    assert out[0]["message"] == f"connecting with {logs.MASK}"
    assert value not in json.dumps(out)
    assert logs.MASK in out[1]["exception"]


def test_short_strings_are_not_registered_so_ordinary_words_survive(captured: logging.Logger) -> None:
    logs.SENSITIVE.add("abc")
    captured.info("abc is fine")
    assert lines(captured)[0]["message"] == "abc is fine"
