"""The fake session store: the sqlite file a session's whatsmeow store lives in.

``Neonize`` opens it, creating whatsmeow's ``whatsmeow_device`` table and the fake's own
``fake_go_device`` (the sim credentials), and never closes it (goneonize keeps its
container: ``FakeGoLibrary.leaked_stores``). Pairing writes a row in both tables, so that
"does this file hold a linked device" reads the same for real and fake stores; a logout
deletes them as whatsmeow's ``Store.Delete`` does, and the client has no id any more.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass

from support.fake_go.channels import _ClientBase
from support.fake_go.convert import _split_jid

# whatsmeow's schema for the device table (store/sqlstore/upgrades/00-latest-schema.sql)
WHATSMEOW_DEVICE_SCHEMA = """
CREATE TABLE IF NOT EXISTS whatsmeow_device (
    jid TEXT PRIMARY KEY,
    lid TEXT,
    facebook_uuid uuid,
    registration_id BIGINT NOT NULL CHECK ( registration_id >= 0 AND registration_id < 4294967296 ),
    noise_key    bytea NOT NULL CHECK ( length(noise_key) = 32 ),
    identity_key bytea NOT NULL CHECK ( length(identity_key) = 32 ),
    signed_pre_key     bytea   NOT NULL CHECK ( length(signed_pre_key) = 32 ),
    signed_pre_key_id  INTEGER NOT NULL CHECK ( signed_pre_key_id >= 0 AND signed_pre_key_id < 16777216 ),
    signed_pre_key_sig bytea   NOT NULL CHECK ( length(signed_pre_key_sig) = 64 ),
    adv_key             bytea NOT NULL,
    adv_details         bytea NOT NULL,
    adv_account_sig     bytea NOT NULL CHECK ( length(adv_account_sig) = 64 ),
    adv_account_sig_key bytea NOT NULL CHECK ( length(adv_account_sig_key) = 32 ),
    adv_device_sig      bytea NOT NULL CHECK ( length(adv_device_sig) = 64 ),
    platform      TEXT NOT NULL DEFAULT '',
    business_name TEXT NOT NULL DEFAULT '',
    push_name     TEXT NOT NULL DEFAULT '',
    lid_migration_ts BIGINT NOT NULL DEFAULT 0,
    companion_meta_nonce TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS fake_go_device (
    jid TEXT PRIMARY KEY,
    sim_id TEXT NOT NULL,
    sim_secret TEXT NOT NULL
);
"""  # noqa: E501


@dataclass
class _Creds:
    jid: str  # the device jid, "user:device@s.whatsapp.net"
    sim_id: str
    sim_secret: str


class _Store(_ClientBase):
    """The client's store: opened by ``Neonize``, written by pairing and logout."""

    def open_store(self) -> str:
        try:
            conn = sqlite3.connect(self.start.db_path, check_same_thread=False)
            self.store = conn
            conn.executescript(WHATSMEOW_DEVICE_SCHEMA)
            row = conn.execute("SELECT jid, sim_id, sim_secret FROM fake_go_device").fetchone()
        except sqlite3.Error as exc:
            return f"failed to upgrade database: {exc}"
        if row is not None:
            self.device = _Creds(*row)
            self.device_ready.set()
        return ""

    def save_device(self, jid: str, sim_id: str, secret: str) -> None:
        user, _, server = _split_jid(jid)
        creds = _Creds(f"{user}:{secrets.randbelow(60) + 2}@{server}", sim_id, secret)
        assert self.store is not None
        with self.store:
            self.store.execute(
                "INSERT OR REPLACE INTO whatsmeow_device (jid, registration_id, noise_key,"
                " identity_key, signed_pre_key, signed_pre_key_id, signed_pre_key_sig, adv_key,"
                " adv_details, adv_account_sig, adv_account_sig_key, adv_device_sig)"
                " VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
                (creds.jid, secrets.randbelow(2**31), *(secrets.token_bytes(32) for _ in range(3)),
                 secrets.token_bytes(64), secrets.token_bytes(32), b"adv", secrets.token_bytes(64),
                 secrets.token_bytes(32), secrets.token_bytes(64)),
            )  # fmt: skip
            self.store.execute(
                "INSERT OR REPLACE INTO fake_go_device VALUES (?, ?, ?)",
                (creds.jid, sim_id, secret),
            )
        self.device = creds
        self.device_ready.set()

    def delete_device(self) -> None:
        """whatsmeow's Store.Delete: the device row goes, the client has no id any more."""
        if self.store is not None:
            with self.store:
                self.store.execute("DELETE FROM whatsmeow_device")
                self.store.execute("DELETE FROM fake_go_device")
        self.device = None
        self.device_ready.clear()
        self.deleted = True
