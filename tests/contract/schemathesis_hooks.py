"""Loaded by schemathesis (``hooks`` in the run's config file).

The OpenAPI document has formats no JSON Schema keyword can say, registered here as
generators of valid values (from ``strategies``, built with phonenumbers, not the server):

- ``phone``: a number valid for its country, in any spelling the document allows
  (E.164, grouped, parenthesised country code, 00 prefix, WhatsApp JID);
- ``cursor``: a ``nextCursor`` as the server writes one;
- ``webhook-url``: an http(s) URL the server takes: here loopback ones on a closed port
  (the run's server allows private addresses, so that no delivery leaves the machine);
- ``webhook-secret``: ``whsec_`` and the base64 of 24 to 64 bytes.

A ``pattern`` beside them (the spelling the server enforces first) stays in the served
document but is left out of the copy schemathesis generates from: its coverage phase
builds boundary values from a pattern alone ("0" and 39 spaces for a phone), whatever the
format beside it says. The unit property tests hold the server to those patterns.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import schemathesis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for ``contract``

from contract.strategies import cursors, phones, webhook_secrets, webhook_urls

FORMATS = {
    "phone": phones,
    "cursor": cursors,
    "webhook-url": webhook_urls,
    "webhook-secret": webhook_secrets,
}

for name, strategy in FORMATS.items():
    schemathesis.openapi.format(name, strategy)


def _generated_by_format(node: object) -> None:
    if isinstance(node, dict):
        if node.get("format") in FORMATS:
            node.pop("pattern", None)
        for value in node.values():
            _generated_by_format(value)
    elif isinstance(node, list):
        for value in node:
            _generated_by_format(value)


@schemathesis.hook
def before_load_schema(context: schemathesis.HookContext, raw_schema: dict[str, Any]) -> None:
    _generated_by_format(raw_schema)
