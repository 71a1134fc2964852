"""The phase model: complete tables, key moves allowed and refused, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from wafleet.core.phases import (
    ALLOWED,
    LEGACY_STATUS,
    NEEDS_QR,
    SUMMARY_BUCKET,
    IllegalTransition,
    Phase,
    can_transition,
    check_transition,
)

REPO = Path(__file__).resolve().parents[3]
LEGACY_VALUES = {"connecting", "qr_ready", "connected", "reconnecting", "logged_out"} | {
    "needs_qr",
    "disconnected",
}
BUCKETS = {"connecting", "needs_qr", "connected", "disconnected"}


@pytest.mark.parametrize("phase", list(Phase))
def test_every_phase_is_in_every_table(phase: Phase) -> None:
    assert phase in ALLOWED
    assert phase in LEGACY_STATUS
    assert phase in SUMMARY_BUCKET


def test_tables_hold_nothing_but_phases() -> None:
    for table in (ALLOWED, LEGACY_STATUS, SUMMARY_BUCKET):
        assert set(table) == set(Phase)
    for targets in ALLOWED.values():
        assert targets <= set(Phase)
    assert set(LEGACY_STATUS.values()) <= LEGACY_VALUES
    assert set(SUMMARY_BUCKET.values()) <= BUCKETS


def test_phase_values_are_the_cr_strings() -> None:
    assert Phase.QR_READY == "QRReady"
    assert Phase.PAIRING_CODE_READY.value == "PairingCodeReady"
    assert Phase("Connected") is Phase.CONNECTED


def test_every_phase_is_reachable_from_pending() -> None:
    seen = {Phase.PENDING}
    frontier = [Phase.PENDING]
    while frontier:
        for target in ALLOWED[frontier.pop()]:
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(Phase)


@pytest.mark.parametrize("phase", [p for p in Phase if p is not Phase.PENDING])
def test_every_phase_can_be_sent_back_to_pending(phase: Phase) -> None:
    # e.g. when a connector restarts: "what was stored describes the last run"
    assert can_transition(phase, Phase.PENDING)


@pytest.mark.parametrize("phase", [p for p in Phase if p is not Phase.SUSPENDED])
def test_every_phase_can_be_suspended(phase: Phase) -> None:
    assert can_transition(phase, Phase.SUSPENDED)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (Phase.PENDING, Phase.CONNECTING),
        (Phase.CONNECTING, Phase.QR_READY),
        (Phase.CONNECTING, Phase.PAIRING_CODE_READY),
        (Phase.CONNECTING, Phase.CONNECTED),
        (Phase.QR_READY, Phase.QR_READY),  # the QR code rotates
        (Phase.QR_READY, Phase.CONNECTING),  # scanned, paired
        (Phase.QR_READY, Phase.QR_TIMEOUT),
        (Phase.PAIRING_CODE_READY, Phase.QR_TIMEOUT),
        (Phase.CONNECTED, Phase.RECONNECTING),
        (Phase.CONNECTED, Phase.LOGGED_OUT),
        (Phase.RECONNECTING, Phase.CONNECTING),
        (Phase.LOGGED_OUT, Phase.CONNECTING),  # regenerate-qr
        (Phase.QR_TIMEOUT, Phase.CONNECTING),
        (Phase.SUSPENDED, Phase.CONNECTING),
        (Phase.FAILED, Phase.CONNECTING),
        (Phase.QR_READY, Phase.PASSKEY_REQUIRED),  # the phone asked for a passkey
        (Phase.PAIRING_CODE_READY, Phase.PASSKEY_REQUIRED),
        (Phase.CONNECTING, Phase.PASSKEY_REQUIRED),
        (Phase.PASSKEY_REQUIRED, Phase.CONNECTING),  # regenerate-qr
        (Phase.PASSKEY_REQUIRED, Phase.SUSPENDED),
        (Phase.PASSKEY_REQUIRED, Phase.PENDING),
    ],
)
def test_allowed_moves(current: Phase, new: Phase) -> None:
    assert can_transition(current, new)
    assert check_transition(current, new) is new


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (Phase.PENDING, Phase.CONNECTED),  # nothing connects without a session
        (Phase.PENDING, Phase.QR_READY),
        (Phase.CONNECTED, Phase.QR_READY),  # a linked device shows no QR code
        (Phase.CONNECTED, Phase.CONNECTED),
        (Phase.LOGGED_OUT, Phase.CONNECTED),  # needs a new link first
        (Phase.LOGGED_OUT, Phase.QR_READY),
        (Phase.QR_TIMEOUT, Phase.QR_READY),  # the guard holds until regenerate-qr
        (Phase.SUSPENDED, Phase.CONNECTED),
        (Phase.SUSPENDED, Phase.SUSPENDED),
        (Phase.QR_READY, Phase.PAIRING_CODE_READY),
        # The passkey phase waits for a command: no new code, no link, no loop.
        (Phase.PASSKEY_REQUIRED, Phase.QR_READY),
        (Phase.PASSKEY_REQUIRED, Phase.PAIRING_CODE_READY),
        (Phase.PASSKEY_REQUIRED, Phase.CONNECTED),
        (Phase.PASSKEY_REQUIRED, Phase.PASSKEY_REQUIRED),
        (Phase.PASSKEY_REQUIRED, Phase.QR_TIMEOUT),
        (Phase.CONNECTED, Phase.PASSKEY_REQUIRED),  # a linked device is asked no passkey
        (Phase.RECONNECTING, Phase.PASSKEY_REQUIRED),
        (Phase.QR_TIMEOUT, Phase.PASSKEY_REQUIRED),
    ],
)
def test_refused_moves(current: Phase, new: Phase) -> None:
    assert not can_transition(current, new)
    with pytest.raises(IllegalTransition):
        check_transition(current, new)


def test_illegal_transition_names_both_phases() -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(Phase.LOGGED_OUT, Phase.CONNECTED)
    message = str(info.value)
    assert "LoggedOut" in message
    assert "Connected" in message
    assert message.index("LoggedOut") < message.index("Connected")


def test_check_transition_agrees_with_can_transition_everywhere() -> None:
    for current in Phase:
        for new in Phase:
            if can_transition(current, new):
                assert check_transition(current, new) is new
            else:
                with pytest.raises(IllegalTransition, match=f"from {current} to {new}"):
                    check_transition(current, new)


def test_legacy_status_of_key_phases() -> None:
    assert LEGACY_STATUS[Phase.CONNECTED] == "connected"
    assert LEGACY_STATUS[Phase.QR_READY] == "qr_ready"
    assert LEGACY_STATUS[Phase.PAIRING_CODE_READY] == "qr_ready"
    assert LEGACY_STATUS[Phase.LOGGED_OUT] == "logged_out"
    assert LEGACY_STATUS[Phase.RECONNECTING] == "reconnecting"
    # The legacy clients know no passkey status: like the QR-loop guard, it needs a new link.
    assert LEGACY_STATUS[Phase.PASSKEY_REQUIRED] == "needs_qr"


def test_passkey_required_waits_for_a_person_like_the_other_link_phases() -> None:
    assert Phase.PASSKEY_REQUIRED.value == "PasskeyRequired"
    assert Phase.PASSKEY_REQUIRED in NEEDS_QR
    assert SUMMARY_BUCKET[Phase.PASSKEY_REQUIRED] == "needs_qr"
    # Only the commands leave it: regenerate-qr (Connecting), suspend, delete/restart.
    assert ALLOWED[Phase.PASSKEY_REQUIRED] == ALLOWED[Phase.QR_TIMEOUT]
    assert ALLOWED[Phase.PASSKEY_REQUIRED] == ALLOWED[Phase.LOGGED_OUT]
    # Reached only while linking.
    sources = {p for p, targets in ALLOWED.items() if Phase.PASSKEY_REQUIRED in targets}
    assert sources == {Phase.CONNECTING, Phase.QR_READY, Phase.PAIRING_CODE_READY}


def test_needs_qr_matches_its_summary_bucket() -> None:
    assert {p for p, bucket in SUMMARY_BUCKET.items() if bucket == "needs_qr"} == NEEDS_QR


# The account runner (connector/wafleet_connector/runner/state.py) only logs "unexpected phase
# change" for a move the table refuses; these are moves it makes.
@pytest.mark.parametrize("phase", [Phase.CONNECTED, Phase.QR_READY, Phase.LOGGED_OUT])
def test_runner_crash_can_fail_an_account_from_any_phase(phase: Phase) -> None:
    assert can_transition(phase, Phase.FAILED)


def test_qr_guard_can_trip_while_connecting() -> None:
    assert can_transition(Phase.CONNECTING, Phase.QR_TIMEOUT)


def test_the_crd_lists_every_phase() -> None:
    crd = yaml.safe_load((REPO / "crds" / "wafleet.io_whatsappaccounts.yaml").read_text())
    for version in crd["spec"]["versions"]:
        status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status["properties"]["phase"]["enum"] == [p.value for p in Phase]
