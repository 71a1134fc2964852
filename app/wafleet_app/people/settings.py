"""Where the commands for people find the server: its URL and the key to present.

Read once, at the start of a command, into one ``CliSettings``: from the flags
(``--url``, ``--key``), else the environment (``WAFLEET_URL``, ``WAFLEET_KEY``), else a
TOML file (``--config FILE``, else ``$XDG_CONFIG_HOME/wafleet/cli.toml`` or
``~/.config/wafleet/cli.toml`` when it exists). Each value is checked here, so a command
never starts half-configured, and no message ever repeats the key.
"""

from __future__ import annotations

import ipaddress
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from wafleet_app.people.errors import UsageError

DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 3600.0
CONFIG_KEYS = ("url", "key", "timeout")
URL_ENV = "WAFLEET_URL"
KEY_ENV = "WAFLEET_KEY"


@dataclass(frozen=True)
class Flags:
    """What the command line said (None: not given)."""

    url: str | None = None
    key: str | None = field(default=None, repr=False)
    config: Path | None = None


@dataclass(frozen=True)
class CliSettings:
    url: str  # without a trailing "/"
    key: str = field(repr=False)
    url_source: str = "--url"  # where each came from, for the messages that name it
    key_source: str = "--key"
    timeout: float = DEFAULT_TIMEOUT
    config_path: Path | None = None  # the file that was read, if any
    warnings: tuple[str, ...] = ()


def default_config_path(env: Mapping[str, str]) -> Path | None:
    """The file read without ``--config`` (None when neither XDG_CONFIG_HOME nor HOME)."""
    base = env.get("XDG_CONFIG_HOME") or (
        str(Path(env["HOME"]) / ".config") if env.get("HOME") else None
    )
    return None if base is None else Path(base) / "wafleet" / "cli.toml"


def _how_to_give(what: str, flag: str, env_name: str, path: Path | None) -> str:
    where = str(path) if path is not None else "~/.config/wafleet/cli.toml"
    return f'pass {flag}, set {env_name}, or put {what} = "..." in {where}'


def _mode_warning(path: Path, mode: int) -> str | None:
    if mode & 0o077 == 0:
        return None
    return (
        f"{path} holds a key and is readable or writable by others "
        f"(mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
    )


def read_config(path: Path) -> tuple[dict[str, Any], str | None]:
    """The file's settings, checked, and a warning when it holds a key others may read."""
    try:
        raw = path.read_bytes()
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"config file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:  # its message names a line, not the content
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise UsageError(
            f"config file {path}: unknown setting '{unknown[0][:40]}'; "
            f"the settings are {', '.join(CONFIG_KEYS)}"
        )
    for name in ("url", "key"):
        if name in data and not isinstance(data[name], str):
            raise UsageError(f"config file {path}: '{name}' must be a string")
    timeout = data.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)):
        raise UsageError(f"config file {path}: 'timeout' must be a number of seconds")
    warning = _mode_warning(path, mode) if "key" in data else None
    return data, warning


def check_url(value: str, source: str) -> str:
    """``value`` as a base URL (http or https, a host, no credentials, query or fragment)."""
    text = value.strip()
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise UsageError(
            f"the URL from {source} is not http(s)://HOST[:PORT], such as http://127.0.0.1:8080"
        )
    if url.userinfo:
        raise UsageError(
            f"the URL from {source} holds credentials; give the key with --key or {KEY_ENV}"
        )
    if url.query or url.fragment:
        raise UsageError(f"the URL from {source} must have no '?query' or '#fragment'")
    return str(url).rstrip("/")


def check_key(value: str, source: str) -> str:
    """The key as it goes in the header: visible ASCII, no spaces (never quoted back)."""
    key = value.strip()
    if not key:
        raise UsageError(f"the key from {source} is empty")
    if not all(33 <= ord(char) <= 126 for char in key):
        raise UsageError(
            f"the key from {source} holds a space or a character that cannot go in an "
            "HTTP header; give the admin token or an API key (wfk_...) as it was shown"
        )
    return key


def _plain_http_warning(url: str) -> str | None:
    parsed = httpx.URL(url)
    if parsed.scheme != "http" or parsed.host == "localhost":
        return None
    try:
        if ipaddress.ip_address(parsed.host).is_loopback:
            return None
    except ValueError:
        pass
    return f"{url} is plain http: the key travels unencrypted; prefer https"


def _timeout(value: float, source: str) -> float:
    if not 0 < value <= MAX_TIMEOUT:
        raise UsageError(f"the timeout from {source} must be above 0 and at most {MAX_TIMEOUT:g}")
    return float(value)


def resolve(flags: Flags, env: Mapping[str, str]) -> CliSettings:
    """The settings of this run: flags, then the environment, then the config file."""
    warnings: list[str] = []
    path = flags.config
    config: dict[str, Any] = {}
    if path is None:
        default = default_config_path(env)
        path = default if default is not None and default.is_file() else None
    if path is not None:
        config, warning = read_config(path)
        if warning:
            warnings.append(warning)
    from_file = f"config file {path}"

    def first(
        flag: str | None, flag_name: str, variable: str, field: str
    ) -> tuple[str | None, str]:
        """The value and where it came from: the flag, else the variable, else the file."""
        if flag is not None:
            return flag, flag_name
        if env.get(variable):
            return env[variable], variable
        if config.get(field):
            return config[field], from_file
        return None, ""

    url, url_source = first(flags.url, "--url", URL_ENV, "url")
    if url is None:
        raise UsageError(
            "no server URL: " + _how_to_give("url", "--url http://HOST:PORT", URL_ENV, path)
        )
    key, key_source = first(flags.key, "--key", KEY_ENV, "key")
    if key is None:
        raise UsageError(
            "no key: "
            + _how_to_give("key", "--key", KEY_ENV, path)
            + " (the admin token, kept in data/admin-token by a standalone process, "
            "or an API key wfk_...)"
        )
    base = check_url(url, url_source)
    plain = _plain_http_warning(base)
    if plain:
        warnings.append(plain)
    timeout = DEFAULT_TIMEOUT if "timeout" not in config else _timeout(config["timeout"], from_file)
    return CliSettings(
        url=base,
        key=check_key(key, key_source),
        url_source=url_source,
        key_source=key_source,
        timeout=timeout,
        config_path=path,
        warnings=tuple(warnings),
    )
