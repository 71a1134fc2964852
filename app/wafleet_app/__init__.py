"""The composition: the ``wafleet`` command and standalone mode, the one place that
imports every component (the shared ``wafleet`` package imports none)."""
