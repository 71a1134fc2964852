"""Converted Signal state continues in an independent implementation (python-axolotl).

axolotl_probe.py loads the whatsmeow rows (device keys, pre-keys, identity keys, sessions,
sender keys) through a field-rename adapter and decrypts the ciphertexts that the legacy
account received but never decrypted; the plaintexts must be Baileys' exact input bytes.
"""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from migration.conftest import Converted

pytestmark = pytest.mark.migration

PROOFS = {
    "m4": "msg on the current receiving chain (chain key and index)",
    "m6": "msg on a new ratchet key (root key, own ratchet private key)",
    "m2": "msg whose key is a skipped message key (node's seed -> cipher/mac/iv)",
    "m1b": "pkmsg whose key is a skipped key of a closed receiving chain",
    "pkmsg5": "pkmsg from a fresh bundle (identity key, signed pre-key, one-time pre-key)",
    "l2": "msg on a LID-addressed session (their_id <user>_1:<device>)",
    "e2": "msg on a session the legacy account initiated (it was Alice)",
    "e3": "msg on a new ratchet key of a session the legacy account initiated",
    "g2": "msg on a session state the contact later replaced (PreviousStates)",
    "grp4": "skmsg on the sender key chain",
    "grp2": "skmsg whose key is a skipped sender message key",
}


def kept(converted: Converted, label: str) -> dict[str, Any]:
    (message,) = [m for m in converted.account.expected["messages"] if m["label"] == label]
    found: dict[str, Any] = message
    return found


def result_for(result: dict[str, Any], label: str) -> dict[str, Any]:
    (message,) = [m for m in result["messages"] if m["label"] == label]
    found: dict[str, Any] = message
    return found


@pytest.mark.parametrize("label", list(PROOFS), ids=list(PROOFS))
def test_kept_message_decrypts(
    label: str, converted: tuple[Converted, ...], probed: dict[str, dict[str, Any]]
) -> None:
    for c in converted:
        want = kept(c, label)
        got = result_for(probed[c.account.account_id], label)
        where = f"{c.account.account_id} {label} ({PROOFS[label]})"
        assert got["error"] is None, f"{where}: {got['error']}"
        assert got["plaintext"] == want["plaintext"], where


def test_skipped_sender_key_row_holds_the_right_iv_and_cipher_key(
    converted: tuple[Converted, ...], probed: dict[str, dict[str, Any]]
) -> None:
    """whatsmeow uses the stored IV/CipherKey of a skipped sender message key, not its seed."""
    for c in converted:
        got = result_for(probed[c.account.account_id], "grp2")
        assert got["error"] is None, got["error"]
        assert got["stored_key_plaintext"] == kept(c, "grp2")["plaintext"], c.account.account_id


def test_every_row_loads_without_a_libsignal_go_error(
    probed: dict[str, dict[str, Any]],
) -> None:
    """NewStateFromStructure / NewChainFromStructure / NewSenderKeyStateFromStructure preconditions.

    libsignal-go decodes every point with no length check: an empty key panics the engine.
    """
    for account_id, result in probed.items():
        assert result["load_problems"] == {}, account_id


def test_sessions_carry_both_registration_ids(
    converted: tuple[Converted, ...], probed: dict[str, dict[str, Any]]
) -> None:
    """Sent in every pkmsg header (local) and checked by contacts' retries (remote)."""
    for c in converted:
        result = probed[c.account.account_id]
        assert result["registration_id"] == c.account.expected["registration_id"]
        assert result["sessions"], c.account.account_id
        for address, state in result["sessions"].items():
            where = f"{c.account.account_id} {address}"
            assert state["session_version"] == 3, where
            assert state["local_registration_id"] == c.account.expected["registration_id"], where
            remote = c.account.expected["registration_ids"][address]
            assert state["remote_registration_id"] == remote, where
        (g2,) = [m for m in c.account.expected["messages"] if m["label"] == "g2"]
        assert result["sessions"][g2["their_id"]]["previous_states"] >= 1


def test_identity_rows_trust_the_contacts(probed: dict[str, dict[str, Any]]) -> None:
    for account_id, result in probed.items():
        assert result["untrusted"] == [], account_id


