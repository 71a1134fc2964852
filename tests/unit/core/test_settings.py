"""Settings from WAFLEET_* variables: defaults, parsing, errors naming the variable."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from wafleet.core.envconfig import ConfigError, EnvReader
from wafleet.core.settings import Settings

TOKEN = "0123456789abcdef-long-enough"


def settings(**env: str) -> Settings:
    return Settings.from_env({f"WAFLEET_{key}": value for key, value in env.items()})


def config_error(**env: str) -> str:
    with pytest.raises(ConfigError) as info:
        settings(**env)
    return str(info.value)


# ----- defaults ------------------------------------------------------------------------------
def test_defaults_from_an_empty_environment() -> None:
    assert Settings.from_env({}) == Settings()
    s = Settings.from_env({})
    assert s.data_dir == Path("data")
    assert (s.host, s.port, s.transport) == ("127.0.0.1", 8080, "neonize")
    assert s.sim_url is None and s.admin_token is None and s.default_region is None
    assert s.id_salt == "wafleet"
    assert (s.start_rate, s.start_burst) == (2.0, 2)
    assert (s.backoff_base, s.backoff_max) == (1.0, 60.0)
    assert s.qr_max_cycles == 6
    assert (s.send_rate, s.send_burst) == (1.0, 5)
    assert s.max_body_bytes == 1 << 20
    assert s.shutdown_timeout == 8.0
    assert s.log_level == "info"
    assert s.sessions_dir == Path("data") / "sessions"


def test_blank_values_mean_default() -> None:
    assert settings(PORT="", HOST="  ", TRANSPORT="", ADMIN_TOKEN=" ") == Settings()


def test_other_variables_are_ignored() -> None:
    assert Settings.from_env({"PORT": "1", "WAFLEET_": "x", "wafleet_port": "1"}) == Settings()


def test_reads_os_environ_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAFLEET_PORT", "9123")
    assert Settings.from_env().port == 9123


# ----- each variable -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "value", "field", "expected"),
    [
        ("DATA_DIR", "/var/lib/wafleet", "data_dir", Path("/var/lib/wafleet")),
        ("HOST", "0.0.0.0", "host", "0.0.0.0"),
        ("PORT", "9000", "port", 9000),
        ("PORT", " 0 ", "port", 0),
        ("PORT", "65535", "port", 65535),
        ("TRANSPORT", "sim", "transport", "sim"),
        ("TRANSPORT", "SIM", "transport", "sim"),
        ("SIM_URL", "http://sim:8090", "sim_url", "http://sim:8090"),
        ("ADMIN_TOKEN", TOKEN, "admin_token", TOKEN),
        ("ADMIN_TOKEN", f"  {TOKEN}  ", "admin_token", TOKEN),
        ("DEFAULT_REGION", "RO", "default_region", "RO"),
        ("DEFAULT_REGION", "de", "default_region", "DE"),
        ("ID_SALT", "my-install", "id_salt", "my-install"),
        ("START_RATE", "0.5", "start_rate", 0.5),
        ("START_BURST", "10", "start_burst", 10),
        ("BACKOFF_BASE", "2", "backoff_base", 2.0),
        ("BACKOFF_MAX", "120", "backoff_max", 120.0),
        ("QR_MAX_CYCLES", "3", "qr_max_cycles", 3),
        ("SEND_RATE", "2.5", "send_rate", 2.5),
        ("SEND_BURST", "1", "send_burst", 1),
        ("MAX_BODY_BYTES", "1024", "max_body_bytes", 1024),
        ("SHUTDOWN_TIMEOUT", "25", "shutdown_timeout", 25.0),
        ("LOG_LEVEL", "DEBUG", "log_level", "debug"),
        ("LOG_LEVEL", "warning", "log_level", "warning"),
        ("LOG_FORMAT", "json", "log_format", "json"),
        ("CONSOLE_SESSION_TTL", "3600", "console_session_ttl", 3600),
    ],
)
def test_each_variable_is_read(key: str, value: str, field: str, expected: object) -> None:
    assert getattr(settings(**{key: value}), field) == expected


def test_data_dir_expands_the_home_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    s = settings(DATA_DIR="~/wafleet")
    assert s.data_dir == Path("/home/someone/wafleet")
    assert s.sessions_dir == Path("/home/someone/wafleet/sessions")


# ----- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("PORT", "http"),
        ("PORT", "80.5"),
        ("START_BURST", "many"),
        ("SEND_BURST", "1e3"),
        ("QR_MAX_CYCLES", "six"),
        ("MAX_BODY_BYTES", "64k"),
    ],
)
def test_bad_whole_number_names_the_variable(key: str, value: str) -> None:
    message = config_error(**{key: value})
    assert f"WAFLEET_{key}" in message
    assert "whole number" in message
    assert repr(value) in message


@pytest.mark.parametrize(
    ("key", "value"),
    [("START_RATE", "fast"), ("BACKOFF_BASE", "1s"), ("SHUTDOWN_TIMEOUT", "8 s")],
)
def test_bad_number_names_the_variable(key: str, value: str) -> None:
    message = config_error(**{key: value})
    assert f"WAFLEET_{key}" in message
    assert "not a number" in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("PORT", "65536"),
        ("PORT", "-1"),
        ("START_BURST", "0"),
        ("START_RATE", "0"),
        ("START_RATE", "1001"),
        ("BACKOFF_BASE", "0.001"),
        ("BACKOFF_MAX", "3601"),
        ("QR_MAX_CYCLES", "0"),
        ("SEND_RATE", "101"),
        ("SEND_BURST", "1001"),
        ("MAX_BODY_BYTES", "1023"),
        ("SHUTDOWN_TIMEOUT", "0.5"),
        ("SHUTDOWN_TIMEOUT", "nan"),
        ("START_RATE", "inf"),
    ],
)
def test_out_of_range_names_the_variable_and_the_range(key: str, value: str) -> None:
    message = config_error(**{key: value})
    assert f"WAFLEET_{key}" in message
    assert "out of range" in message
    assert ".." in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("TRANSPORT", "baileys"),
        ("LOG_LEVEL", "verbose"),
        ("LOG_LEVEL", "trace"),
        ("LOG_FORMAT", "xml"),
    ],
)
def test_bad_choice_names_the_variable_and_the_choices(key: str, value: str) -> None:
    message = config_error(**{key: value})
    assert f"WAFLEET_{key}" in message
    assert "not one of" in message


def test_bad_transport_lists_the_transports() -> None:
    message = config_error(TRANSPORT="baileys")
    assert "neonize" in message and "sim" in message


@pytest.mark.parametrize("region", ["XX", "Romania", "40", "ZZ"])
def test_bad_region_names_the_variable(region: str) -> None:
    message = config_error(DEFAULT_REGION=region)
    assert "WAFLEET_DEFAULT_REGION" in message
    assert "region" in message


def test_short_admin_token_names_the_variable_without_echoing_it() -> None:
    message = config_error(ADMIN_TOKEN="short-secret")
    assert "WAFLEET_ADMIN_TOKEN" in message
    assert "16" in message
    assert "short-secret" not in message


def test_admin_token_of_sixteen_characters_is_enough() -> None:
    assert settings(ADMIN_TOKEN="a" * 16).admin_token == "a" * 16
    config_error(ADMIN_TOKEN="a" * 15)


def test_backoff_max_below_base_is_refused() -> None:
    message = config_error(BACKOFF_BASE="10", BACKOFF_MAX="5")
    assert "WAFLEET_BACKOFF_MAX" in message
    assert "WAFLEET_BACKOFF_BASE" in message
    s = settings(BACKOFF_BASE="10", BACKOFF_MAX="10")
    assert s.backoff_base == s.backoff_max == 10.0


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


# ----- overrides -----------------------------------------------------------------------------
def test_overrides_win_over_the_environment() -> None:
    env = {"WAFLEET_PORT": "9000", "WAFLEET_HOST": "0.0.0.0", "WAFLEET_TRANSPORT": "neonize"}
    s = Settings.from_env(
        env, port=9100, host="127.0.0.2", transport="sim", data_dir=Path("/tmp/wf")
    )
    assert (s.port, s.host, s.transport, s.data_dir) == (9100, "127.0.0.2", "sim", Path("/tmp/wf"))


def test_none_overrides_are_ignored() -> None:
    env = {"WAFLEET_PORT": "9000", "WAFLEET_TRANSPORT": "sim"}
    s = Settings.from_env(env, port=None, host=None, transport=None, data_dir=None)
    assert (s.port, s.transport, s.host, s.data_dir) == (9000, "sim", "127.0.0.1", Path("data"))


def test_override_transport_is_checked() -> None:
    with pytest.raises(ConfigError, match="--transport"):
        Settings.from_env({}, transport="baileys")


def test_overrides_are_checked_against_the_backoff_rule() -> None:
    with pytest.raises(ConfigError, match="WAFLEET_BACKOFF_MAX"):
        Settings.from_env({"WAFLEET_BACKOFF_MAX": "5"}, backoff_base=10.0)


def test_unknown_override_is_an_error() -> None:
    overrides: dict[str, Any] = {"no_such_setting": 1}
    with pytest.raises(TypeError):
        Settings.from_env({}, **overrides)


def test_override_port_is_range_checked() -> None:
    with pytest.raises(ConfigError):
        Settings.from_env({}, port=70000)


# ----- EnvReader -----------------------------------------------------------------------------
def test_env_reader_prefix_and_values() -> None:
    read = EnvReader({"APP_N": " 7 ", "APP_F": "1.5", "APP_E": "", "APP_C": "B"}, prefix="APP_")
    assert read.name("N") == "APP_N"
    assert read.raw("N") == "7"
    assert read.raw("E") is None and read.raw("MISSING") is None
    assert read.integer("N", 1, minimum=0, maximum=10) == 7
    assert read.integer("E", 3, minimum=0, maximum=10) == 3
    assert read.number("F", 0.0, minimum=0, maximum=2) == 1.5
    assert read.choice("C", "a", ("a", "b")) == "b"
    assert read.choice("MISSING", "a", ("a", "b")) == "a"
    with pytest.raises(ConfigError, match=re.escape("APP_N=7 is out of range; use 8..9")):
        read.integer("N", 1, minimum=8, maximum=9)


def test_trusted_proxies_are_addresses_networks_or_a_star() -> None:
    assert settings().forwarded_allow_ips == "127.0.0.1"
    given = settings(FORWARDED_ALLOW_IPS=" 10.0.0.0/8, 127.0.0.1 ,fd00::/8")
    assert given.forwarded_allow_ips == "10.0.0.0/8,127.0.0.1,fd00::/8"
    assert settings(FORWARDED_ALLOW_IPS="*").forwarded_allow_ips == "*"
    message = config_error(FORWARDED_ALLOW_IPS="10.0.0.0/8,ingress")
    assert "WAFLEET_FORWARDED_ALLOW_IPS" in message and "'ingress'" in message
    assert "is empty" in config_error(FORWARDED_ALLOW_IPS=" , ")
