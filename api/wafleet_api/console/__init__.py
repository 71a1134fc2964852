"""The operator console: server-rendered pages (Jinja2, htmx) at ``/`` and ``/console/``.

``routes()`` is what ``create_app`` mounts; ``Console`` (``app.state.console``) holds the
session codec, the templates and the history cache. See ``docs/console.md``.
"""

from __future__ import annotations

from wafleet_api.console.routing import routes
from wafleet_api.console.state import Console, ConsoleConfig

__all__ = ["Console", "ConsoleConfig", "routes"]
