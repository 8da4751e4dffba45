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


def test_escaped_spellings_of_a_value_are_masked_too(captured: logging.Logger) -> None:
    value = "p\"q\\r's-tail-xyz"
    logs.SENSITIVE.add(value)
    captured.info("body=%s", json.dumps({"SecretString": value}))
    captured.info("params=%r", {"SecretString": value})
    text = json.dumps(lines(captured))
    assert "tail-xyz" not in text


def test_debug_logging_never_enables_http_body_loggers() -> None:
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, list(root.handlers)
    saved_levels = {name: logging.getLogger(name).level for name in logs.QUIET_LOGGERS}
    logs.configure(logging.DEBUG, json_output=False)
    try:
        for name in logs.QUIET_LOGGERS:
            assert not logging.getLogger(name).isEnabledFor(logging.DEBUG)
    finally:
        root.setLevel(saved_level)
        root.handlers[:] = saved_handlers
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)


def test_the_redaction_set_keeps_the_most_recent_values_and_masks_each_spelling() -> None:
    values = logs._SensitiveValues(limit=3)
    for i in range(5):
        values.add(f"secret-value-{i}")
    values.add("secret-value-2")  # seen again: now the most recent
    values.add("secret-value-5")  # evicts the oldest, 3 (2 was refreshed)
    assert len(values) == 3
    text = " ".join(f"secret-value-{i}" for i in range(6))
    assert values.redact(text) == " ".join(
        ["secret-value-0", "secret-value-1", logs.MASK, "secret-value-3", logs.MASK, logs.MASK]
    )
    values.add('quote"inside-value')
    assert values.redact(json.dumps({"v": 'quote"inside-value'})) == json.dumps({"v": logs.MASK})


def test_kopf_handler_chatter_only_with_verbose() -> None:
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, list(root.handlers)
    kopf_objects = logging.getLogger("kopf.objects")
    saved = kopf_objects.level
    try:
        logs.configure(logging.INFO, json_output=False)
        assert not kopf_objects.isEnabledFor(logging.INFO)
        assert kopf_objects.isEnabledFor(logging.WARNING)
        logs.configure(logging.DEBUG, json_output=False)
        assert kopf_objects.isEnabledFor(logging.INFO)
    finally:
        root.setLevel(saved_level)
        root.handlers[:] = saved_handlers
        kopf_objects.setLevel(saved)
