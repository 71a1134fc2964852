"""The structural check: every precondition libsignal-go's loaders assume, on the written bytes."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from unit.migrate.samples import (
    XKey,
    entry,
    receiving_chain,
    record,
    sender_key_file,
    sender_key_state,
)

from wafleet.migrate import baileys_parse, node_session
from wafleet.migrate.baileys_model import SenderKeyFile, SessionFile
from wafleet.migrate.signal_convert import LocalIdentity, convert_sender_key, convert_session
from wafleet.migrate.signal_validate import InvalidStructure, validate_sender_key, validate_session


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def good_session() -> dict[str, Any]:
    data = record(
        entry(
            remote_identity=XKey.generate().public05,
            receiving=(receiving_chain(),),
            pending={"signedKeyId": 1, "baseKey": b64(XKey.generate().public05), "preKeyId": 4},
        ),
        entry(remote_identity=XKey.generate().public05, closed=1),
    )
    file = SessionFile("s.json", "1.0", node_session.session_entries(data))
    result = convert_session(file, LocalIdentity(XKey.generate().public05, 1))
    session: dict[str, Any] = json.loads(result.session)
    return session


def good_sender_key() -> dict[str, Any]:
    states = baileys_parse.sender_key_states(sender_key_file(sender_key_state(1, own=True)))
    data: dict[str, Any] = json.loads(
        convert_sender_key(SenderKeyFile("k.json", "g@g.us", "1", 0, states))
    )
    return data


def test_converted_rows_pass() -> None:
    validate_session(json.dumps(good_session()).encode())
    validate_sender_key(json.dumps(good_sender_key()).encode())


Mutation = Callable[[dict[str, Any]], None]


def setter(path: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        where: Any = data
        *parents, leaf = path.split(".")
        for parent in parents:
            where = where[int(parent)] if parent.isdigit() else where[parent]
        where[int(leaf) if leaf.isdigit() else leaf] = value

    return mutate


def push_receiving(count: int) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        chains = data["SessionState"]["ReceiverChains"]
        chains.extend(copy.deepcopy(chains[0]) for _ in range(count))

    return mutate


def push_previous(count: int) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        data["PreviousStates"] = [copy.deepcopy(data["SessionState"]) for _ in range(count)]

    return mutate


SESSION_BREAKS: list[tuple[Mutation, str]] = [
    (setter("SessionState", None), "SessionState is missing"),
    (setter("SessionState.SenderChain", None), "SenderChain is missing"),
    (setter("SessionState.LocalIdentityPublic", ""), "LocalIdentityPublic is 0 bytes, not 33"),
    (setter("SessionState.LocalIdentityPublic", None), "LocalIdentityPublic is missing"),
    (setter("SessionState.RemoteIdentityPublic", b64(bytes(32))), "is 32 bytes, not 33"),
    (setter("SessionState.SenderBaseKey", b64(b"\x06" + bytes(32))), "key type 6"),
    (setter("SessionState.RootKey", "!!"), "RootKey is not standard base64"),
    (setter("SessionState.SessionVersion", 2), "SessionVersion is not 3"),
    (setter("SessionState.PreviousCounter", -1), "PreviousCounter is not a uint32"),
    (setter("SessionState.LocalRegistrationID", 2**32), "LocalRegistrationID is not a uint32"),
    (setter("SessionState.NeedsRefresh", "no"), "NeedsRefresh is not a boolean"),
    (setter("SessionState.PendingKeyExchange", {}), "PendingKeyExchange is set"),
    (setter("SessionState.PendingPreKey.PreKeyID", None), "PreKeyID is missing"),
    (setter("SessionState.PendingPreKey.PreKeyID.IsEmpty", 0), "IsEmpty is not a boolean"),
    (setter("SessionState.PendingPreKey.BaseKey", ""), "BaseKey is 0 bytes"),
    (setter("SessionState.SenderChain.SenderRatchetKeyPrivate", None), "is missing"),
    (setter("SessionState.SenderChain.ChainKey", None), "SenderChain.ChainKey is missing"),
    (setter("SessionState.SenderChain.ChainKey.Key", b64(bytes(16))), "Key is 16 bytes"),
    (setter("SessionState.SenderChain.ChainKey.Index", True), "Index is not a uint32"),
    (
        setter("SessionState.ReceiverChains.0.SenderRatchetKeyPrivate", b64(bytes(32))),
        "is set on a receiving chain",
    ),
    (setter("SessionState.ReceiverChains.0.MessageKeys.0.IV", b64(bytes(15))), "IV is 15 bytes"),
    (setter("SessionState.ReceiverChains.0.MessageKeys.0", None), "MessageKeys[0] is missing"),
    (setter("SessionState.ReceiverChains.0.MessageKeys", {}), "MessageKeys is not a list"),
    (push_receiving(5), "ReceiverChains has 6 items, more than 5"),
    (push_previous(41), "PreviousStates has 41 items, more than 40"),
    (setter("PreviousStates.0.SenderChain", None), "PreviousStates[0].SenderChain is missing"),
]


@pytest.mark.parametrize(("mutate", "what"), SESSION_BREAKS)
def test_a_session_libsignal_go_could_not_load_is_refused(mutate: Mutation, what: str) -> None:
    data = good_session()
    mutate(data)
    with pytest.raises(InvalidStructure) as raised:
        validate_session(json.dumps(data).encode())
    assert what in str(raised.value)


SENDER_KEY_BREAKS: list[tuple[Mutation, str]] = [
    (setter("SenderKeyStates", []), "SenderKeyStates is empty"),
    (setter("SenderKeyStates.0.SenderChainKey", None), "SenderChainKey is missing"),
    (setter("SenderKeyStates.0.SigningKeyPublic", b64(bytes(32))), "is 32 bytes, not 33"),
    (setter("SenderKeyStates.0.SigningKeyPrivate", b64(bytes(31))), "is 31 bytes, not 32"),
    (setter("SenderKeyStates.0.Keys.0.IV", b64(bytes(32))), "IV is 32 bytes, not 16"),
    (setter("SenderKeyStates.0.KeyID", -3), "KeyID is not a uint32"),
]


@pytest.mark.parametrize(("mutate", "what"), SENDER_KEY_BREAKS)
def test_a_sender_key_libsignal_go_could_not_load_is_refused(mutate: Mutation, what: str) -> None:
    data = good_sender_key()
    mutate(data)
    with pytest.raises(InvalidStructure) as raised:
        validate_sender_key(json.dumps(data).encode())
    assert what in str(raised.value)


def test_a_row_that_is_not_json_is_refused() -> None:
    with pytest.raises(InvalidStructure, match="row is not JSON"):
        validate_session(b"\x00garbage")
    with pytest.raises(InvalidStructure, match="session is missing or not an object"):
        validate_session(b"[]")
    with pytest.raises(InvalidStructure, match="SenderKeyStates has 6 items"):
        validate_sender_key(json.dumps({"SenderKeyStates": [{}] * 6}).encode())
