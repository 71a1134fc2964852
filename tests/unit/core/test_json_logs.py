"""JSON log lines: one object a line, the record's fields and context, masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from wafleet.core import log_context
from wafleet.core.log_context import (
    ContextFields,
    bind_request_id,
    request_id_from,
    set_process_fields,
    unbind_request_id,
)
from wafleet.core.logs import JsonFormatter, redact_secret, setup_logging


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFields())
    logger = logging.getLogger("test.json")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    saved = dict(log_context._process_fields)
    yield logger, stream
    logger.removeHandler(handler)
    log_context._process_fields.clear()
    log_context._process_fields.update(saved)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_is_one_object_with_the_records_fields(
    capture: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = capture
    logger.info("session started: %s", "ok", extra={"accountId": "acc1", "attempt": 3})
    [line] = lines(stream)
    assert line["level"] == "info"
    assert line["logger"] == "test.json"
    assert line["message"] == "session started: ok"
    assert line["accountId"] == "acc1"
    assert line["attempt"] == 3
    assert str(line["time"]).endswith("Z")


def test_the_request_id_and_the_shard_are_on_every_line_of_their_context(
    capture: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = capture
    set_process_fields(shard=4)
    logger.info("outside a request")
    token = bind_request_id("req-1")
    try:
        logger.info("inside")
        logger.info("its own id wins", extra={"requestId": "explicit"})
    finally:
        unbind_request_id(token)
    outside, inside, explicit = lines(stream)
    assert outside["shard"] == 4 and "requestId" not in outside
    assert inside["requestId"] == "req-1" and inside["shard"] == 4
    assert explicit["requestId"] == "explicit"


def test_secrets_are_masked_and_a_traceback_is_one_field(
    capture: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = capture
    redact_secret("s3cret-token-value")
    try:
        raise RuntimeError("failed with s3cret-token-value")
    except RuntimeError:
        logger.exception("Authorization: Bearer abcdefghijkl and s3cret-token-value")
    [line] = lines(stream)
    assert "s3cret-token-value" not in json.dumps(line)
    assert "abcdefghijkl" not in str(line["message"])
    assert "RuntimeError" in str(line["exception"])
    assert len(stream.getvalue().splitlines()) == 1  # the traceback did not break the line


def test_text_stays_readable_in_any_script(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    logger.info("name: Ana-Maria Ștefănescu")
    assert "Ștefănescu" in stream.getvalue()
    assert lines(stream)[0]["message"] == "name: Ana-Maria Ștefănescu"


def test_a_client_request_id_is_kept_only_when_fit_to_log() -> None:
    assert request_id_from("trace-42.a:b_c") == "trace-42.a:b_c"
    for unfit in (None, "", "a b", "x" * 129, "line\nbreak", 'quote"'):
        made = request_id_from(unfit)
        assert made != unfit and len(made) == 16


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="not one of: text, json"):
        setup_logging("info", "xml")