def test_unanswered_pre_key_message_stays_pending(
    converted: tuple[Converted, ...], probed: dict[str, dict[str, Any]]
) -> None:
    """A session the account opened without an answer keeps sending pkmsg with the same bundle."""
    for c in converted:
        pending = probed[c.account.account_id]["pending"]
        assert [p["their_id"] for p in pending] == [
            p["their_id"] for p in c.account.expected["pending"]
        ]
        for item in pending:
            assert "error" not in item, item
            sent, stored = item["sent"], item["stored"]
            assert stored, (
                f"{c.account.account_id} {item['their_id']}: no session or no PendingPreKey"
            )
            assert stored["pre_key_id"] == sent["pre_key_id"]
            assert stored["signed_pre_key_id"] == sent["signed_pre_key_id"]
            assert stored["base_key"] == sent["base_key"]
            assert stored["alice_base_key"] == sent["base_key"]  # SenderBaseKey: its own base key


# --- the proofs can fail --------------------------------------------------------------


def edit_session(
    db: sqlite3.Connection, our_jid: str, their_id: str, edit: Callable[..., Any]
) -> None:
    (raw,) = db.execute(
        "SELECT session FROM whatsmeow_sessions WHERE our_jid = ? AND their_id = ?",
        (our_jid, their_id),
    ).fetchone()
    doc = json.loads(raw)
    edit(doc)
    db.execute(
        "UPDATE whatsmeow_sessions SET session = ? WHERE our_jid = ? AND their_id = ?",
        (json.dumps(doc).encode(), our_jid, their_id),
    )


def test_probe_fails_on_damaged_rows(
    converted: tuple[Converted, ...],
    axolotl_probe: Callable[[Path, Path], dict[str, Any]],
    tmp_path: Path,
) -> None:
    """Each damage breaks exactly the proofs that depend on it (whatsmeow's formats, §4-5)."""
    c = converted[0]
    expected = c.account.expected
    store = tmp_path / "damaged.db"
    shutil.copyfile(c.store, store)
    our_jid = expected["me"]["id"]
    db = sqlite3.connect(store)
    with db:

        def shift_receiver_chains(doc: dict[str, Any]) -> None:
            for chain in doc["SessionState"]["ReceiverChains"]:
                chain["ChainKey"]["Index"] += 1

        edit_session(db, our_jid, kept(c, "m4")["their_id"], shift_receiver_chains)

        def rename_root_key(doc: dict[str, Any]) -> None:
            doc["SessionState"]["RootKeyX"] = doc["SessionState"].pop("RootKey")

        edit_session(db, our_jid, kept(c, "l2")["their_id"], rename_root_key)

        def drop_previous_states(doc: dict[str, Any]) -> None:
            doc["PreviousStates"] = []

        edit_session(db, our_jid, kept(c, "g2")["their_id"], drop_previous_states)
        db.execute(
            "DELETE FROM whatsmeow_pre_keys WHERE jid = ? AND key_id = ?",
            (our_jid, kept(c, "pkmsg5")["pre_key_id"]),
        )
        db.execute(
            "UPDATE whatsmeow_identity_keys SET identity = ? WHERE our_jid = ? AND their_id = ?",
            (bytes(32), our_jid, kept(c, "e2")["their_id"]),
        )
        grp2 = kept(c, "grp2")
        (raw,) = db.execute(
            "SELECT sender_key FROM whatsmeow_sender_keys"
            " WHERE our_jid = ? AND chat_id = ? AND sender_id = ?",
            (our_jid, grp2["group"], grp2["sender_id"]),
        ).fetchone()
        doc = json.loads(raw)
        for state in doc["SenderKeyStates"]:
            for key in state["Keys"] or []:
                key["IV"] = base64.b64encode(bytes(16)).decode()
        db.execute(
            "UPDATE whatsmeow_sender_keys SET sender_key = ?"
            " WHERE our_jid = ? AND chat_id = ? AND sender_id = ?",
            (json.dumps(doc).encode(), our_jid, grp2["group"], grp2["sender_id"]),
        )
    db.close()

    result = axolotl_probe(store, c.account.expected_path)
    failed = {m["label"] for m in result["messages"] if m["error"] is not None}
    wrong = {
        m["label"]
        for m in result["messages"]
        if m["error"] is None and m["plaintext"] != kept(c, m["label"])["plaintext"]
    }
    assert wrong == set()
    assert failed == {"m4", "l2", "g2", "pkmsg5", "e2", "e3"}
    # python-axolotl re-derives the skipped sender key from its seed; the stored IV is wrong
    assert result_for(result, "grp2")["plaintext"] == kept(c, "grp2")["plaintext"]
    assert result_for(result, "grp2")["stored_key_plaintext"] != kept(c, "grp2")["plaintext"]
    assert set(result["untrusted"]) == {kept(c, "e2")["their_id"]}
    (problem,) = result["load_problems"].values()
    assert "RootKeyX" in problem[0]
