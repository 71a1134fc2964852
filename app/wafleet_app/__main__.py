from __future__ import annotations

from wafleet_app.cli import main

raise SystemExit(main())
