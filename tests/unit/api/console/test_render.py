"""What the templates show: times for people, numbers from JIDs, page links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from wafleet.core.phases import Phase
from wafleet_api.console.fleet import FleetQuery, page_numbers
from wafleet_api.console.render import TONES, ago, clock, jid_number

NOW = datetime(2026, 12, 1, 14, 3, 27, tzinfo=UTC)


def test_ago_never_counts_seconds() -> None:
    assert ago(None) == "never"
    assert ago(NOW - timedelta(seconds=59), NOW) == "just now"
    assert ago(NOW - timedelta(minutes=3, seconds=5), NOW) == "3 min ago"
    assert ago(NOW - timedelta(hours=5), NOW) == "5 h ago"
    assert ago(NOW - timedelta(days=2, hours=1), NOW) == "2 d ago"


def test_clock_shows_the_day_only_before_today() -> None:
    assert clock(NOW - timedelta(minutes=1), NOW) == "14:02:27"
    assert clock(NOW - timedelta(days=1), NOW) == "Nov 30 14:03"


def test_jid_numbers() -> None:
    assert jid_number("40799000001@s.whatsapp.net") == "+40799000001"
    assert jid_number("12345@lid") == "12345@lid"
    assert jid_number("120363@g.us") == "120363@g.us"


def test_every_phase_has_a_tone() -> None:
    assert set(TONES) == set(Phase)


def test_page_links_around_the_current_page() -> None:
    assert page_numbers(1, 1) == [1]
    assert page_numbers(1, 20) == [1, 2, 3, None, 20]
    assert page_numbers(10, 20) == [1, None, 8, 9, 10, 11, 12, None, 20]
    assert page_numbers(4, 20) == [1, 2, 3, 4, 5, 6, None, 20]


def test_a_query_reads_leniently_and_writes_only_what_differs() -> None:
    query = FleetQuery.of({"q": "  Shop   Ana ", "phase": "Connected", "page": "3"})
    assert query == FleetQuery("Shop Ana", Phase.CONNECTED, 3)
    assert query.query_string() == "q=Shop+Ana&phase=Connected&page=3"
    assert query.with_phase(None).query_string() == "q=Shop+Ana"  # and back to page 1
    assert FleetQuery.of({"page": "-1", "phase": "nope", "q": "x" * 500}).query_string() == (
        "q=" + "x" * 100
    )
    assert FleetQuery.of({}).query_string() == ""
