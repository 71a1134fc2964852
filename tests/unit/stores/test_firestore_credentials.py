"""Inline service account credentials (the legacy FIREBASE_SERVICE_ACCOUNT_JSON)."""

from __future__ import annotations

import pytest

from support.credentials import service_account
from support.firestore import FirestoreEmulator, firestore_emulator
from wafleet.core.envconfig import ConfigError
from wafleet.stores.firestore_io import close_client, make_client

__all__ = ["firestore_emulator"]


@pytest.mark.firestore
async def test_a_client_built_from_inline_credentials_reads_and_writes(
    firestore_emulator: FirestoreEmulator,
) -> None:
    firestore_emulator.clear()
    client = make_client(firestore_emulator.project, "(default)", service_account())
    try:
        assert client.project == firestore_emulator.project
        await client.collection("accounts").document("a").set({"status": "connected"})
        snapshot = await client.collection("accounts").document("a").get()
        assert snapshot.to_dict() == {"status": "connected"}
    finally:
        await close_client(client)


def test_the_project_comes_from_the_key_when_none_is_set() -> None:
    client = make_client(None, "(default)", service_account("from-the-key"))
    assert client.project == "from-the-key"


def test_a_key_that_does_not_load_is_a_configuration_error() -> None:
    broken = '{"type": "service_account", "project_id": "p", "private_key": "nope"}'
    with pytest.raises(ConfigError, match="not a usable service account key"):
        make_client(None, "(default)", broken)
