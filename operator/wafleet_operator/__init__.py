"""The kopf operator (issue 3). Folder ``operator/``, import name ``wafleet_operator``.

Not named ``operator``: that would shadow Python's standard library module.
"""
