"""No secret and no phone number in a log line: the access-log filter and the formatter.

uvicorn writes its access lines in its protocol code, which the in-process test client
skips; so these tests feed records shaped exactly as uvicorn makes them (the end-to-end
test in tests/e2e/test_standalone_log_secrets.py reads a real process's log).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from uvicorn.logging import AccessFormatter

from wafleet.core.logs import (
    ACCESS_LOGGER,
    AccessLogMask,
    FieldsFormatter,
    mask_target,
    redact,
    redact_pattern,
    redact_secret,
    setup_logging,
)

SIG = "Xb3k9Qm2Lr8Tz1Vw5Yc7Nd4Jf6Hg0Ps2Ua8Ei3Oo5Kq"
ADMIN = "unit-test-admin-token-a1b2c3d4e5f6"


def access_record(target: str, status: int = 200) -> logging.LogRecord:
    """A record as uvicorn's h11/httptools protocols log one request."""
    return logging.LogRecord(
        ACCESS_LOGGER,
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:50312", "GET", target, "1.1", status),
        None,
    )


def through_filter(record: logging.LogRecord) -> str:
    assert AccessLogMask().filter(record) is True
    return FieldsFormatter("%(name)s: %(message)s").format(record)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (
            f"/api/whatsapp/qr/wa-abcdefghijklmnopabcd?exp=1700000900&sig={SIG}",
            "/api/whatsapp/qr/wa-abcdefghijklmnopabcd?exp=1700000900&sig=***",
        ),
        (f"/api/whatsapp/qr-visual?token={ADMIN}", "/api/whatsapp/qr-visual?token=***"),
        (
            "/x?Token=a&KEY=b&secret=c&api_key=d&password=e",
            "/x?Token=***&KEY=***&secret=***&api_key=***&password=***",
        ),
        ("/sim/messages?phone=%2B40712345678", "/sim/messages?phone=+407****78"),
        ("/sim/messages?phone=+40712345678", "/sim/messages?phone=+407****78"),
        ("/sim/messages?phone=%2B40+712+345+678", "/sim/messages?phone=+40+****78"),
        ("/sim/lid?phone=40712345678", "/sim/lid?phone=4071****78"),
        (
            "/api/whatsapp/messages?accountId=wa-abcdefghijklmnopabcd"
            "&threadId=wa-abcdefghijklmnopabcd__40799000001%40s.whatsapp.net&limit=100",
            "/api/whatsapp/messages?accountId=wa-abcdefghijklmnopabcd"
            "&threadId=wa-abcdefghijklmnopabcd__4079****01%40s.whatsapp.net&limit=100",
        ),
        ("/sim/devices/%2B40712345678", "/sim/devices/%2B407****78"),
        ("/sim/devices/+40712345678/x", "/sim/devices/+407****78/x"),
        # Not phone numbers: hex ids, short numbers, limits, expiries, cursors.
        (
            "/api/whatsapp/outbox/ob-1234567890abcdef1234567890abcdef",
            "/api/whatsapp/outbox/ob-1234567890abcdef1234567890abcdef",
        ),
        (
            "/api/whatsapp/accounts?limit=100&cursor=MjAyNHx3YS1h",
            "/api/whatsapp/accounts?limit=100&cursor=MjAyNHx3YS1h",
        ),
        ("/health", "/health"),
        ("/x?flag&y=", "/x?flag&y="),
    ],
)
def test_access_targets_are_masked(target: str, expected: str) -> None:
    assert mask_target(target) == expected
    line = through_filter(access_record(target))
    assert line == f'uvicorn.access: 127.0.0.1:50312 - "GET {expected} HTTP/1.1" 200'


def test_uvicorns_own_access_formatter_gets_the_masked_target() -> None:
    record = access_record(f"/sim/messages?phone=%2B40712345678&sig={SIG}", 401)
    AccessLogMask().filter(record)
    line = AccessFormatter('%(client_addr)s "%(request_line)s" %(status_code)s').format(record)
    assert (
        line
        == '127.0.0.1:50312 "GET /sim/messages?phone=+407****78&sig=*** HTTP/1.1" 401 Unauthorized'
    )


