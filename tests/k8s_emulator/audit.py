"""Who is calling (bearer tokens) and the audit log of every request."""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass, field
from typing import Any

JSON = dict[str, Any]
ADMIN_TOKEN = "emulator-admin-token"
SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class Identity:
    user: str
    groups: tuple[str, ...] = ()


ADMIN = Identity("kubernetes-admin", ("system:masters", "system:authenticated"))


def service_account_identity(user: str) -> Identity:
    namespace = user[len(SA_PREFIX) :].split(":", 1)[0]
    return Identity(
        user,
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
    )


@dataclass
class Authenticator:
    """Maps bearer tokens to users.

    The admin token is a cluster admin (group system:masters), and so is a
    request without credentials, as on the API server's old insecure port:
    client-go (kubectl) never sends a bearer token over plain HTTP. Other tokens
    are registered with ``--token TOKEN=USER`` or ``POST /_emulator/tokens``; a
    token that is itself ``system:serviceaccount:NS:NAME`` stands for that
    service account. kubectl acts as a user through impersonation (``--as``, or
    ``as:`` in the kubeconfig), which an admin, or the user itself, may use.
    """

    tokens: dict[str, str] = field(default_factory=dict)

    def identify(
        self,
        authorization: str | None,
        impersonate: str | None = None,
        groups: tuple[str, ...] = (),
    ) -> Identity | None:
        """The caller, or None for credentials nobody knows (401)."""
        identity = self._from_token(authorization)
        if identity is None or not impersonate or impersonate == identity.user:
            return identity
        if "system:masters" not in identity.groups:
            return None
        if impersonate.startswith(SA_PREFIX) and not groups:
            return service_account_identity(impersonate)
        return Identity(impersonate, (*groups, "system:authenticated"))

    def _from_token(self, authorization: str | None) -> Identity | None:
        if not authorization:
            return ADMIN
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        token = token.strip()
        if token == ADMIN_TOKEN:
            return ADMIN
        user = self.tokens.get(token, token if token.startswith(SA_PREFIX) else None)
        if user is None:
            return None
        if user.startswith(SA_PREFIX):
            return service_account_identity(user)
        return Identity(user, ("system:authenticated",))


@dataclass
class AuditEntry:
    time: str
    verb: str
    apiGroup: str
    apiVersion: str
    resource: str
    subresource: str
    namespace: str
    name: str
    user: str
    groups: list[str]
    method: str
    path: str
    code: int
    nonResourceURL: bool


class AuditLog:
    def __init__(self, limit: int = 100_000) -> None:
        self.entries: list[AuditEntry] = []
        self.limit = limit

    def record(self, entry: AuditEntry) -> None:
        self.entries.append(entry)
        if len(self.entries) > self.limit:
            del self.entries[: len(self.entries) - self.limit]

    def as_json(self, user: str | None = None) -> JSON:
        items = [asdict(e) for e in self.entries if user is None or e.user == user]
        return {"kind": "AuditLog", "items": items}

    def clear(self) -> None:
        self.entries.clear()


def timestamp() -> str:
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}Z"
