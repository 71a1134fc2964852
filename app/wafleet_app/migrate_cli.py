"""``wafleet migrate-legacy``: move the legacy server's accounts and linked sessions over.

Reads the legacy sessions folder and/or the legacy Firestore collections, and creates each
account, with its legacy id, in standalone mode's registry or as a WhatsAppAccount in a
cluster, its Baileys session converted to a neonize store. See docs/migration.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wafleet.core.legacy_env import translate_legacy
from wafleet.core.logs import setup_logging
from wafleet.core.settings import Settings

if TYPE_CHECKING:  # the migration's modules load only when the command runs
    from rich.console import Console

    from wafleet.migrate.plan import Result
    from wafleet.migrate.sources import Gathered, LegacyAccount
    from wafleet.migrate.targets import Target

EXIT_ATTENTION = 3  # the run finished; some accounts need a look (conflict, failed, link)


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "migrate-legacy",
        help="move the legacy server's accounts and linked sessions over (no new scan)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sessions-dir",
        type=Path,
        help="the legacy sessions folder ({SESSIONS_PATH}/{accountId}/creds.json); "
        "default: SESSIONS_PATH when set",
    )
    parser.add_argument(
        "--firestore",
        action="store_true",
        help="also read the legacy accounts and wa_sessions collections (the project of "
        "WAFLEET_FIRESTORE_PROJECT or FIREBASE_SERVICE_ACCOUNT_JSON)",
    )
    parser.add_argument(
        "--to",
        choices=("standalone", "cluster"),
        default="standalone",
        help="where the accounts go (default: standalone)",
    )
    parser.add_argument(
        "--data-dir", type=Path, help="standalone: default ./data (WAFLEET_DATA_DIR)"
    )
    parser.add_argument(
        "--namespace", help="cluster: the namespace of wafleet (default: WAFLEET_NAMESPACE)"
    )
    parser.add_argument("--only", action="append", metavar="ID", help="only this account (repeat)")
    parser.add_argument("--dry-run", action="store_true", help="convert and verify; place nothing")
    parser.add_argument(
        "--force",
        action="store_true",
        help="standalone: replace a session store that holds another device",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON lines")


async def _gather(args: argparse.Namespace, settings: Settings, env: Mapping[str, str]) -> Gathered:
    from wafleet.migrate.sources import Gathered, read_firestore, scan_sessions_dir

    gathered = Gathered()
    legacy_path = (env.get("SESSIONS_PATH") or "").strip()  # the legacy server's variable
    sessions = args.sessions_dir or (Path(legacy_path) if legacy_path else None)
    if sessions is None and not args.firestore:
        raise SystemExit(
            "wafleet migrate-legacy: name the legacy data: --sessions-dir PATH (or SESSIONS_PATH) "
            "and/or --firestore"
        )
    if sessions is not None:
        scan_sessions_dir(sessions, gathered)
    if args.firestore:
        from wafleet.stores.firestore_io import close_client, make_client

        if settings.firestore_project is None and "FIRESTORE_EMULATOR_HOST" not in env:
            raise SystemExit(
                "wafleet migrate-legacy: --firestore needs WAFLEET_FIRESTORE_PROJECT "
                "(or FIREBASE_SERVICE_ACCOUNT_JSON)"
            )
        client = make_client(
            settings.firestore_project,
            settings.firestore_database,
            settings.firestore_credentials_json,
        )
        try:
            await read_firestore(client, gathered)
        finally:
            await close_client(client)
    return gathered


async def _target(args: argparse.Namespace, settings: Settings, env: Mapping[str, str]) -> Target:
    from wafleet.migrate.targets import ClusterTarget, StandaloneTarget

    if args.to == "standalone":
        return await StandaloneTarget.open(settings.data_dir, settings.sessions_dir)
    from wafleet.backups.factory import open_backups
    from wafleet.kube.client import KubeClient
    from wafleet.kube.config import load_connection

    if settings.store != "firestore":
        raise SystemExit(
            "wafleet migrate-legacy: --to cluster seeds each session as the account's first "
            "backup, which the connectors read from Firestore: set WAFLEET_STORE=firestore, "
            "WAFLEET_FIRESTORE_PROJECT and the installation's WAFLEET_BACKUP_KEY"
        )
    namespace = args.namespace or (env.get("WAFLEET_NAMESPACE") or "").strip()
    if not namespace:
        raise SystemExit(
            "wafleet migrate-legacy: --to cluster needs --namespace (or WAFLEET_NAMESPACE)"
        )
    kube = KubeClient(load_connection(), watch_read_timeout=settings.kube_watch_timeout)
    return ClusterTarget(kube, namespace, open_backups(settings))


def _selected(gathered: Gathered, only: list[str] | None) -> list[LegacyAccount]:
    accounts = gathered.sorted()
    if only:
        unknown = sorted(set(only) - set(gathered.accounts))
        if unknown:
            raise SystemExit(f"wafleet migrate-legacy: no legacy account {', '.join(unknown)}")
        accounts = [a for a in accounts if a.id in only]
    return accounts


def _print_table(
    console: Console, results: list[Result], target: str, dry: bool, seconds: float
) -> None:
    from rich.table import Table

    table = Table(title=f"legacy migration to {target}" + (" (dry run)" if dry else ""))
    for column in ("account", "outcome", "from", "device", "why"):
        table.add_column(column, overflow="fold")
    for r in results:
        device = "linked" if r.jid else "-"
        table.add_row(r.account_id, r.outcome, r.source or "-", device, r.reason)
    console.print(table)
    counts = Counter(r.outcome for r in results)
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
    console.print(f"{len(results)} accounts in {seconds:.1f} s: {summary or 'none found'}")


async def migrate(args: argparse.Namespace) -> int:
    from rich.console import Console

    from wafleet.migrate.plan import ATTENTION, Migration, Options

    env = dict(os.environ)  # read once
    legacy = translate_legacy(env)
    settings = Settings.from_env(legacy.env, data_dir=args.data_dir)
    setup_logging("warning" if settings.log_level == "info" else settings.log_level)
    console = Console(stderr=args.json, soft_wrap=True)
    for notice in legacy.notices:
        console.print(f"wafleet: {notice}")
    gathered = await _gather(args, settings, env)
    for ignored in gathered.ignored:
        console.print(f"ignored: {ignored}")
    accounts = _selected(gathered, args.only)
    options = Options(
        dry_run=args.dry_run,
        force=args.force,
        id_salt=settings.id_salt,
        default_region=settings.default_region,
    )
    target = await _target(args, settings, env)

    def progress(result: Result) -> None:
        if args.json:
            print(json.dumps(asdict(result)), flush=True)

    started = time.monotonic()
    try:
        results = await Migration(target, options, progress).run(accounts)
    finally:
        await target.close()
    if not args.json:
        elapsed = time.monotonic() - started
        _print_table(console, results, target.description, args.dry_run, elapsed)
    return EXIT_ATTENTION if any(r.outcome in ATTENTION for r in results) else 0


def run_migrate(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(migrate(args))
    except FileNotFoundError as exc:
        print(f"wafleet migrate-legacy: {exc}", file=sys.stderr)
        return 2
