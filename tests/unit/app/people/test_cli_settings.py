"""Where the commands for people find the server: flags, then the environment, then the
config file; and what each mistake says (never the key)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wafleet_app.people.errors import UsageError
from wafleet_app.people.settings import Flags, default_config_path, resolve

KEY = "flag-key-0123456789abcdef"
ENV_KEY = "env-key-0123456789abcdef"
FILE_KEY = "file-key-0123456789abcdef"


def config(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "cli.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_flags_win_over_the_environment_and_the_file(tmp_path: Path) -> None:
    path = config(tmp_path, f'url = "http://file:1"\nkey = "{FILE_KEY}"\n')
    env = {"WAFLEET_URL": "http://env:2", "WAFLEET_KEY": ENV_KEY}
    settings = resolve(Flags(url="http://flag:3/", key=KEY, config=path), env)
    assert (settings.url, settings.key) == ("http://flag:3", KEY)
    assert (settings.url_source, settings.key_source) == ("--url", "--key")


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = config(tmp_path, f'url = "http://file:1"\nkey = "{FILE_KEY}"\n')
    env = {"WAFLEET_URL": "http://env:2", "WAFLEET_KEY": ENV_KEY}
    settings = resolve(Flags(config=path), env)
    assert (settings.url, settings.key, settings.key_source) == (
        "http://env:2",
        ENV_KEY,
        "WAFLEET_KEY",
    )


def test_each_value_comes_from_where_it_is_given(tmp_path: Path) -> None:
    path = config(tmp_path, f'url = "http://file:1"\nkey = "{FILE_KEY}"\ntimeout = 5\n')
    settings = resolve(Flags(config=path), {"WAFLEET_KEY": ENV_KEY})
    assert settings.url == "http://file:1" and settings.url_source == f"config file {path}"
    assert settings.key == ENV_KEY and settings.timeout == 5.0
    assert settings.config_path == path


def test_the_default_file_is_read_from_the_xdg_config_home(tmp_path: Path) -> None:
    folder = tmp_path / "xdg" / "wafleet"
    folder.mkdir(parents=True)
    config(folder, f'url = "http://127.0.0.1:8080"\nkey = "{FILE_KEY}"\n')
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")}
    assert resolve(Flags(), env).key == FILE_KEY
    assert default_config_path({"HOME": "/home/ana"}) == Path("/home/ana/.config/wafleet/cli.toml")


def test_a_missing_default_file_is_no_error_but_a_missing_given_one_is(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "WAFLEET_URL": "http://127.0.0.1:1", "WAFLEET_KEY": ENV_KEY}
    assert resolve(Flags(), env).config_path is None
    with pytest.raises(UsageError, match="does not exist"):
        resolve(Flags(config=tmp_path / "nope.toml"), env)


def test_a_missing_url_or_key_says_how_to_give_it(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as missing_url:
        resolve(Flags(key=KEY), {"HOME": str(tmp_path)})
    assert "--url" in str(missing_url.value) and "WAFLEET_URL" in str(missing_url.value)
    assert "cli.toml" in str(missing_url.value)
    with pytest.raises(UsageError) as missing_key:
        resolve(Flags(url="http://127.0.0.1:1"), {"HOME": str(tmp_path)})
    text = str(missing_key.value)
    assert "--key" in text and "WAFLEET_KEY" in text and "admin-token" in text


def test_a_file_others_can_read_gets_a_warning_only_when_it_holds_a_key(tmp_path: Path) -> None:
    shared = config(tmp_path, f'url = "http://127.0.0.1:1"\nkey = "{FILE_KEY}"\n', 0o644)
    warnings = resolve(Flags(config=shared), {}).warnings
    assert len(warnings) == 1 and "chmod 600" in warnings[0] and "0644" in warnings[0]
    assert FILE_KEY not in warnings[0]
    url_only = config(tmp_path, 'url = "http://127.0.0.1:1"\n', 0o644)
    assert resolve(Flags(config=url_only, key=KEY), {}).warnings == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('url = "http://x"\nkye = "typo"\n', "unknown setting 'kye'"),
        ("url = [1, 2]\n", "'url' must be a string"),
        ('timeout = "soon"\n', "'timeout' must be a number"),
        ("timeout = -1\n", "above 0"),
        ("url = \n", "not valid TOML"),
    ],
)
def test_a_bad_config_file_names_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = config(tmp_path, text)
    with pytest.raises(UsageError, match=message):
        resolve(Flags(config=path, url="http://127.0.0.1:1", key=KEY), {})


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("127.0.0.1:8080", "is not http"),
        ("ftp://host", "is not http"),
        ("http://user:pw@host", "holds credentials"),
        ("http://host/?x=1", "no '\\?query'"),
    ],
)
def test_a_bad_url_is_a_usage_error(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        resolve(Flags(url=url, key=KEY), {})


def test_a_bad_key_is_refused_without_quoting_it() -> None:
    secret = "wfk_abc def-secret-part"
    with pytest.raises(UsageError) as caught:
        resolve(Flags(url="http://127.0.0.1:1"), {"WAFLEET_KEY": secret})
    assert "WAFLEET_KEY" in str(caught.value)
    assert "secret-part" not in str(caught.value)
    assert KEY not in repr(resolve(Flags(url="http://127.0.0.1:1", key=KEY), {}))


def test_plain_http_to_another_host_is_warned_about() -> None:
    assert resolve(Flags(url="http://127.0.0.1:8080", key=KEY), {}).warnings == ()
    assert resolve(Flags(url="https://fleet.example", key=KEY), {}).warnings == ()
    warnings = resolve(Flags(url="http://fleet.example", key=KEY), {}).warnings
    assert len(warnings) == 1 and "plain http" in warnings[0]
