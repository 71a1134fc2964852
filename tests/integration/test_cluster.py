"""The control plane end to end: kopf operator, API, connectors and sim on the emulator.

One cluster per module (starting it costs seconds); each test works on its own accounts.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.cluster import NAMESPACE, Cluster, api_client
from support.process import wait_until
from wafleet.core.ids import account_id_for, legacy_account_id

pytestmark = pytest.mark.k8s

SESSIONS_PER_SHARD = 10


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(
        tmp_path_factory.mktemp("cluster"), sessions_per_shard=SESSIONS_PER_SHARD, max_shards=20
    )
    try:
        running.start()
        yield running
    finally:
        running.stop()


def phone(n: int) -> str:
    return f"+40713{n:06d}"


def by_name(cluster: Cluster, prefix: str) -> dict[str, dict[str, Any]]:
    return {
        cr["metadata"]["name"]: cr
        for cr in cluster.accounts()
        if cr["metadata"]["name"].startswith(prefix)
    }


def shards_of(crs: dict[str, dict[str, Any]]) -> dict[str, int | None]:
    result: dict[str, int | None] = {}
    for name, cr in crs.items():
        label = (cr["metadata"].get("labels") or {}).get("wafleet.io/shard")
        result[name] = None if label is None else int(label)
    return result


def all_shard_loads(cluster: Cluster) -> Counter[int]:
    return Counter(s for s in shards_of(by_name(cluster, "")).values() if s is not None)


def assigned_condition(cluster: Cluster, name: str) -> dict[str, Any] | None:
    cr = by_name(cluster, name)[name]
    conditions = {c["type"]: c for c in (cr.get("status") or {}).get("conditions", [])}
    found: dict[str, Any] | None = conditions.get("Assigned")
    return found


def scan_all(cluster: Cluster, crs: dict[str, dict[str, Any]]) -> None:
    with httpx.Client(base_url=cluster.sim_url, timeout=10) as sim:
        for cr in crs.values():
            code = cr["status"]["qr"]["code"]
            response = sim.post("/sim/scan", json={"qr": code, "phone": cr["spec"]["phone"]})
            assert response.status_code == 200, response.text


def scan_shown(api: httpx.Client, sim: httpx.Client, account_id: str, number: str) -> None:
    """Scan the code the API shows, as a person would: a code can die between reading and
    scanning it (it rotated, or the shard that showed it stopped: 404 qr_not_found), and
    then the one shown now is scanned."""

    def scanned() -> bool:
        code = api.get(f"/api/whatsapp/accounts/{account_id}").json()["account"]["qr"]
        if not code:
            return False
        answer = sim.post("/sim/scan", json={"qr": code, "phone": number})
        assert answer.status_code in (200, 404), answer.text
        return answer.status_code == 200

    wait_until("a scan of the code shown", scanned, 60, interval=0.3)


def phases(crs: dict[str, dict[str, Any]]) -> Counter[str]:
    return Counter((cr.get("status") or {}).get("phase", "") for cr in crs.values())


def test_hundred_accounts_on_ten_shards_all_connected(cluster: Cluster) -> None:
    for n in range(100):
        cluster.create_account(f"fleet-{n:03d}", phone(n))

    def placed() -> bool:
        shards = shards_of(by_name(cluster, "fleet-"))
        return all(s is not None for s in shards.values())

    wait_until("100 accounts placed", placed, 60, interval=0.5)
    loads = all_shard_loads(cluster)
    assert loads == Counter({n: SESSIONS_PER_SHARD for n in range(10)})
    wait_until("10 connectors", lambda: cluster.follower.replicas() == 10, 30)  # type: ignore[union-attr]
    for cr in by_name(cluster, "fleet-").values():
        assert cr["status"]["shard"] == int(cr["metadata"]["labels"]["wafleet.io/shard"])

    def qr_ready() -> dict[str, dict[str, Any]] | None:
        crs = by_name(cluster, "fleet-")
        return crs if phases(crs)["QRReady"] == 100 else None

    crs = wait_until("100 QR codes", qr_ready, 120, interval=0.5)
    scan_all(cluster, crs)
    wait_until(
        "100 connected",
        lambda: phases(by_name(cluster, "fleet-"))["Connected"] == 100,
        90,
        interval=0.5,
    )


def test_killed_connector_restarts_and_its_accounts_reconnect_without_a_scan(
    cluster: Cluster,
) -> None:
    follower = cluster.follower
    assert follower is not None
    before = shards_of(by_name(cluster, "fleet-"))
    on_three = [name for name, shard in before.items() if shard == 3]
    assert on_three, "run after the 100-account test"
    with httpx.Client(base_url=cluster.sim_url, timeout=10) as sim:
        devices_before = sim.get("/sim/status").json()["devices"]
        restarts = follower.restarts.get(3, 0)
        follower.kill(3)
        wait_until("the connector restarted", lambda: follower.restarts.get(3, 0) > restarts, 30)

        def back() -> bool:
            crs = by_name(cluster, "fleet-")
            return phases({n: crs[n] for n in on_three})["Connected"] == len(on_three)

        wait_until("its accounts connected again", back, 60, interval=0.5)
        assert sim.get("/sim/status").json()["devices"] == devices_before, "a new scan happened"
    assert shards_of(by_name(cluster, "fleet-")) == before, "an account moved shard"


def test_operator_killed_during_onboarding_assigns_each_account_once(cluster: Cluster) -> None:
    operator = cluster.operator
    assert operator is not None
    before = shards_of(by_name(cluster, "fleet-"))
    errors: list[str] = []

    def onboard() -> None:
        try:
            for n in range(40):
                cluster.create_account(f"late-{n:03d}", phone(500 + n))
                time.sleep(0.02)
        except AssertionError as exc:  # pragma: no cover - reported below
            errors.append(str(exc))

    worker = threading.Thread(target=onboard)
    worker.start()
    time.sleep(0.3)
    operator.stop(signal.SIGKILL)  # a crash: kopf gets no chance to stop gracefully
    time.sleep(0.5)
    cluster.operator = cluster.operator_proc()
    cluster.operator.start()
    worker.join(30)
    assert not errors

    def placed() -> bool:
        shards = shards_of(by_name(cluster, "late-"))
        return len(shards) == 40 and all(s is not None for s in shards.values())

    wait_until("40 late accounts placed", placed, 90, interval=0.5)
    loads = all_shard_loads(cluster)
    assert max(loads.values()) <= SESSIONS_PER_SHARD, f"a shard is over capacity: {loads}"
    assert sum(loads.values()) == 140
    assert shards_of(by_name(cluster, "fleet-")) == before, "an assigned account moved"
    for cr in by_name(cluster, "late-").values():
        status_shard = (cr.get("status") or {}).get("shard")
        label = int(cr["metadata"]["labels"]["wafleet.io/shard"])
        assert status_shard in (None, label)


def test_delete_logs_out_wipes_and_removes(cluster: Cluster) -> None:
    number = "+40712999001"
    with api_client(cluster.api_url) as api, httpx.Client(base_url=cluster.sim_url) as sim:
        added = api.post("/api/whatsapp/add-account", json={"phone": number, "name": "Gone"})
        assert added.status_code == 200, added.text
        account_id = added.json()["account"]["id"]
        assert account_id == account_id_for(number)

        def qr() -> str | None:
            account = api.get(f"/api/whatsapp/accounts/{account_id}")
            code: str | None = (
                account.json()["account"]["qr"] if account.status_code == 200 else None
            )
            return code

        wait_until("a QR code through the API", qr, 60, interval=0.3)
        scan_shown(api, sim, account_id, number)
        wait_until(
            "connected",
            lambda: (
                api.get(f"/api/whatsapp/accounts/{account_id}").json()["account"]["status"]
                == "connected"
            ),
            30,
        )
        shard = shards_of(by_name(cluster, account_id))[account_id]
        volume = cluster.workdir / "volumes" / f"data-wafleet-connector-{shard}"
        session = volume / "sessions" / f"{account_id}.db"
        assert session.exists()
        assert sim.get("/sim/devices", params={"phone": number}).json()["devices"]

        assert api.delete(f"/api/whatsapp/accounts/{account_id}").status_code == 200
        wait_until("the CR gone", lambda: account_id not in by_name(cluster, account_id), 30)
        assert sim.get("/sim/devices", params={"phone": number}).json()["devices"] == []
        assert not session.exists()
        assert api.get(f"/api/whatsapp/accounts/{account_id}").status_code == 404


def test_an_account_with_a_legacy_id_runs_under_it_and_is_found_by_either(
    cluster: Cluster,
) -> None:
    """A migrated account: its CR is named wa-..., spec.legacyId names it everywhere else.

    The connector must write the status of, and release the finalizer of, the resource by
    its name while knowing the account by its legacy id; the API answers with the legacy id
    and takes either.
    """
    number = "+40712999101"
    name = account_id_for(number)
    legacy = legacy_account_id(number)
    cluster.create_account(name, number, legacyId=legacy)
    with api_client(cluster.api_url) as api, httpx.Client(base_url=cluster.sim_url) as sim:

        def shown() -> dict[str, Any] | None:
            response = api.get(f"/api/whatsapp/accounts/{legacy}")
            account: dict[str, Any] | None = (
                response.json()["account"] if response.status_code == 200 else None
            )
            return account if account and account["qr"] else None

        account = wait_until("a QR code for the legacy id", shown, 60, interval=0.3)
        assert account["id"] == legacy
        by_wafleet_name = api.get(f"/api/whatsapp/accounts/{name}")
        assert by_wafleet_name.status_code == 200
        assert by_wafleet_name.json()["account"]["id"] == legacy
        listed = [a["id"] for a in api.get("/api/whatsapp/accounts").json()["accounts"]]
        assert legacy in listed and name not in listed
        assert by_name(cluster, name)[name]["status"]["phase"] == "QRReady"  # written by name

        scan_shown(api, sim, legacy, number)
        wait_until(
            "connected under the legacy id",
            lambda: (
                api.get(f"/api/whatsapp/accounts/{legacy}").json()["account"]["status"]
                == "connected"
            ),
            30,
        )
        shard = shards_of(by_name(cluster, name))[name]
        volume = cluster.workdir / "volumes" / f"data-wafleet-connector-{shard}"
        session = volume / "sessions" / f"{legacy}.db"
        assert session.exists()

        assert api.delete(f"/api/whatsapp/accounts/{legacy}").status_code == 200
        wait_until("the CR gone", lambda: name not in by_name(cluster, name), 30)
        assert sim.get("/sim/devices", params={"phone": number}).json()["devices"] == []
        assert not session.exists()


def test_invalid_accounts_are_refused_by_the_schema(cluster: Cluster, tmp_path: Path) -> None:
    bad_phone = tmp_path / "bad-phone.yaml"
    bad_phone.write_text(
        "apiVersion: wafleet.io/v1alpha1\nkind: WhatsAppAccount\n"
        f"metadata: {{name: bad-phone, namespace: {NAMESPACE}}}\n"
        "spec: {phone: '0712 345 678'}\n"
    )
    result = cluster.kubectl("apply", "-f", str(bad_phone), check=False)
    assert result.returncode != 0
    assert "spec.phone" in result.stderr and "should match" in result.stderr
    unknown = tmp_path / "unknown-field.yaml"
    unknown.write_text(
        "apiVersion: wafleet.io/v1alpha1\nkind: WhatsAppAccount\n"
        f"metadata: {{name: unknown-field, namespace: {NAMESPACE}}}\n"
        "spec: {phone: '+40712345678', colour: blue}\n"
    )
    result = cluster.kubectl("apply", "-f", str(unknown), check=False)
    assert result.returncode != 0
    assert 'unknown field "spec.colour"' in result.stderr
    bad_login = tmp_path / "bad-login.yaml"
    bad_login.write_text(
        "apiVersion: wafleet.io/v1alpha1\nkind: WhatsAppAccount\n"
        f"metadata: {{name: bad-login, namespace: {NAMESPACE}}}\n"
        "spec: {phone: '+40712345678', login: carrier-pigeon}\n"
    )
    result = cluster.kubectl("apply", "-f", str(bad_login), check=False)
    assert result.returncode != 0 and "spec.login" in result.stderr
    assert not {"bad-phone", "unknown-field", "bad-login"} & set(by_name(cluster, ""))


def test_kubectl_get_wa_shows_the_printer_columns(cluster: Cluster) -> None:
    result = cluster.kubectl("get", "wa", "-n", NAMESPACE)
    header = result.stdout.splitlines()[0].split()
    assert header == ["NAME", "PHASE", "SHARD", "PHONE", "CONNECTED", "AGE"]
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    fleet = [row for row in rows if row[0].startswith("fleet-")]
    assert fleet and all(row[1] == "Connected" for row in fleet)
    assert all("****" in row[3] for row in fleet), "phones must be masked"
    assert "+40713" not in result.stdout.replace("+407****", "")


def test_disconnect_suspends_and_regenerate_resumes_or_relinks(cluster: Cluster) -> None:
    number = "+40712999002"
    with api_client(cluster.api_url) as api, httpx.Client(base_url=cluster.sim_url) as sim:
        account_id = api.post("/api/whatsapp/add-account", json={"phone": number}).json()[
            "account"
        ]["id"]

        def account() -> dict[str, Any]:
            found: dict[str, Any] = api.get(f"/api/whatsapp/accounts/{account_id}").json()[
                "account"
            ]
            return found

        wait_until("a QR code", lambda: account()["qr"], 60, interval=0.3)
        scan_shown(api, sim, account_id, number)
        wait_until("connected", lambda: account()["status"] == "connected", 30)
        assert api.post(f"/api/whatsapp/regenerate-qr/{account_id}").status_code == 409

        assert api.post(f"/api/whatsapp/disconnect/{account_id}").status_code == 200
        wait_until("suspended", lambda: account()["phase"] == "Suspended", 30)
        cr = by_name(cluster, account_id)[account_id]
        assert cr["spec"]["suspended"] is True
        assert sim.get("/sim/devices", params={"phone": number}).json()["devices"], "logged out"

        assert api.post(f"/api/whatsapp/regenerate-qr/{account_id}").status_code == 200
        wait_until("resumed without a scan", lambda: account()["status"] == "connected", 30)

        # Logged out from the phone: a new QR only when asked, through the CR annotation.
        fault = sim.post("/sim/faults", json={"phone": number, "kind": "logout"})
        assert fault.status_code == 200
        wait_until("logged out", lambda: account()["phase"] == "LoggedOut", 30)
        time.sleep(0.5)
        assert account()["qr"] is None
        assert api.post(f"/api/whatsapp/regenerate-qr/{account_id}").status_code == 200
        wait_until("a new QR code", lambda: account()["phase"] == "QRReady", 30)
        request = by_name(cluster, account_id)[account_id]["metadata"]["annotations"]
        assert request["wafleet.io/regenerate-qr"]


def test_a_second_account_with_the_same_phone_is_refused(cluster: Cluster) -> None:
    cluster.create_account("dup-first", "+40712999003")
    wait_until(
        "the first placed",
        lambda: shards_of(by_name(cluster, "dup-first"))["dup-first"] is not None,
        30,
    )
    cluster.create_account("dup-second", "+40712999003")

    condition = wait_until("the refusal", lambda: assigned_condition(cluster, "dup-second"), 30)
    assert condition["status"] == "False" and condition["reason"] == "DuplicatePhone"
    assert "dup-first" in condition["message"] and "+40712999003" not in condition["message"]
    assert shards_of(by_name(cluster, "dup-second"))["dup-second"] is None
    cr = by_name(cluster, "dup-second")["dup-second"]
    assert cr["status"]["phase"] == "Pending"
    events = cluster.kubectl("get", "events", "-n", NAMESPACE).stdout
    assert "DuplicatePhone" in events


def test_beyond_max_shards_accounts_stay_pending_with_the_reason(cluster: Cluster) -> None:
    operator = cluster.operator
    assert operator is not None
    loads = all_shard_loads(cluster)
    full_shards = (sum(loads.values()) + SESSIONS_PER_SHARD - 1) // SESSIONS_PER_SHARD
    # Fill the last partly used shard, then restart the operator with no room to grow.
    room = full_shards * SESSIONS_PER_SHARD - sum(loads.values())
    for n in range(room):
        cluster.create_account(f"fill-{n:02d}", phone(900 + n))
    wait_until(
        "the fillers placed",
        lambda: all(s is not None for s in shards_of(by_name(cluster, "fill-")).values()),
        60,
    )
    operator.stop()
    cluster.max_shards = full_shards
    cluster.operator = cluster.operator_proc()
    cluster.operator.start()
    cluster.create_account("over-capacity", "+40712999004")

    condition = wait_until("the refusal", lambda: assigned_condition(cluster, "over-capacity"), 30)
    assert condition["reason"] == "NoCapacity" and "maxShards" in condition["message"]
    cr = by_name(cluster, "over-capacity")["over-capacity"]
    assert cr["status"]["phase"] == "Pending" and "maxShards" in cr["status"]["reason"]
    assert max(all_shard_loads(cluster).values()) <= SESSIONS_PER_SHARD


def test_operator_finishes_the_clean_up_when_the_shard_is_gone(cluster: Cluster) -> None:
    follower = cluster.follower
    assert follower is not None
    shards = shards_of(by_name(cluster, "fleet-"))
    victim = next(name for name, shard in sorted(shards.items()) if shard == 9)
    follower.paused.add(9)
    follower.kill(9)  # the shard's pod is gone and does not come back
    try:
        url = (
            f"{cluster.api.url}/apis/wafleet.io/v1alpha1/namespaces/{NAMESPACE}"
            f"/whatsappaccounts/{victim}"
        )
        deleted = httpx.delete(url, timeout=10)
        assert deleted.status_code == 200
        assert deleted.json()["metadata"]["deletionTimestamp"], "the finalizer should hold it"
        # Lease (6 s) expires, then the operator's clean-up timeout (5 s) passes.
        wait_until("the CR gone", lambda: victim not in by_name(cluster, victim), 60)
        events = cluster.kubectl("get", "events", "-n", NAMESPACE).stdout
        assert "CleanupOrphaned" in events
        # Its neighbours do not keep claiming to be connected while nobody runs them.
        neighbours = [name for name, shard in shards.items() if shard == 9 and name != victim]

        def flagged() -> bool:
            crs = by_name(cluster, "fleet-")
            return all(
                crs[n]["status"]["phase"] == "Pending"
                and "stopped renewing its lease" in crs[n]["status"]["reason"]
                for n in neighbours
            )

        wait_until("the silent shard's accounts flagged", flagged, 30)
    finally:
        follower.paused.discard(9)
    wait_until(
        "shard 9 back",
        lambda: all(
            cr["status"]["phase"] == "Connected"
            for name, cr in by_name(cluster, "fleet-").items()
            if shards.get(name) == 9 and name != victim
        ),
        60,
    )
