"""The REST API of a standalone process or a cluster, over HTTP only.

One ``httpx.Client`` per command, the key sent as ``Authorization: Bearer``. Every error
becomes an ``ApiFailure`` whose message names what to fix (the server unreachable at its
URL, the key refused, a scope lacking, no such account) and never holds the key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx

from wafleet import __version__
from wafleet_app.people.errors import ApiFailure
from wafleet_app.people.settings import CliSettings

PAGE = 500  # accounts per page of the list (the API allows 1..1000)
STREAM_READ_TIMEOUT = 60.0  # the stream pings every 15 s (WAFLEET_EVENT_STREAM_PING)
Json = dict[str, Any]


def path_part(value: str) -> str:
    """An id as one path segment (an id with '/' or '?' cannot reach another route)."""
    return quote(value, safe="")


class Api:
    def __init__(self, settings: CliSettings, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self._http = httpx.Client(
            base_url=settings.url + "/",
            headers={
                "Authorization": f"Bearer {settings.key}",
                "Accept": "application/json",
                "User-Agent": f"wafleet-cli/{__version__}",
            },
            timeout=httpx.Timeout(settings.timeout, connect=min(settings.timeout, 10.0)),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- errors ------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        return text.replace(self.settings.key, "<key>")

    def unreachable(self, exc: httpx.HTTPError) -> ApiFailure:
        url = self.settings.url
        if isinstance(exc, httpx.TimeoutException):
            what = f"the server at {url} did not answer within {self.settings.timeout:g} s"
        elif isinstance(exc, httpx.ConnectError):
            what = f"cannot reach the server at {url} ({self._scrub(str(exc)) or 'refused'})"
            what += f"; is it running, and is the URL from {self.settings.url_source} right?"
        else:
            detail = self._scrub(str(exc)) or type(exc).__name__
            what = f"the connection to {url} failed ({detail})"
        return ApiFailure(what, transient=True)

    def refusal(self, response: httpx.Response) -> ApiFailure:
        status = response.status_code
        try:
            body = response.json()
            error = body.get("error") if isinstance(body, dict) else None
        except ValueError:
            error = None
        if not isinstance(error, dict):
            return ApiFailure(
                f"the server at {self.settings.url} answered {status} without a wafleet "
                f"error; is the URL from {self.settings.url_source} a wafleet API?",
                status=status,
                transient=status >= 500,
            )
        code = str(error.get("code", ""))
        message = self._scrub(str(error.get("message", "")))
        if status == 401:
            text = f"the key was refused (401 {code}: {message}); check the key from "
            text += self.settings.key_source
        elif status == 403:
            text = f"the key lacks a scope for this (403 {code}: {message})"
        elif status == 404 and code == "account_not_found":
            text = f"no such account (404: {message}); `wafleet accounts list` shows them"
        elif status == 404 and code == "not_found":
            text = f"the server at {self.settings.url} has no such route (404: {message}); "
            text += "is it a wafleet API of this version?"
        else:
            text = f"the API refused it ({status} {code}: {message})"
        return ApiFailure(text, status=status, code=code, transient=status in (502, 503, 504))

    # -- requests ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Json | None = None,
        headers: dict[str, str] | None = None,
    ) -> Json:
        try:
            response = self._http.request(
                method, path.lstrip("/"), params=params, json=body, headers=headers
            )
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from None
        if response.is_redirect:
            raise ApiFailure(
                f"the server at {self.settings.url} redirects to "
                f"{response.headers.get('location', '?')}; give that URL instead",
                status=response.status_code,
            )
        if not response.is_success:
            raise self.refusal(response)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ApiFailure(f"the server at {self.settings.url} did not answer JSON")
        return data

    def account(self, account_id: str) -> Json:
        answer: Json = self.request("GET", f"/api/whatsapp/accounts/{path_part(account_id)}")
        return dict(answer["account"])

    def accounts(self, page: int = PAGE) -> Iterator[Json]:
        """Every account, in creation order, a page at a time (the API's cursor)."""
        params = {"qr": "raw", "limit": str(page)}  # the code, not its PNG
        while True:
            answer = self.request("GET", "/api/whatsapp/accounts", params=params)
            yield from answer["accounts"]
            cursor = answer.get("nextCursor")
            if not cursor:
                return
            params = {**params, "cursor": str(cursor)}

    def add_account(self, phone: str, name: str | None, login: str) -> Json:
        body: Json = {"phone": phone, "login": login}
        if name:
            body["name"] = name
        return self.request("POST", "/api/whatsapp/add-account", body=body)

    def action(self, verb: str, account_id: str) -> Json:
        """``regenerate-qr`` or ``disconnect`` of one account."""
        return self.request("POST", f"/api/whatsapp/{verb}/{path_part(account_id)}")

    def delete(self, account_id: str) -> Json:
        return self.request("DELETE", f"/api/whatsapp/accounts/{path_part(account_id)}")

    def qr_link(self, account_id: str | None) -> Json:
        """A signed link to a QR page (one account's, or every one's) for a browser."""
        if account_id is None:
            return self.request("POST", "/api/whatsapp/qr-visual/link")
        return self.request("POST", f"/api/whatsapp/qr/{path_part(account_id)}/link")

    def send(self, account_id: str, to: str, text: str, key: str | None) -> Json:
        body: Json = {"accountId": account_id, "to": to, "message": text}
        if key:
            body["idempotencyKey"] = key
        return self.request("POST", "/api/whatsapp/send-message", body=body)

    def outbox(self, item_id: str) -> Json:
        answer = self.request("GET", f"/api/whatsapp/outbox/{path_part(item_id)}")
        return dict(answer["item"])

    def threads(self, account_id: str, thread_id: str | None, limit: int) -> list[Json]:
        params = {"accountId": account_id, "limit": str(limit)}
        if thread_id:
            params["threadId"] = thread_id
        return list(self.request("GET", "/api/whatsapp/messages", params=params)["threads"])

    def event_lines(
        self,
        params: dict[str, str],
        last_id: str | None,
        on_open: Callable[[], None] | None = None,
    ) -> Iterator[str]:
        """The lines of ``GET /api/events/stream``, resumed after ``last_id``; ``on_open``
        is called once the server answered (every event from then on will come). A
        dropped connection ends in an ``ApiFailure`` with ``transient`` set."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        timeout = httpx.Timeout(self.settings.timeout, read=STREAM_READ_TIMEOUT)
        try:
            with self._http.stream(
                "GET", "api/events/stream", params=params, headers=headers, timeout=timeout
            ) as response:
                if not response.is_success:
                    response.read()
                    raise self.refusal(response)
                if on_open is not None:
                    on_open()
                yield from response.iter_lines()
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from None
