"""The fleet table's query: search, phase filter and pages, over the in-memory snapshot.

What the REST listing reads (``AccountSnapshot``, already in creation order, the same
object until an account changes) is filtered here in one pass and only the page asked for
goes on to be rendered: at 1,000 accounts that is a scan of 1,000 records in memory
(about 0.1 ms; 1 ms with a search) and 50 rows of HTML, never 1,000.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from wafleet.core.models import Account
from wafleet.core.phases import Phase
from wafleet_api.account_index import AccountSnapshot

PAGE_SIZE = 50
MAX_QUERY = 100  # characters of a search
MAX_PAGE = 10_000


@dataclass(frozen=True)
class FleetQuery:
    """What the person asked for; built leniently from the URL (a bad value is ignored)."""

    q: str = ""
    phase: Phase | None = None
    page: int = 1

    @classmethod
    def of(cls, params: Mapping[str, str]) -> FleetQuery:
        q = " ".join(params.get("q", "").split())[:MAX_QUERY]
        raw_phase = params.get("phase", "")
        phase = Phase(raw_phase) if raw_phase in Phase._value2member_map_ else None
        raw_page = params.get("page", "1")
        page = int(raw_page) if raw_page.isascii() and raw_page.isdigit() else 1
        return cls(q=q, phase=phase, page=min(max(page, 1), MAX_PAGE))

    def with_page(self, page: int) -> FleetQuery:
        return replace(self, page=page)

    def with_phase(self, phase: Phase | None) -> FleetQuery:
        """Another filter starts again on the first page."""
        return replace(self, phase=phase, page=1)

    def query_string(self) -> str:
        """This query as URL parameters, the defaults left out ("" for none)."""
        params: dict[str, str] = {}
        if self.q:
            params["q"] = self.q
        if self.phase is not None:
            params["phase"] = self.phase.value
        if self.page != 1:
            params["page"] = str(self.page)
        return urlencode(params)


@dataclass(frozen=True)
class FleetPage:
    rows: Sequence[Account]
    total: int  # accounts the caller sees
    matched: int  # of those, the ones the search and filter keep
    page: int  # the page shown (the last one if the query asked for one past it)
    pages: int
    counts: Sequence[tuple[Phase, int]]  # the caller's accounts by phase, in Phase order
    first: int  # 1-based position of the first row shown (0: none)

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1 if self.rows else 0


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


class _Matcher:
    """Name (any case), id, or phone digits; a number written with a leading 0 (local, or
    the 00 international prefix) matches its E.164 form too."""

    def __init__(self, q: str) -> None:
        self.text = q.casefold()
        digits = _digits(q)
        self.digits = digits.lstrip("0") if len(digits) >= 3 else ""

    def __call__(self, account: Account) -> bool:
        spec = account.spec
        if self.text in spec.name.casefold() or self.text in spec.id:
            return True
        return bool(self.digits) and self.digits in spec.phone  # E.164: "+" and digits


def fleet_page(snapshot: AccountSnapshot, query: FleetQuery, size: int = PAGE_SIZE) -> FleetPage:
    """The page of ``snapshot`` (already narrowed to what the caller may read)."""
    accounts = snapshot.accounts
    counted = Counter(a.status.phase for a in accounts)
    matches = _Matcher(query.q) if query.q else None
    kept = [
        a
        for a in accounts
        if (query.phase is None or a.status.phase == query.phase)
        and (matches is None or matches(a))
    ]
    pages = max(1, -(-len(kept) // size))
    page = min(query.page, pages)
    start = (page - 1) * size
    rows = kept[start : start + size]
    return FleetPage(
        rows=rows,
        total=len(accounts),
        matched=len(kept),
        page=page,
        pages=pages,
        counts=[(phase, counted[phase]) for phase in Phase if counted[phase]],
        first=start + 1 if rows else 0,
    )


def page_numbers(current: int, pages: int) -> list[int | None]:
    """The page links to show: the first, the last, and two around the current one;
    None where some are left out (shown as an ellipsis)."""
    wanted = sorted({1, pages, *range(max(1, current - 2), min(pages, current + 2) + 1)})
    shown: list[int | None] = []
    for number in wanted:
        if shown and isinstance(shown[-1], int) and number - shown[-1] > 1:
            shown.append(None)
        shown.append(number)
    return shown
