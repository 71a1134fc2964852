"""The legacy server's environment variables, translated for standalone mode."""

from __future__ import annotations

import pytest

from support.credentials import service_account
from wafleet.core.envconfig import ConfigError
from wafleet.core.legacy_env import translate_legacy
from wafleet.core.settings import Settings

TOKEN = "legacy-admin-token-0123456789"


def test_each_legacy_variable_becomes_its_wafleet_variable_with_a_notice() -> None:
    legacy = translate_legacy(
        {
            "PORT": "9090",
            "ADMIN_TOKEN": TOKEN,
            "SESSIONS_PATH": "/data/sessions",
            "WHATSAPP_CONNECT_TIMEOUT_MS": "45000",
        }
    )
    settings = Settings.from_env(legacy.env)
    assert settings.port == 9090
    assert settings.admin_token == TOKEN
    assert str(settings.sessions_dir) == "/data/sessions"
    assert settings.connect_timeout == 45.0
    assert settings.store == "sqlite"  # no Firestore credentials given
    assert legacy.notices == [
        "PORT is read as WAFLEET_PORT; set that instead",
        "ADMIN_TOKEN is read as WAFLEET_ADMIN_TOKEN; set that instead",
        "SESSIONS_PATH is read as WAFLEET_SESSIONS_DIR; set that instead",
        "WHATSAPP_CONNECT_TIMEOUT_MS is read as WAFLEET_CONNECT_TIMEOUT; set that instead",
    ]
    assert all(TOKEN not in notice for notice in legacy.notices)


def test_a_wafleet_variable_wins_and_the_legacy_one_is_named_as_ignored() -> None:
    legacy = translate_legacy({"PORT": "9090", "WAFLEET_PORT": "8081"})
    assert Settings.from_env(legacy.env).port == 8081
    assert legacy.notices == ["PORT is ignored: WAFLEET_PORT is set and wins; remove PORT"]


def test_no_legacy_variable_changes_nothing() -> None:
    env = {"WAFLEET_PORT": "8081", "HOME": "/root"}
    legacy = translate_legacy(env)
    assert legacy.env == env
    assert legacy.notices == []


def test_inline_firebase_credentials_select_firestore_and_its_project() -> None:
    legacy = translate_legacy({"FIREBASE_SERVICE_ACCOUNT_JSON": service_account()})
    settings = Settings.from_env(legacy.env)
    assert settings.store == "firestore"
    assert settings.firestore_project == "legacy-project"
    assert settings.firestore_credentials_json is not None
    assert "private_key" not in repr(settings)  # a secret stays out of logs
    explicit = translate_legacy(
        {
            "FIREBASE_SERVICE_ACCOUNT_JSON": service_account(),
            "WAFLEET_STORE": "sqlite",
            "WAFLEET_FIRESTORE_PROJECT": "other",
        }
    )
    assert Settings.from_env(explicit.env).store == "sqlite"
    assert Settings.from_env(explicit.env).firestore_project == "other"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("FIREBASE_SERVICE_ACCOUNT_JSON", "{not json", "FIREBASE_SERVICE_ACCOUNT_JSON is not JSON"),
        (
            "FIREBASE_SERVICE_ACCOUNT_JSON",
            '{"type": "authorized_user"}',
            "FIREBASE_SERVICE_ACCOUNT_JSON is not a service account key",
        ),
        (
            "WHATSAPP_CONNECT_TIMEOUT_MS",
            "1m",
            "WHATSAPP_CONNECT_TIMEOUT_MS='1m' is not a whole number of milliseconds",
        ),
    ],
)
def test_a_bad_legacy_value_is_a_configuration_error_naming_it(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(translate_legacy({variable: value}).env)


def test_bad_wafleet_credentials_are_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="WAFLEET_FIRESTORE_CREDENTIALS_JSON is not JSON"):
        Settings.from_env({"WAFLEET_FIRESTORE_CREDENTIALS_JSON": "nope"})
