"""``wafleet migrate-legacy``, one account after another: decide, convert, verify, place.

Each account ends in one outcome, with a sentence saying why:

- ``migrated``: created with its legacy id, name and phone; its linked session converted
  and placed (``would migrate`` in a dry run, where nothing is placed);
- ``skipped``: nothing to do (already migrated with the same device, or deleted on the
  legacy server);
- ``left for link``: created, but its session could not be converted (the reason says
  why): it links anew with a QR code or a pairing code;
- ``conflict``: the target holds something else under its id or phone; nothing is touched
  (``--force`` replaces a session store holding another device, standalone only);
- ``failed``: the target refused (the reason says what to fix); run again after.

Running it again is safe: what is in place is skipped. The legacy folder and documents
are only read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from wafleet.core.ids import account_id_for
from wafleet.core.models import AccountSpec
from wafleet.core.phones import InvalidPhone, normalize_phone
from wafleet.migrate.baileys import DAMAGED, read_auth_dir, read_backup_files
from wafleet.migrate.baileys_model import AuthState
from wafleet.migrate.convert import Conversion, convert
from wafleet.migrate.errors import Unconvertible
from wafleet.migrate.sources import LegacyAccount
from wafleet.migrate.targets import Target
from wafleet.migrate.verify import Expected, Verification, verify_many

logger = logging.getLogger(__name__)

Outcome = Literal["migrated", "would migrate", "skipped", "left for link", "conflict", "failed"]
ATTENTION: frozenset[str] = frozenset({"left for link", "conflict", "failed"})


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    force: bool = False
    id_salt: str = "wafleet"
    default_region: str | None = None


@dataclass(frozen=True)
class Result:
    account_id: str
    outcome: Outcome
    reason: str
    source: str | None = None  # folder | firestore backup
    jid: str | None = None
    seconds: float = 0.0
    dropped: tuple[str, ...] = ()  # what Baileys held that whatsmeow has no place for


def _linked_jid(legacy: LegacyAccount, state: AuthState | None) -> str | None:
    """The device JID of the account's session: from the parsed state, or (when another file
    of the state is garbled) from creds.json alone, so the account can still be created."""
    if state is not None:
        return state.creds.me.id if state.creds.me is not None else None
    try:
        if legacy.folder is not None:
            text = (legacy.folder / "creds.json").read_text(encoding="utf-8")
        elif legacy.backup_files is not None:
            text = legacy.backup_files["creds.json"]
        else:
            return None
        me = json.loads(text).get("me") or {}
    except (OSError, ValueError, KeyError, AttributeError):
        return None
    jid = me.get("id") if isinstance(me, dict) else None
    return jid if isinstance(jid, str) else None


def _phone_of(legacy: LegacyAccount, state: AuthState | None, options: Options) -> str | None:
    if legacy.phone is not None:
        return legacy.phone
    jid = _linked_jid(legacy, state)
    if jid is None:
        return None
    user = jid.split("@", 1)[0].split(":", 1)[0]
    try:
        return normalize_phone("+" + user, options.default_region)
    except InvalidPhone:
        return None


def _damaged(state: AuthState) -> str:
    """What a result adds when damaged key files were left out (they are in ``dropped``)."""
    count = sum(1 for item in state.ignored if item.reason.startswith(DAMAGED))
    if count == 0:
        return ""
    return f"; {count} damaged key file{'s' if count > 1 else ''} left out (see dropped)"


def _read(legacy: LegacyAccount) -> AuthState:
    if legacy.folder is not None:
        return read_auth_dir(legacy.folder)
    if legacy.backup_files is not None:
        return read_backup_files(legacy.backup_files)
    raise Unconvertible(None, "no linked session was found (no creds.json, no backup)")


def _spec(legacy: LegacyAccount, phone: str, state: AuthState | None, salt: str) -> AccountSpec:
    me = state.creds.me if state is not None else None
    name = legacy.name or (me.name if me is not None else None) or f"Account {phone[-4:]}"
    return AccountSpec(
        id=legacy.id,
        resource_name=account_id_for(phone, salt),
        phone=phone,
        name=name[:100],
        created_at=datetime.now(UTC),
    )


@dataclass(frozen=True)
class _Converted:
    """An account converted into the scratch folder, waiting for its verification."""

    legacy: LegacyAccount
    spec: AccountSpec
    state: AuthState
    conversion: Conversion
    store: Path
    exists: bool  # the target has the account already (without this session)


@dataclass
class Migration:
    """Runs the accounts through one target: convert each, verify all (one neonize child
    for the lot), then place what verified."""

    target: Target
    options: Options
    progress: Callable[[Result], None] | None = None

    async def run(self, accounts: list[LegacyAccount]) -> list[Result]:
        results: dict[str, Result] = {}
        with tempfile.TemporaryDirectory(prefix="wafleet-migrate-") as scratch:
            pending: list[_Converted] = []
            phones: dict[str, str] = {}
            for legacy in accounts:
                started = time.monotonic()
                outcome = await self._prepare(legacy, phones, Path(scratch))
                if isinstance(outcome, Result):
                    self._done(results, outcome, started)
                else:
                    pending.append(outcome)
            started = time.monotonic()
            verified = verify_many([Expected(c.store, c.state, c.spec.name) for c in pending])
            share = (time.monotonic() - started) / max(len(pending), 1)
            for converted, verification in zip(pending, verified, strict=True):
                begun = time.monotonic() - share
                self._done(results, await self._place(converted, verification), begun)
        return [results[a.id] for a in accounts]

    def _done(self, results: dict[str, Result], result: Result, started: float) -> None:
        result = replace(result, seconds=result.seconds + time.monotonic() - started)
        logger.info(
            "legacy account %s: %s", result.account_id, result.outcome, extra={"why": result.reason}
        )
        if self.progress is not None:
            self.progress(result)
        results[result.account_id] = result

    async def _prepare(
        self, legacy: LegacyAccount, phones: dict[str, str], scratch: Path
    ) -> Result | _Converted:
        source = legacy.auth_source
        if legacy.status == "deleted":
            return Result(legacy.id, "skipped", "deleted on the legacy server", source)
        try:
            state: AuthState | None = _read(legacy)
            problem: Unconvertible | None = None
        except Unconvertible as exc:
            state, problem = None, exc
        phone = _phone_of(legacy, state, self.options)
        if phone is None:
            why = (
                "no phone number: it has no linked session and no accounts document was read "
                "(--firestore reads them); add it again by phone to link it anew"
            )
            return Result(legacy.id, "failed", why, source)
        if phone in phones:
            why = f"its phone is already that of {phones[phone]}; one of them is stale"
            return Result(legacy.id, "conflict", why, source)
        phones[phone] = legacy.id
        spec = _spec(legacy, phone, state, self.options.id_salt)
        holding = await self.target.holding(spec)
        if holding.other is not None:
            why = f"wafleet already has this phone as account {holding.other}; it was left alone"
            return Result(legacy.id, "conflict", why, source)
        if state is None:
            assert problem is not None
            return await self._for_link(spec, holding.account, problem.reason, source)
        store = scratch / f"{legacy.id}.db"
        try:
            conversion = await asyncio.to_thread(convert, state, store, push_name=spec.name)
        except Unconvertible as exc:
            return await self._for_link(spec, holding.account, exc.reason, source)
        if holding.settled and holding.device_jid in (None, conversion.jid):
            return Result(spec.id, "skipped", "already migrated", source, conversion.jid)
        if holding.device_jid not in (None, conversion.jid) and not self.options.force:
            why = (
                f"its session store already holds another device ({holding.device_jid}); "
                "--force replaces it"
            )
            return Result(spec.id, "conflict", why, source, conversion.jid)
        return _Converted(legacy, spec, state, conversion, store, holding.account)

    async def _place(self, converted: _Converted, verification: Verification) -> Result:
        spec, conversion = converted.spec, converted.conversion
        source = converted.legacy.auth_source
        dropped = conversion.report.dropped
        if not verification.ok:
            failed = "; ".join(f"{c.name}: {c.detail}" for c in verification.failures())
            return await self._for_link(
                spec,
                converted.exists,
                f"the converted store did not verify ({failed[:240]})",
                source,
            )
        if self.options.dry_run:
            return Result(
                spec.id,
                "would migrate",
                "converted and verified" + _damaged(converted.state),
                source,
                conversion.jid,
                dropped=dropped,
            )
        try:
            await self.target.place(spec, converted.store)
        except Exception as exc:  # the target's refusal, reported; the next account goes on
            return Result(spec.id, "failed", str(exc)[:300], source, conversion.jid)
        return Result(
            spec.id,
            "migrated",
            "the linked device moved over" + _damaged(converted.state),
            source,
            conversion.jid,
            dropped=dropped,
        )

    async def _for_link(
        self, spec: AccountSpec, exists: bool, reason: str, source: str | None
    ) -> Result:
        if exists:
            return Result(spec.id, "skipped", f"already created; {reason}", source)
        if not self.options.dry_run:
            try:
                await self.target.place(spec, None)
            except Exception as exc:
                return Result(spec.id, "failed", str(exc)[:300], source)
        return Result(spec.id, "left for link", reason, source)
