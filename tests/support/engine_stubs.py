"""Go libraries that fail the way a broken neonize does, for the engine supervisor's tests."""

from __future__ import annotations

import os
import sys
from typing import Any


def die_at_start() -> Any:
    """The worker dies as it loads its library, as a Go runtime that aborts at init."""
    sys.stderr.write("fatal error: concurrent map read and map write\n")
    sys.stderr.flush()
    os._exit(2)