def test_a_record_of_another_shape_is_masked_whole() -> None:
    record = logging.LogRecord(
        ACCESS_LOGGER,
        logging.INFO,
        __file__,
        1,
        "%s %s",
        ("GET", "/sim/lid?phone=40712345678"),
        None,
    )
    assert through_filter(record) == "uvicorn.access: GET /sim/lid?phone=4071****78"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The root logger as ``setup_logging`` leaves it, writing into a buffer."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    access = logging.getLogger(ACCESS_LOGGER)
    saved_filters = access.filters[:]
    # Earlier tests may have run uvicorn in this process with its own logging config, which
    # gives its loggers handlers and stops their propagation: reset them as a fresh
    # process has them (``wafleet`` runs uvicorn with log_config=None).
    uvicorn_loggers = [logging.getLogger("uvicorn"), access]
    saved_state = [(lg.level, lg.handlers[:], lg.propagate, lg.disabled) for lg in uvicorn_loggers]
    for lg in uvicorn_loggers:
        lg.setLevel(logging.NOTSET)
        lg.handlers[:] = []
        lg.propagate, lg.disabled = True, False
    setup_logging("debug")
    setup_logging("debug")  # twice, as tests and restarts do: one filter still
    assert sum(isinstance(f, AccessLogMask) for f in access.filters) == 1
    buffer = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        access.filters[:] = saved_filters
        for lg, (level, handlers, propagate, disabled) in zip(
            uvicorn_loggers, saved_state, strict=True
        ):
            lg.setLevel(level)
            lg.handlers[:] = handlers
            lg.propagate, lg.disabled = propagate, disabled


def test_registered_secrets_never_reach_a_line(captured: io.StringIO) -> None:
    redact_secret(ADMIN)
    log = logging.getLogger("wafleet.test")
    log.info("token is %s", ADMIN)
    log.warning("request", extra={"authorization": f"Bearer {ADMIN}", "path": f"/x?token={ADMIN}"})
    try:
        raise ValueError(f"bad token {ADMIN}")
    except ValueError:
        log.exception("failed")
    # websockets logs handshake headers at debug level, one per line.
    logging.getLogger("websockets.server").debug("< %s: %s", "Authorization", f"Bearer {ADMIN}")
    logging.getLogger("websockets.server").debug(
        "< %s: %s", "authorization", "Bearer other-credential-9"
    )
    logging.getLogger(ACCESS_LOGGER).info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", f"/q?token={ADMIN}", "1.1", 401
    )
    text = captured.getvalue()
    assert ADMIN not in text
    assert "other-credential-9" not in text
    assert text.count("***") >= 6
    assert "token is ***" in text
    assert "ValueError: bad token ***" in text
    assert "< Authorization: ***" in text
    assert 'GET /q?token=*** HTTP/1.1" 401' in text


def test_registered_patterns_are_masked_anywhere() -> None:
    redact_pattern(r"^wfk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")
    secret = "wfk_0123456789ab_" + "x" * 43
    assert redact(f"key {secret} revoked") == "key *** revoked"
    assert redact("wfk_short") == "wfk_short"


def test_redact_leaves_ordinary_text_alone() -> None:
    for text in (
        "the bearer token is not valid",
        "missing bearer token; send it",
        'standalone started {"accounts": 3}',
        "GET /api/whatsapp/accounts?limit=10",
    ):
        assert redact(text) == text
    assert redact("Authorization: Basic dXNlcjpwYXNzd29yZA==") == "Authorization: ***"
    assert redact('{"Authorization": "Bearer abcdefgh123"}') == '{"Authorization": "***"}'
    assert redact("curl -H 'Authorization: Bearer abcdefgh123' /x") == (
        "curl -H 'Authorization: ***' /x"
    )
