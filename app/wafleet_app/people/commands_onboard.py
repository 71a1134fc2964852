"""``wafleet onboard FILE.csv``: add a batch of accounts, paced, resumable.

Each row ends with one result: ``added``; ``exists`` (the account was there, not linked
yet: a QRTimeout or LoggedOut one gets a new QR code); ``skipped`` (already linked:
Connected); ``failed`` (the API refused it, with its reason) or ``bad`` (the row itself,
with its line number). A second run of the same file therefore adds only what is
missing. Adds (and new QR requests) are ``--every`` seconds apart, so WhatsApp never sees
hundreds of new links at once. The QR codes are shown one row at a time with ``--wait``,
else on the QR page for a browser whose signed link the run prints at the end.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import phonenumbers
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from wafleet_app.people.client import Json
from wafleet_app.people.commands_accounts import RELINK
from wafleet_app.people.context import Context
from wafleet_app.people.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ApiFailure,
    UsageError,
)
from wafleet_app.people.onboard_csv import BadRow, Row, Sheet, read_sheet
from wafleet_app.people.render import clean, masked
from wafleet_app.people.watch import Codes, follow

DEFAULT_EVERY = 5.0  # seconds between two adds
STYLES = {"added": "green", "exists": "cyan", "skipped": "dim", "failed": "red", "bad": "red"}
WAITING = ("added", "exists")  # results whose account waits for a scan


@dataclass(frozen=True)
class Outcome:
    line: int
    result: str  # added | exists | skipped | failed | bad
    detail: str
    phone: str | None = None  # masked
    account_id: str | None = None
    linked: bool | None = None  # with --wait: whether the phone linked it

    def text(self) -> Text:
        line = Text(f"line {self.line:<4} ")
        line.append(f"{self.result:<8}", style=STYLES.get(self.result, ""))
        line.append(f" {self.phone or '':<10}  {self.detail}")
        return line


@dataclass
class Batch:
    ctx: Context
    sheet: Sheet
    every: float
    wait: bool
    existing: dict[str, Json] = field(default_factory=dict)  # phone -> account
    outcomes: list[Outcome] = field(default_factory=list)
    last_call: float | None = None
    relinked: dict[str, Json] = field(default_factory=dict)  # id -> as before regenerate-qr
    progress: Progress | None = None  # the bar, when one is shown
    task: TaskID | None = None

    def _describe(self, text: str) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, description=text)

    def pace(self) -> None:
        """Sleep until ``every`` seconds have passed since the previous add answered."""
        if self.last_call is not None:
            left = self.last_call + self.every - time.monotonic()
            while left > 0:
                self._describe(f"next add in {left:.0f} s")
                time.sleep(min(left, 0.5))
                left = self.last_call + self.every - time.monotonic()

    def paced(self, call: Callable[[], Json]) -> Json:
        """``call`` (an add or a regenerate-qr), ``every`` seconds after the previous one."""
        self.pace()
        try:
            return call()
        finally:
            self.last_call = time.monotonic()

    def one(self, row: Row) -> Outcome:
        phone = masked(row.phone)
        account = self.existing.get(row.phone)
        if account is None:
            answer = self.paced(lambda: self.ctx.api.add_account(row.phone, row.name, row.login))
            account = self.existing[row.phone] = answer["account"]
            if account.get("phase") != "Connected":
                result = "added" if answer.get("created") else "exists"
                return Outcome(
                    row.line, result, f"{account['id']}, waiting for a scan", phone, account["id"]
                )
        account_id, phase = str(account["id"]), clean(account.get("phase"))
        if phase == "Connected":
            return Outcome(row.line, "skipped", "already linked (Connected)", phone, account_id)
        if phase not in RELINK:
            detail = f"{account_id} was there ({phase}), not linked yet"
            return Outcome(row.line, "exists", detail, phone, account_id)
        self.paced(lambda: self.ctx.api.action("regenerate-qr", account_id))
        self.relinked[account_id] = account
        detail = f"{account_id} was {phase}: a new QR code was requested"
        return Outcome(row.line, "exists", detail, phone, account_id)

    def record(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if self.ctx.json:
            self.ctx.emit(asdict(outcome))
        else:
            console = self.progress.console if self.progress is not None else self.ctx.out
            console.print(outcome.text(), soft_wrap=True)

    def link(self, outcome: Outcome) -> Outcome:
        """--wait: show this row's code and follow it until linked (or it needs a person)."""
        assert outcome.account_id is not None
        self.ctx.out.rule(f"line {outcome.line}: {outcome.phone}")
        before = self.relinked.get(outcome.account_id)
        codes = Codes() if before is None else Codes.after_action(before)
        code = follow(self.ctx, self.ctx.api.account(outcome.account_id), codes)
        if code == EXIT_INTERRUPTED:
            raise KeyboardInterrupt
        return replace(outcome, linked=code == EXIT_OK)

    def outcome(self, item: Row | BadRow) -> Outcome:
        """The row's result; an ApiFailure that every later row would meet too (the
        server unreachable, the key refused) is raised instead."""
        if isinstance(item, BadRow):
            return Outcome(item.line, "bad", item.reason)
        try:
            outcome = self.one(item)
        except ApiFailure as exc:
            if exc.transient or exc.status == 401:
                raise
            return Outcome(item.line, "failed", exc.message, masked(item.phone))
        if self.wait and outcome.result in WAITING:
            outcome = self.link(outcome)
        return outcome

    def run(self) -> int:
        for account in self.ctx.api.accounts():
            self.existing[str(account.get("phone"))] = account
        items: list[Row | BadRow] = [*self.sheet.rows, *self.sheet.bad]
        items.sort(key=lambda item: item.line)
        show_bar = self.ctx.out.is_terminal and not self.ctx.json and not self.wait
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.ctx.out,
            transient=True,
            disable=not show_bar,
        )
        with progress:
            if show_bar:
                self.progress, self.task = progress, progress.add_task("", total=len(items))
            for item in items:
                self._describe(f"line {item.line}")
                try:
                    self.record(self.outcome(item))
                except ApiFailure as exc:
                    self.record(Outcome(item.line, "failed", exc.message))
                    return self.stopped(exc)
                if self.task is not None:
                    progress.advance(self.task)
        self.progress = None
        return self.finish()

    def summary(self) -> str:
        counts = Counter(outcome.result for outcome in self.outcomes)
        names = ("added", "exists", "skipped", "failed", "bad")
        parts = [f"{counts[name]} {name}" for name in names if counts[name]]
        if self.wait:
            parts.append(f"{sum(1 for o in self.outcomes if o.linked)} linked now")
        done = f"{len(self.outcomes)} of {self.sheet.total} rows"
        return f"{done}: {', '.join(parts or ['nothing'])}"

    def stopped(self, exc: ApiFailure) -> int:
        self.ctx.err.print(f"wafleet: stopped: {exc}", style="red", markup=False)
        self.ctx.say(self.summary())
        self.ctx.say("Run the same command again to go on: what was added is not added twice.")
        return EXIT_FAILED

    def finish(self) -> int:
        self.ctx.say(self.summary(), "bold")
        counts = Counter(outcome.result for outcome in self.outcomes)
        if self.ctx.json:
            self.ctx.emit({"summary": dict(counts), "rows": self.sheet.total})
        waiting = [o for o in self.outcomes if o.result in WAITING and not o.linked]
        if waiting and not self.wait:
            self.scan_hint(len(waiting))
        problems = counts["failed"] + counts["bad"] > 0
        return EXIT_FAILED if problems or (self.wait and waiting) else EXIT_OK

    def scan_hint(self, count: int) -> None:
        try:
            link = self.ctx.api.qr_link(None)
            where = (
                f"open {link.get('url')} in a browser (the QR page of every account waiting "
                f"for a scan, until {link.get('expiresAt')})"
            )
        except ApiFailure:  # a key limited to some accounts cannot open that page
            where = "run `wafleet accounts show ID --wait` for each"
        self.ctx.say(
            f"{count} account(s) wait for a scan: {where}; "
            "or run again with --wait to link them one by one."
        )


def check_region(raw: str | None) -> str | None:
    if raw is None:
        return None
    region = raw.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise UsageError(f"--region: '{raw[:10]}' is not a region code such as RO, DE or US")
    return region


def onboard(ctx: Context, args: argparse.Namespace) -> int:
    """Add every account of a CSV file (see the module doc)."""
    if args.every < 0:
        raise UsageError("--every must be 0 or more seconds")
    sheet = read_sheet(args.file, check_region(args.region))
    batch = Batch(ctx, sheet, every=args.every, wait=args.wait)
    try:
        return batch.run()
    except KeyboardInterrupt:
        ctx.say(batch.summary())
        ctx.say("Stopped. Run the same command again to go on: what was added is not added twice.")
        return EXIT_INTERRUPTED
