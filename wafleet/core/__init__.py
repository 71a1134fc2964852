"""Code shared by every component: phones, ids, phases, settings, records."""
