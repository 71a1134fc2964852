"""metav1.Time and metav1.MicroTime parsing: Go's time.Parse layouts and error texts."""

from __future__ import annotations

import pytest
from k8s_emulator.gotime import GoTimeError, normalize

MICRO = '"2006-01-02T15:04:05.000000Z07:00"'


def test_micro_time_needs_exactly_six_fractional_digits() -> None:
    assert normalize("2026-12-01T09:00:00.123456Z", micro=True) == "2026-12-01T09:00:00.123456Z"
    assert normalize("2026-12-01T10:30:00.000001+01:30", micro=True) == (
        "2026-12-01T09:00:00.000001Z"
    )
    cases = {
        "2026-12-01T09:00:00.123Z": 'cannot parse ".123Z" as ".000000"',
        "2026-12-01T09:00:00Z": 'cannot parse "Z" as ".000000"',
        "2026-12-01T09:00:00.1234567Z": 'cannot parse "7Z" as "Z07:00"',
        "2026-12-01T09:00:00.12345xZ": 'cannot parse ".12345xZ" as ".000000"',
        "2026-12-01 09:00:00.123456Z": 'cannot parse " 09:00:00.123456Z" as "T"',
    }
    for value, tail in cases.items():
        with pytest.raises(GoTimeError) as caught:
            normalize(value, micro=True)
        assert str(caught.value) == f'parsing time "{value}" as {MICRO}: {tail}'


def test_time_accepts_a_fraction_and_renders_whole_seconds_in_utc() -> None:
    assert normalize("2026-12-01T09:00:00Z", micro=False) == "2026-12-01T09:00:00Z"
    assert normalize("2026-12-01T09:00:00.987Z", micro=False) == "2026-12-01T09:00:00Z"
    assert normalize("2026-12-01T11:00:00+02:00", micro=False) == "2026-12-01T09:00:00Z"
    with pytest.raises(GoTimeError) as caught:
        normalize("2026-12-01T09:00:00", micro=False)
    assert str(caught.value) == (
        'parsing time "2026-12-01T09:00:00" as "2006-01-02T15:04:05Z07:00": '
        'cannot parse "" as "Z07:00"'
    )


def test_range_and_extra_text_errors() -> None:
    errors = {
        "2026-13-01T09:00:00Z": 'parsing time "2026-13-01T09:00:00Z": month out of range',
        "2026-02-30T09:00:00Z": 'parsing time "2026-02-30T09:00:00Z": day out of range',
        "2026-12-01T24:00:00Z": 'parsing time "2026-12-01T24:00:00Z": hour out of range',
        "2026-12-01T09:00:00Zjunk": ('parsing time "2026-12-01T09:00:00Zjunk": extra text: "junk"'),
        "26-12-01T09:00:00Z": (
            'parsing time "26-12-01T09:00:00Z" as "2006-01-02T15:04:05Z07:00": '
            'cannot parse "26-12-01T09:00:00Z" as "2006"'
        ),
    }
    for value, message in errors.items():
        with pytest.raises(GoTimeError) as caught:
            normalize(value, micro=False)
        assert str(caught.value) == message
