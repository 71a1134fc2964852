"""Which state a list (or a watch) reads: resourceVersion, resourceVersionMatch, continue.

As the API server (watch cache with snapshots, falling back to etcd):

- no resourceVersion: the latest state; ``0`` or NotOlderThan: any state at least
  that fresh (the latest); a resourceVersion ahead of the server waits up to 3 s
  and then answers 504 ``Timeout: Too large resource version: X, current: Y``;
- ``resourceVersionMatch=Exact``, or a ``limit`` with a resourceVersion other than
  0, or a ``continue`` token: the state at exactly that resourceVersion,
  rebuilt from the history; once the history no longer reaches it, 410 Expired
  ``The resourceVersion for the provided list is too old.`` (for a continue
  token: the longer message and a token to go on from the latest state).
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import QueryParams

from k8s_emulator.errors import ApiError, FieldError, bad_request, forbidden, invalid_object
from k8s_emulator.resources import ResourceType
from k8s_emulator.store import Store

JSON = dict[str, Any]
FRESHNESS_WAIT = 3.0
EXPIRED = "The resourceVersion for the provided list is too old."
CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this response "
    "to retrieve the remainder of the results. Continuing with the provided token results in an "
    "inconsistent list - objects that were created, modified, or deleted between the time the "
    "first chunk was returned and now may show up in the list."
)
LATEST = -1


@dataclass
class Snapshot:
    items: list[JSON]
    rv: int
    after: tuple[str, str] | None  # the continue token's position


def encode_token(rv: int, position: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(
        json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": list(position)}).encode()
    ).decode()


def decode_token(token: str) -> tuple[int, tuple[str, str]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token))
        start = data["start"]
        return int(data["rv"]), (str(start[0]), str(start[1]))
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion "
            "(version meta.k8s.io/v1)"
        ) from error


def parse_rv(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0 or not text.isdigit():
        raise bad_request(f"invalid resource version: {text}")
    return value


def too_large(wanted: int, current: int) -> ApiError:
    return ApiError(
        504,
        "Timeout",
        f"Timeout: Too large resource version: {wanted}, current: {current}",
        {
            "causes": [
                {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
            ],
            "retryAfterSeconds": 1,
        },
    )


async def wait_fresh(store: Store, wanted: int) -> None:
    """Wait until the store reaches ``wanted`` (as the watch cache does), or 504."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FRESHNESS_WAIT
    while store.rv < wanted:
        if loop.time() >= deadline:
            raise too_large(wanted, store.rv)
        await asyncio.sleep(0.05)


def validate_list_options(params: QueryParams) -> None:
    """ValidateListOptions' errors (422 ListOptions.meta.k8s.io)."""
    rv = params.get("resourceVersion") or ""
    match = params.get("resourceVersionMatch") or ""
    errors: list[FieldError] = []
    if match and match not in ("Exact", "NotOlderThan"):
        detail = 'supported values: "Exact", "NotOlderThan", ""'
        errors.append(FieldError("FieldValueNotSupported", "resourceVersionMatch", match, detail))
    elif match and not rv:
        errors.append(
            forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            )
        )
    elif match == "Exact" and rv == "0":
        errors.append(
            forbidden(
                "resourceVersionMatch",
                'resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
            )
        )
    if params.get("continue") and (rv or match):
        errors.append(
            forbidden(
                "resourceVersion", "specifying resource version is not allowed when using continue"
            )
        )
    if errors:
        raise invalid_object("ListOptions", "meta.k8s.io", "", errors)


async def snapshot(
    store: Store, rtype: ResourceType, namespace: str | None, params: QueryParams
) -> Snapshot:
    validate_list_options(params)
    rv_text = params.get("resourceVersion") or ""
    match = params.get("resourceVersionMatch") or ""
    limit = int(params.get("limit") or 0)
    token = params.get("continue")
    if token:
        rv, after = decode_token(token)
        if rv == LATEST:
            return Snapshot(store.items(rtype.key, namespace), store.rv, after)
        items = await _exact(store, rtype, namespace, rv)
        if items is None:
            expired = ApiError(410, "Expired", CONTINUE_EXPIRED)
            expired.list_continue = encode_token(LATEST, after)
            raise expired
        return Snapshot(items, rv, after)
    if match == "Exact" or (limit and rv_text not in ("", "0") and match != "NotOlderThan"):
        rv = parse_rv(rv_text)
        items = await _exact(store, rtype, namespace, rv)
        if items is None:
            raise ApiError(410, "Expired", EXPIRED)
        return Snapshot(items, rv, None)
    if rv_text not in ("", "0"):
        await wait_fresh(store, parse_rv(rv_text))
    return Snapshot(store.items(rtype.key, namespace), store.rv, None)


async def _exact(
    store: Store, rtype: ResourceType, namespace: str | None, rv: int
) -> list[JSON] | None:
    await wait_fresh(store, rv)
    return store.items_at(rtype.key, namespace, rv)
