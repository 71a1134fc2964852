from __future__ import annotations

from wafleet.cli import main

raise SystemExit(main())
