"""Account ids: deterministic, valid Kubernetes names, no phone digits, salted."""

from __future__ import annotations

import random
import re

import pytest

from wafleet.core.ids import ACCOUNT_ID_RE, ID_PREFIX, account_id_for, is_account_id, thread_id

# hypothesis is not installed in .venv: a seeded loop over generated phones instead.
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def generated_phones(count: int = 2000, seed: int = 1123) -> list[str]:
    rng = random.Random(seed)
    phones = {"+40712345678", "+4930123456", "+16502530000", "+1", "+999999999999999"}
    while len(phones) < count:
        phones.add("+" + str(rng.randint(1, 999)) + str(rng.randint(10**5, 10**12)))
    return sorted(phones)


PHONES = generated_phones()


def test_is_deterministic() -> None:
    for phone in PHONES[:200]:
        assert account_id_for(phone) == account_id_for(phone)
        assert account_id_for(phone, "s1") == account_id_for(phone, "s1")


def test_is_a_valid_dns1123_label_without_digits() -> None:
    for phone in PHONES:
        account_id = account_id_for(phone)
        assert DNS1123_LABEL.fullmatch(account_id), account_id
        assert len(account_id) <= 63
        assert not any(ch.isdigit() for ch in account_id), account_id
        assert account_id.startswith(ID_PREFIX)
        assert ACCOUNT_ID_RE.fullmatch(account_id)
        assert is_account_id(account_id)


def test_differs_per_phone() -> None:
    ids = {account_id_for(phone) for phone in PHONES}
    assert len(ids) == len(PHONES)


def test_differs_per_salt() -> None:
    for phone in PHONES[:200]:
        a, b = account_id_for(phone, "install-a"), account_id_for(phone, "install-b")
        assert a != b
        assert account_id_for(phone) == account_id_for(phone, "wafleet")
    salted = {account_id_for("+40712345678", f"salt-{n}") for n in range(500)}
    assert len(salted) == 500


def test_known_value_is_stable() -> None:
    # Ids name Kubernetes resources: changing the derivation would orphan every account.
    # sha256("wafleet:+40712345678") starts db162c5f0f11696ca971; hex digit n -> letter n.
    assert account_id_for("+40712345678") == "wa-nlbgcmfpapbbgjgmkjhb"
    assert account_id_for("+40712345678", salt="other") == "wa-nokppbocadaanlmbkimo"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "wa-",
        "wa-abc",
        "wa-" + "a" * 19,
        "wa-" + "a" * 21,
        "wa-" + "q" * 20,
        "WA-" + "a" * 20,
        "wa-" + "a" * 19 + "1",
        "xa-" + "a" * 20,
        "wa-" + "A" * 20,
        "wa_" + "a" * 20,
    ],
)
def test_is_account_id_refuses_other_strings(value: str) -> None:
    assert not is_account_id(value)


def test_thread_id_format() -> None:
    account_id = account_id_for("+40712345678")
    jid = "40799000001@s.whatsapp.net"
    assert thread_id(account_id, jid) == f"{account_id}__{jid}"
    assert thread_id(account_id, jid).split("__", 1) == [account_id, jid]
