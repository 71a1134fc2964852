"""The chart's settings for a fleet moved over from the legacy server."""

from __future__ import annotations

from helm.chartkit import HelmChart


def test_the_legacy_id_style_and_the_accounts_mirror_reach_the_config(chart: HelmChart) -> None:
    rendered = chart.render(
        sets=[
            "config.accountIds=legacy",
            "config.legacyEnv=dev",
            "config.connectTimeout=45",
            "store=firestore",
            "firestore.project=my-project-1",
            "firestore.accountsMirrorDelay=5",
            "sessionBackup.existingSecret=backup-key",
        ]
    ).one("ConfigMap")
    data = rendered["data"]
    assert data["WAFLEET_ACCOUNT_IDS"] == "legacy"
    assert data["WAFLEET_LEGACY_ENV"] == "dev"
    assert data["WAFLEET_CONNECT_TIMEOUT"] == "45"
    assert data["WAFLEET_ACCOUNTS_MIRROR"] == "true"
    assert data["WAFLEET_ACCOUNTS_MIRROR_DELAY"] == "5"
    refused = chart.refusal(sets=["config.accountIds=old"])
    assert "/config/accountIds" in refused, refused
