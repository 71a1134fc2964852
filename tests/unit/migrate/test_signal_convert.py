"""libsignal-node sessions and Baileys sender keys → libsignal-go JSON.

The counter/index translation is proven by running each side's own key schedule: node's
``fillMessageKeys`` + ``deriveSecrets`` on the node chain, Go's ``getOrCreateMessageKeys`` +
``ChainKey.MessageKeys`` on the converted one; both must give the same keys for every counter.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from unit.migrate.samples import (
    Chain,
    XKey,
    entry,
    hkdf,
    hmac256,
    node_buf,
    receiving_chain,
    record,
    sender_key_file,
    sender_key_state,
)

from wafleet.migrate import baileys_parse, node_session
from wafleet.migrate.baileys_model import SenderKeyFile, SessionFile
from wafleet.migrate.errors import Garbled
from wafleet.migrate.signal_convert import (
    CLOSED_CHAIN_KEY,
    LocalIdentity,
    Skipped,
    convert_sender_key,
    convert_session,
)

LOCAL = LocalIdentity(XKey.generate().public05, 1234)
REMOTE = XKey.generate()


def b64d(text: str) -> bytes:
    return base64.b64decode(text)


def session_file(data: dict[str, Any], address: str = "40798765432.0") -> SessionFile:
    return SessionFile(f"session-{address}.json", address, node_session.session_entries(data))


def converted(*entries: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    result = convert_session(session_file(record(*entries)), LOCAL)
    decoded: dict[str, Any] = json.loads(result.session)
    return decoded, result.notes


def node_keys(chain: Chain, counter: int) -> tuple[bytes, bytes, bytes]:
    """The keys libsignal-node uses for ``counter`` on ``chain``."""
    work = copy.deepcopy(chain)
    if work.counter < counter:
        assert work.key is not None, "node: Chain closed"
        work.fill(counter)
    seed = work.message_keys[counter]  # KeyError: "Key used already or never filled"
    derived = hkdf(seed, b"WhisperMessageKeys", 96)
    return derived[:32], derived[32:64], derived[64:80]


def go_keys(chain: dict[str, Any], counter: int) -> tuple[bytes, bytes, bytes]:
    """The keys libsignal-go uses for ``counter`` on the converted ``chain``."""
    index, key = chain["ChainKey"]["Index"], b64d(chain["ChainKey"]["Key"])
    if index > counter:
        for stored in chain["MessageKeys"]:
            if stored["Index"] == counter:
                return b64d(stored["CipherKey"]), b64d(stored["MacKey"]), b64d(stored["IV"])
        raise LookupError("old counter")
    while index < counter:
        key, index = hmac256(key, b"\x02"), index + 1
    derived = hkdf(hmac256(key, b"\x01"), b"WhisperMessageKeys", 80)
    return derived[:32], derived[32:64], derived[64:80]


def test_counters_and_message_keys_mean_the_same_on_both_sides() -> None:
    chain = receiving_chain(counter=5, skipped=(1, 3))
    state, _ = converted(entry(remote_identity=REMOTE.public05, receiving=(chain,)))
    (go_chain,) = state["SessionState"]["ReceiverChains"]
    assert go_chain["ChainKey"]["Index"] == 6  # node's counter + 1
    assert [k["Index"] for k in go_chain["MessageKeys"]] == [1, 3]
    for counter in (1, 3, 6, 7, 12):  # skipped keys, the next key, further ones
        assert go_keys(go_chain, counter) == node_keys(chain, counter)
    for used in (0, 2, 4, 5):  # keys already used: refused on both sides
        with pytest.raises(KeyError):
            node_keys(chain, used)
        with pytest.raises(LookupError):
            go_keys(go_chain, used)


def test_a_fresh_chain_starts_at_index_zero() -> None:
    chain = Chain(XKey.generate().public05, 2)  # counter -1: nothing derived yet
    state, _ = converted(entry(remote_identity=REMOTE.public05, receiving=(chain,)))
    (go_chain,) = state["SessionState"]["ReceiverChains"]
    assert go_chain["ChainKey"]["Index"] == 0
    assert go_keys(go_chain, 0) == node_keys(chain, 0)


def test_the_sending_chain_carries_its_private_key_and_next_counter() -> None:
    ephemeral = XKey.generate()
    sending = Chain(ephemeral.public05, 1)
    sending.fill(2)  # node sent counters 0, 1, 2 and deleted their keys
    sending.message_keys.clear()
    state, _ = converted(
        entry(remote_identity=REMOTE.public05, sending=sending, ephemeral=ephemeral)
    )
    go_chain = state["SessionState"]["SenderChain"]
    assert b64d(go_chain["SenderRatchetKeyPrivate"]) == ephemeral.private
    assert b64d(go_chain["SenderRatchetKeyPublic"]) == ephemeral.public05
    assert go_chain["ChainKey"]["Index"] == 3
    assert go_chain["MessageKeys"] == []
    assert go_keys(go_chain, 3) == node_keys(sending, 3)  # the next message node would send


def test_a_closed_chain_keeps_its_message_keys_behind_a_dummy_key() -> None:
    closed = receiving_chain(counter=4, skipped=(2,))
    still_open = copy.deepcopy(closed)
    closed.key = None  # node deleted it when the ratchet stepped
    current = receiving_chain(counter=0, skipped=())
    state, _ = converted(entry(remote_identity=REMOTE.public05, receiving=(closed, current)))
    go_closed, go_current = state["SessionState"]["ReceiverChains"]
    assert b64d(go_closed["ChainKey"]["Key"]) == CLOSED_CHAIN_KEY
    assert go_closed["ChainKey"]["Index"] == 5
    assert go_keys(go_closed, 2) == node_keys(closed, 2)  # a late message still decrypts
    with pytest.raises(AssertionError, match="Chain closed"):
        node_keys(closed, 5)  # node refuses past the end; Go derives from zeros: MAC fails
    assert go_keys(go_closed, 5) != node_keys(still_open, 5)  # so its MAC check fails
    assert b64d(go_current["SenderRatchetKeyPublic"]) == current.ratchet


def test_the_state_fields_come_from_their_node_counterparts() -> None:
    base = XKey.generate()
    data = entry(
        remote_identity=REMOTE.public,  # a 32-byte key gets its type byte
        base_key=base.public05,
        previous_counter=-1,  # nothing sent on the previous chain
        registration_id=777,
        pending={"signedKeyId": 3, "baseKey": base64.b64encode(base.public05).decode()},
    )
    state, _ = converted(data)
    current = state["SessionState"]
    assert current["SessionVersion"] == 3
    assert b64d(current["LocalIdentityPublic"]) == LOCAL.public
    assert current["LocalRegistrationID"] == LOCAL.registration_id
    assert b64d(current["RemoteIdentityPublic"]) == REMOTE.public05
    assert current["RemoteRegistrationID"] == 777
    assert b64d(current["RootKey"]) == b64d(data["currentRatchet"]["rootKey"])
    assert b64d(current["SenderBaseKey"]) == base.public05
    assert current["PreviousCounter"] == 0
    assert current["PendingPreKey"] == {
        "PreKeyID": {"Value": 0, "IsEmpty": True},
        "SignedPreKeyID": 3,
        "BaseKey": base64.b64encode(base.public05).decode(),
    }
    assert current["NeedsRefresh"] is False and current["PendingKeyExchange"] is None
    assert list(current) == [  # Go's field order, as json.Marshal writes it
        "LocalIdentityPublic",
        "LocalRegistrationID",
        "NeedsRefresh",
        "PendingKeyExchange",
        "PendingPreKey",
        "PreviousCounter",
        "ReceiverChains",
        "RemoteIdentityPublic",
        "RemoteRegistrationID",
        "RootKey",
        "SenderBaseKey",
        "SenderChain",
        "SessionVersion",
    ]


@pytest.mark.parametrize(("pre_key_id", "expected"), [(5, (5, False)), (0, (0, True))])
def test_a_pending_pre_key_id_is_empty_when_node_would_not_send_it(
    pre_key_id: int, expected: tuple[int, bool]
) -> None:
    pending = {"signedKeyId": 1, "baseKey": base64.b64encode(b"\x05" + bytes(32)).decode()}
    pending["preKeyId"] = pre_key_id  # type: ignore[assignment]
    state, _ = converted(entry(remote_identity=REMOTE.public05, pending=pending))
    pre_key = state["SessionState"]["PendingPreKey"]["PreKeyID"]
    assert (pre_key["Value"], pre_key["IsEmpty"]) == expected


def test_the_first_open_entry_is_current_and_the_rest_follow_by_use() -> None:
    old = entry(remote_identity=REMOTE.public05, closed=10, used=100)
    recent = entry(remote_identity=REMOTE.public05, closed=20, used=300)
    current = entry(remote_identity=REMOTE.public05, used=200)
    state, _ = converted(old, current, recent)
    assert state["SessionState"]["SenderBaseKey"] == current["indexInfo"]["baseKey"]
    assert [s["SenderBaseKey"] for s in state["PreviousStates"]] == [
        recent["indexInfo"]["baseKey"],
        old["indexInfo"]["baseKey"],
    ]


def test_at_most_forty_previous_states_and_five_receiving_chains() -> None:
    closed = [entry(remote_identity=REMOTE.public05, closed=1, used=i) for i in range(42)]
    chains = tuple(receiving_chain(counter=i, skipped=()) for i in range(7))
    current = entry(remote_identity=REMOTE.public05, receiving=chains)
    state, notes = converted(current, *closed)
    assert len(state["PreviousStates"]) == 40
    assert [s["SenderBaseKey"] for s in state["PreviousStates"]][:2] == [
        closed[41]["indexInfo"]["baseKey"],
        closed[40]["indexInfo"]["baseKey"],
    ]
    kept = [c["ChainKey"]["Index"] for c in state["SessionState"]["ReceiverChains"]]
    assert kept == [3, 4, 5, 6, 7]  # the newest five, oldest first
    assert "2 least recently used states dropped" in notes
    assert "2 oldest receiving chains dropped" in notes


def test_at_most_two_thousand_message_keys_per_chain() -> None:
    chain = receiving_chain(counter=2100, skipped=tuple(range(2100)))
    state, _ = converted(entry(remote_identity=REMOTE.public05, receiving=(chain,)))
    (go_chain,) = state["SessionState"]["ReceiverChains"]
    indexes = [k["Index"] for k in go_chain["MessageKeys"]]
    assert indexes == list(range(100, 2100))


@pytest.mark.parametrize(
    "entries",
    [
        (),
        (entry(remote_identity=REMOTE.public05, closed=5),),
    ],
)
def test_a_record_without_an_open_session_is_skipped(entries: tuple[dict[str, Any], ...]) -> None:
    with pytest.raises(Skipped, match="whatsmeow will fetch a new pre-key bundle"):
        convert_session(session_file(record(*entries)), LOCAL)


def without_sending_chain(**options: Any) -> dict[str, Any]:
    data = entry(remote_identity=REMOTE.public05, **options)
    pub = data["currentRatchet"]["ephemeralKeyPair"]["pubKey"]
    del data["_chains"][pub]
    return data


def test_an_open_session_without_sending_chain_skips_the_record() -> None:
    with pytest.raises(Skipped, match="open session cannot be used: it has no sending chain"):
        converted(without_sending_chain())


def test_a_closed_session_go_cannot_hold_is_left_out_and_noted() -> None:
    state, notes = converted(
        entry(remote_identity=REMOTE.public05), without_sending_chain(closed=3)
    )
    assert state["PreviousStates"] == []
    assert notes == ("a closed session left out: it has no sending chain (libsignal-go needs one)",)


def test_a_missing_registration_id_is_written_as_zero_and_noted() -> None:
    state, notes = converted(entry(remote_identity=REMOTE.public05, registration_id=None))
    assert state["SessionState"]["RemoteRegistrationID"] == 0
    assert "no registrationId" in notes[0]


def test_the_address_and_identity_are_whatsmeow_s() -> None:
    data = record(entry(remote_identity=REMOTE.public05))
    result = convert_session(session_file(data, "123456789012345_1.3"), LOCAL)
    assert result.address == "123456789012345_1:3"
    assert result.remote_identity == REMOTE.public


@pytest.mark.parametrize(
    ("path", "value", "what"),
    [
        ("currentRatchet.rootKey", base64.b64encode(bytes(31)).decode(), "RootKey is 31 bytes"),
        ("indexInfo.baseKey", base64.b64encode(b"\x07" * 33).decode(), "key type 7"),
        ("indexInfo.remoteIdentityKey", "", "RemoteIdentityPublic is 1 bytes"),
        ("currentRatchet.ephemeralKeyPair.privKey", "AAAA", "SenderRatchetKeyPrivate is 3 bytes"),
    ],
)
def test_a_state_that_would_not_load_in_go_is_garbled(path: str, value: str, what: str) -> None:
    data = entry(remote_identity=REMOTE.public05)
    where = data
    *parents, leaf = path.split(".")
    for parent in parents:
        where = where[parent]
    where[leaf] = value
    with pytest.raises(Garbled, match=what):
        converted(data)


def sender_key(*states: dict[str, Any]) -> SenderKeyFile:
    parsed = baileys_parse.sender_key_states(sender_key_file(*states))
    return SenderKeyFile("sender-key-g.json", "1203@g.us", "4079", 0, parsed)


def test_sender_key_states_are_reversed_and_their_keys_derived() -> None:
    older = sender_key_state(1, iteration=7)
    newer = sender_key_state(2, own=True, iteration=3)
    data = json.loads(convert_sender_key(sender_key(older, newer)))
    first, second = data["SenderKeyStates"]
    assert (first["KeyID"], second["KeyID"]) == (2, 1)  # Go: newest first
    seed = bytes(older["senderChainKey"]["seed"]["data"])
    assert second["SenderChainKey"] == {
        "Iteration": 7,
        "ChainKey": base64.b64encode(seed).decode(),
    }
    (stored,) = second["Keys"]
    message_seed = bytes(older["senderMessageKeys"][0]["seed"]["data"])
    derived = hkdf(message_seed, b"WhisperGroup", 96)  # Baileys' SenderMessageKey
    assert b64d(stored["IV"]) == derived[:16]
    assert b64d(stored["CipherKey"]) == derived[16:32] + derived[32:48]
    assert b64d(stored["Seed"]) == message_seed and stored["Iteration"] == 0
    assert second["SigningKeyPrivate"] is None  # someone else's key: Baileys' empty buffer
    assert len(b64d(first["SigningKeyPrivate"])) == 32  # our own
    assert b64d(first["SigningKeyPublic"])[0] == 5


def test_a_32_byte_signing_key_gets_its_type_byte_and_five_states_at_most() -> None:
    states = [sender_key_state(i) for i in range(7)]
    states[6]["senderSigningKey"]["public"] = node_buf(bytes(range(32)))
    data = json.loads(convert_sender_key(sender_key(*states)))
    assert [s["KeyID"] for s in data["SenderKeyStates"]] == [6, 5, 4, 3, 2]
    assert b64d(data["SenderKeyStates"][0]["SigningKeyPublic"]) == b"\x05" + bytes(range(32))


def test_an_empty_sender_key_record_is_skipped() -> None:
    with pytest.raises(Skipped, match="no sender key state"):
        convert_sender_key(sender_key())


def test_a_sender_key_that_would_not_load_in_go_is_garbled() -> None:
    state = sender_key_state(1)
    state["senderChainKey"]["seed"] = node_buf(bytes(5))
    with pytest.raises(Garbled, match=r"SenderChainKey.ChainKey is 5 bytes"):
        convert_sender_key(sender_key(state))
