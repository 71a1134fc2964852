"""The event routes on the standalone app: the log (pull), webhook registration and its
checks, scopes, replay, dead letters; and receipts from the sim becoming message.status."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from support.api_flows import CONTACT, OTHER_PHONE, PHONE, AddAccount, Onboard, WaitUntil, send

Json = dict[str, Any]
# A public address, for the URL checks. Every webhook these tests register wants only
# inbound messages, and none arrives in them: no delivery ever leaves the machine.
PUBLIC = "https://93.184.216.34/hooks"
QUIET = ["message.inbound"]


def events(client: TestClient, **params: Any) -> list[Json]:
    response = client.get("/api/events", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    found: list[Json] = body["events"]
    assert body["nextAfter"] == (found[-1]["id"] if found else params.get("after"))
    return found


def key(client: TestClient, scopes: list[str], account_ids: list[str] | None = None) -> str:
    body: Json = {"name": "test", "scopes": scopes}
    if account_ids is not None:
        body["accountIds"] = account_ids
    response = client.post("/api/keys", json=body)
    assert response.status_code == 201, response.text
    secret: str = response.json()["secret"]
    return secret


def as_key(client: TestClient, secret: str, method: str, url: str, **kwargs: Any) -> Any:
    return client.request(method, url, headers={"Authorization": f"Bearer {secret}"}, **kwargs)


def error_code(response: Any) -> str:
    code: str = response.json()["error"]["code"]
    return code


# ----- the log -------------------------------------------------------------------------
def test_phases_and_inbound_messages_are_logged_with_a_seq_per_account(
    client: TestClient, onboard: Onboard, wait_until: WaitUntil
) -> None:
    account = onboard(client, PHONE)
    sent = client.post("/sim/messages", json={"from": CONTACT, "to": PHONE, "text": "hi there"})
    assert sent.status_code == 200, sent.text
    inbound = wait_until(
        "the inbound event",
        lambda: [e for e in events(client, types="message.inbound")],
    )
    [event] = inbound
    assert event["accountId"] == account["id"]
    assert event["data"]["body"] == "hi there"
    assert event["data"]["from"].startswith(CONTACT.removeprefix("+"))
    assert event["id"].startswith("evt_")

    mine = events(client, accountId=account["id"])
    assert [e["seq"] for e in mine] == list(range(1, len(mine) + 1))
    phases = [e["data"]["phase"] for e in mine if e["type"] == "account.phase"]
    assert phases[-1] == "Connected"
    assert "QRReady" in phases
    qr_event = next(
        e for e in mine if e["type"] == "account.phase" and e["data"]["phase"] == "QRReady"
    )
    assert qr_event["data"]["qr"]  # the raw QR, for whoever shows it

    # Paging: after the first event comes the second, and so on to the end.
    first, *rest = mine
    assert events(client, accountId=account["id"], after=first["id"]) == rest
    assert events(client, accountId=account["id"], after=mine[-1]["id"]) == []
    assert events(client, accountId=account["id"], limit=1) == [first]


def test_the_log_refuses_bad_queries_saying_what_to_fix(client: TestClient) -> None:
    for params, code in [
        ({"after": "nope"}, "invalid_parameter"),
        ({"after": "evt_unknown0000000"}, "event_not_found"),
        ({"types": "message.sent"}, "invalid_parameter"),
        ({"types": ","}, "invalid_parameter"),
        ({"limit": "0"}, "invalid_parameter"),
        ({"limit": "501"}, "invalid_parameter"),
        ({"accountId": "not an id"}, "invalid_parameter"),
    ]:
        response = client.get("/api/events", params=params)
        assert response.status_code in (400, 404), (params, response.text)
        assert error_code(response) == code, (params, response.text)
    assert "retention" in client.get("/api/events", params={"after": "evt_x1"}).text


def test_a_scoped_key_reads_only_its_accounts_events(
    client: TestClient, add_account: AddAccount, wait_until: WaitUntil
) -> None:
    mine = add_account(client, PHONE)
    other = add_account(client, OTHER_PHONE)
    wait_until(
        "both accounts logged",
        lambda: {e["accountId"] for e in events(client)} >= {mine["id"], other["id"]},
    )
    secret = key(client, ["read"], [mine["id"]])
    seen = as_key(client, secret, "GET", "/api/events").json()["events"]
    assert seen and {e["accountId"] for e in seen} == {mine["id"]}
    refused = as_key(client, secret, "GET", "/api/events", params={"accountId": other["id"]})
    assert refused.status_code == 403
    no_read = key(client, ["send"])
    assert error_code(as_key(client, no_read, "GET", "/api/events")) == "missing_scope"


# ----- receipts ------------------------------------------------------------------------
def test_receipts_move_the_sent_message_to_delivered_then_read(
    client: TestClient, onboard: Onboard, wait_until: WaitUntil
) -> None:
    account = onboard(client, PHONE)
    answer = send(client, account["id"], "are you there?")
    assert answer.status_code == 200, answer.text
    outbox_id = answer.json()["outboxId"]
    assert client.post("/sim/read", json={"phone": CONTACT, "from": PHONE}).status_code == 200

    def statuses() -> list[str] | None:
        found = [
            e["data"]["status"]
            for e in events(client, accountId=account["id"], types="message.status")
            if e["data"]["outboxId"] == outbox_id
        ]
        return found if found and found[-1] == "read" else None

    assert wait_until("the read receipt", statuses) == ["queued", "sent", "delivered", "read"]
    thread = client.get("/api/whatsapp/messages", params={"accountId": account["id"]}).json()
    [message] = thread["threads"][0]["messages"]
    assert message["status"] == "read"


# ----- webhooks ------------------------------------------------------------------------
def test_a_webhook_is_registered_listed_shown_and_deleted(client: TestClient) -> None:
    made = client.post(
        "/api/webhooks",
        json={"url": "https://93.184.216.34/hooks", "events": ["message.inbound"]},
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["success"] is True
    assert body["secret"].startswith("whsec_")
    hook = body["webhook"]
    assert hook["url"] == "https://93.184.216.34/hooks"
    assert hook["events"] == ["message.inbound"]
    assert hook["accountIds"] is None
    assert hook["enabled"] is True
    assert set(hook) >= {"id", "url", "events", "accountIds", "createdAt"}

    listed = client.get("/api/webhooks").json()["webhooks"]
    assert listed == [hook]
    assert "secret" not in client.get(f"/api/webhooks/{hook['id']}").text
    assert client.get(f"/api/webhooks/{hook['id']}/failures").json()["failures"] == []

    deleted = client.delete(f"/api/webhooks/{hook['id']}")
    assert deleted.json() == {"success": True, "webhookId": hook["id"]}
    assert client.get(f"/api/webhooks/{hook['id']}").status_code == 404
    assert client.get("/api/webhooks").json()["webhooks"] == []


def test_a_given_secret_is_kept(client: TestClient) -> None:
    secret = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"  # 24 bytes
    made = client.post("/api/webhooks", json={"url": PUBLIC, "events": QUIET, "secret": secret})
    assert made.status_code == 201, made.text
    assert made.json()["secret"] == secret


def test_webhook_registration_refuses_bad_input_saying_what_to_fix(client: TestClient) -> None:
    cases: list[tuple[Json, str]] = [
        ({}, "url"),
        ({"url": "ftp://93.184.216.34/x"}, "url"),
        ({"url": "http://127.0.0.1:9/x"}, "url"),  # loopback: refused by default
        ({"url": "http://10.1.2.3/x"}, "url"),  # private
        ({"url": "http://169.254.169.254/latest"}, "url"),  # link-local (cloud metadata)
        ({"url": "http://[::1]/x"}, "url"),
        ({"url": "http://user:pw@93.184.216.34/x"}, "url"),
        ({"url": "https://93.184.216.34/", "events": ["message.sent"]}, "events"),
        ({"url": "https://93.184.216.34/", "events": []}, "events"),
        ({"url": "https://93.184.216.34/", "accountIds": ["not an id"]}, "accountIds"),
        ({"url": "https://93.184.216.34/", "secret": "plain"}, "secret"),
    ]
    for body, field in cases:
        response = client.post("/api/webhooks", json=body)
        assert response.status_code == 400, (body, response.text)
        assert f"'{field}'" in response.json()["error"]["message"], (body, response.text)
    assert (
        "pw" not in client.post("/api/webhooks", json={"url": "http://user:pw@93.184.216.34/"}).text
    )
    assert client.get("/api/webhooks").json()["webhooks"] == []  # nothing was registered


def test_loopback_webhooks_are_allowed_by_the_setting(make_client: Any) -> None:
    client = make_client(webhook_allow_private=True)
    made = client.post("/api/webhooks", json={"url": "http://127.0.0.1:9/hook"})
    assert made.status_code == 201, made.text


def test_webhook_scopes(client: TestClient, add_account: AddAccount) -> None:
    mine = add_account(client, PHONE)
    other = add_account(client, OTHER_PHONE)
    reader = key(client, ["read"])
    refused = as_key(
        client, reader, "POST", "/api/webhooks", json={"url": "https://93.184.216.34/"}
    )
    assert error_code(refused) == "missing_scope"
    limited = key(client, ["manage"], [mine["id"]])
    unnamed = as_key(
        client, limited, "POST", "/api/webhooks", json={"url": "https://93.184.216.34/"}
    )
    assert unnamed.status_code == 403, unnamed.text
    foreign = as_key(
        client,
        limited,
        "POST",
        "/api/webhooks",
        json={"url": "https://93.184.216.34/", "accountIds": [other["id"]]},
    )
    assert error_code(foreign) == "account_not_allowed"
    own = as_key(
        client,
        limited,
        "POST",
        "/api/webhooks",
        json={"url": PUBLIC, "events": QUIET, "accountIds": [mine["id"]]},
    )
    assert own.status_code == 201, own.text
    everyone = client.post("/api/webhooks", json={"url": PUBLIC, "events": QUIET})
    assert everyone.status_code == 201
    seen = as_key(client, limited, "GET", "/api/webhooks").json()["webhooks"]
    assert [h["id"] for h in seen] == [own.json()["webhook"]["id"]]
    hidden = everyone.json()["webhook"]["id"]
    assert as_key(client, limited, "DELETE", f"/api/webhooks/{hidden}").status_code == 404


def test_replay_needs_an_event_in_the_log(
    client: TestClient, add_account: AddAccount, wait_until: WaitUntil
) -> None:
    account = add_account(client, PHONE)
    [first, *_] = wait_until("an event", lambda: events(client, accountId=account["id"]))
    made = client.post("/api/webhooks", json={"url": PUBLIC, "events": QUIET})
    hook = made.json()["webhook"]
    unknown = client.post(f"/api/webhooks/{hook['id']}/replay", json={"after": "evt_nothere1"})
    assert error_code(unknown) == "event_not_found"
    bad = client.post(f"/api/webhooks/{hook['id']}/replay", json={"after": "42"})
    assert bad.status_code == 400
    done = client.post(f"/api/webhooks/{hook['id']}/replay", json={"after": first["id"]})
    assert done.status_code == 200, done.text
    assert done.json()["lanes"] == 1
    missing = client.post("/api/webhooks/wh_0000000000000000/replay", json={"after": first["id"]})
    assert error_code(missing) == "webhook_not_found"
