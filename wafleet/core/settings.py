"""Settings of the API and connector (standalone runs both), read once at start."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

import phonenumbers

from wafleet.core.envconfig import ConfigError, EnvReader
from wafleet.core.ids import LEGACY_ENV_RE
from wafleet.core.legacy_env import service_account_project

TransportName = Literal["neonize", "sim"]
TRANSPORTS: tuple[str, ...] = ("neonize", "sim")
StoreName = Literal["sqlite", "firestore"]
IdStyle = Literal["wafleet", "legacy"]
ID_STYLES: tuple[str, ...] = ("wafleet", "legacy")
STORES: tuple[str, ...] = ("sqlite", "firestore")
LOG_LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error")
LOG_FORMATS: tuple[str, ...] = ("text", "json")


_GOMEMLIMIT = re.compile(r"^(off|[0-9]+(B|KiB|MiB|GiB|TiB)?)$")


def _forwarded_allow_ips(value: str) -> str:
    """A comma-separated list of addresses or networks, or "*" (uvicorn's form)."""
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise ConfigError("WAFLEET_FORWARDED_ALLOW_IPS is empty; use addresses, networks or *")
    for item in items:
        if item == "*":
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(
                f"WAFLEET_FORWARDED_ALLOW_IPS has {item!r}, which is not an address or a "
                "network; use e.g. 10.0.0.0/8,127.0.0.1 or *"
            ) from None
    return ",".join(items)


def _gomemlimit(value: str | None) -> str | None:
    if value is not None and not _GOMEMLIMIT.match(value):
        raise ConfigError(
            f"WAFLEET_ENGINE_GOMEMLIMIT={value!r} is not a Go memory limit; use bytes with an "
            "optional B, KiB, MiB, GiB or TiB suffix, e.g. 400MiB"
        )
    return value


def _legacy_env(value: str) -> str:
    if not LEGACY_ENV_RE.fullmatch(value):
        raise ConfigError(
            f"WAFLEET_LEGACY_ENV={value!r} is not a legacy id environment; use 1-16 lowercase "
            "letters or digits, as in the legacy ids account_prod_... (prod)"
        )
    return value


@dataclass(frozen=True)
class Settings:
    """Every WAFLEET_* variable of the API and connector. See the README's reference."""

    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 8080
    transport: TransportName = "neonize"
    sim_url: str | None = None  # external sim service; None in standalone embeds it
    # Secrets stay out of repr(), so a logged Settings shows none.
    admin_token: str | None = field(default=None, repr=False)  # None: generated, kept in data
    link_key: str | None = field(default=None, repr=False)  # signs QR page links; None: as above
    link_ttl: int = 900  # seconds a minted QR page link opens its page (default lifetime)
    link_max_ttl: int = 86400  # the longest lifetime a mint request may ask for
    default_region: str | None = None  # ISO 3166 region for local phone numbers
    id_salt: str = "wafleet"
    # "legacy": new accounts get the legacy server's ids (account_{env}_{hash}), so an
    # installation that mixes migrated and new accounts names them all the same way.
    account_ids: IdStyle = "wafleet"
    legacy_env: str = "prod"  # the {env} of legacy ids
    accounts_mirror: bool = True  # keep Firestore accounts/{id} current (store=firestore)
    accounts_mirror_delay: float = 2.0  # seconds: changes within this are written once
    start_rate: float = 2.0  # session starts per second (token bucket)
    start_burst: int = 2
    backoff_base: float = 1.0  # seconds, first reconnect delay ceiling
    backoff_max: float = 60.0  # seconds, the cap of the reconnect delay
    qr_max_cycles: int = 6  # unscanned QR codes before the QR-loop guard stops
    pairing_max_codes: int = 3  # pairing codes (each notifies the phone) before it stops
    logout_timeout: float = 25.0  # seconds a logout waits for WhatsApp to confirm the unlink
    send_rate: float = 1.0  # messages per second per account
    send_burst: int = 5
    max_body_bytes: int = 1 << 20  # a 65,536-character message, JSON-escaped, fits
    shutdown_timeout: float = 8.0  # seconds for a graceful stop (SIGTERM)
    log_level: str = "info"
    log_format: str = "text"  # "json": one JSON object per line (for log collectors)
    store: StoreName = "sqlite"  # where messages, outbox, incidents (and backups) live
    firestore_project: str | None = None
    firestore_database: str = "(default)"
    # A service account key's JSON, inline (the legacy FIREBASE_SERVICE_ACCOUNT_JSON);
    # None: the environment's default credentials.
    firestore_credentials_json: str | None = field(default=None, repr=False)
    sessions_path: Path | None = None  # where session stores live; None: data_dir/sessions
    connect_timeout: float = 60.0  # seconds a start may take to reach WhatsApp before a retry
    backup_key: str | None = None  # base64 of 32 bytes (AES-256-GCM) for session backups
    backup_key_file: Path | None = None  # the same, read from a file (a mounted Secret)
    backup_key_id: str = "k1"  # stored with each backup, to know which key opens it
    engine_sessions_per_worker: int = 10  # neonize sessions per engine worker process
    engine_gomemlimit: str | None = None  # GOMEMLIMIT of each worker, e.g. "400MiB"
    engine_library: str = "neonize"  # "module:function" runs a stand-in Go library (tests)
    kube_watch_timeout: float = 90.0  # a watch silent this long (no event, no bookmark) is dead
    kube_watch_seconds: int = 300  # the server ends each watch after this; a new one follows
    event_retention_days: int = 7  # events older than this are dropped (Firestore: expiresAt)
    event_poll: float = 0.5  # seconds between reads of the log when no local write wakes it
    event_stream_ping: float = 15.0  # seconds between keep-alive comments of the event stream
    webhook_timeout: float = 10.0  # seconds a delivery may take before it counts as failed
    webhook_retry_min: float = 1.0  # seconds: the first retry delay (doubling, with jitter)
    webhook_retry_max: float = 3600.0  # seconds: the longest delay between two attempts
    webhook_retry_for: float = 86400.0  # seconds an event is retried before it is dead-lettered
    webhook_concurrency: int = 16  # accounts delivered at once per webhook
    # Webhook URLs on private, loopback or link-local addresses are refused unless allowed.
    webhook_allow_private: bool = False
    console_session_ttl: int = 43200  # seconds a console sign-in lasts (12 hours)
    # Proxies whose X-Forwarded-Proto/For uvicorn believes (an ingress that ends TLS):
    # addresses or networks, comma-separated, or "*". The console marks its cookie Secure
    # on https, which behind such a proxy only this tells.
    forwarded_allow_ips: str = "127.0.0.1"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read WAFLEET_* variables; ``overrides`` (from command-line flags) win."""
        read = EnvReader(os.environ if env is None else env)
        region = read.optional("DEFAULT_REGION")
        if region is not None:
            region = region.upper()
            if region not in phonenumbers.SUPPORTED_REGIONS:
                raise ConfigError(
                    f"WAFLEET_DEFAULT_REGION={region!r} is not a region code; "
                    "use a two-letter ISO 3166 code such as RO or DE"
                )
        key_file = read.optional("BACKUP_KEY_FILE")
        sessions = read.optional("SESSIONS_DIR")
        credentials = read.optional("FIRESTORE_CREDENTIALS_JSON")
        if credentials is not None:
            service_account_project(credentials, "WAFLEET_FIRESTORE_CREDENTIALS_JSON")
        token = read.optional("ADMIN_TOKEN")
        if token is not None and len(token) < 16:
            raise ConfigError("WAFLEET_ADMIN_TOKEN is shorter than 16 characters; use a long one")
        link_key = read.optional("LINK_KEY")
        if link_key is not None and len(link_key) < 32:
            raise ConfigError(
                "WAFLEET_LINK_KEY is shorter than 32 characters; use a long random one, "
                "e.g. the output of 'openssl rand -hex 32'"
            )
        settings = cls(
            data_dir=read.path("DATA_DIR", "data"),
            host=read.string("HOST", "127.0.0.1"),
            port=read.integer("PORT", 8080, minimum=0, maximum=65535),
            transport=cast(TransportName, read.choice("TRANSPORT", "neonize", TRANSPORTS)),
            sim_url=read.optional("SIM_URL"),
            admin_token=token,
            link_key=link_key,
            link_ttl=read.integer("LINK_TTL", 900, minimum=60, maximum=7 * 86400),
            link_max_ttl=read.integer("LINK_MAX_TTL", 86400, minimum=60, maximum=7 * 86400),
            default_region=region,
            id_salt=read.string("ID_SALT", "wafleet"),
            account_ids=cast(IdStyle, read.choice("ACCOUNT_IDS", "wafleet", ID_STYLES)),
            legacy_env=_legacy_env(read.string("LEGACY_ENV", "prod")),
            accounts_mirror=read.boolean("ACCOUNTS_MIRROR", True),
            accounts_mirror_delay=read.number("ACCOUNTS_MIRROR_DELAY", 2.0, minimum=0, maximum=600),
            start_rate=read.number("START_RATE", 2.0, minimum=0.01, maximum=1000),
            start_burst=read.integer("START_BURST", 2, minimum=1, maximum=1000),
            backoff_base=read.number("BACKOFF_BASE", 1.0, minimum=0.01, maximum=600),
            backoff_max=read.number("BACKOFF_MAX", 60.0, minimum=0.1, maximum=3600),
            qr_max_cycles=read.integer("QR_MAX_CYCLES", 6, minimum=1, maximum=1000),
            pairing_max_codes=read.integer("PAIRING_MAX_CODES", 3, minimum=1, maximum=20),
            logout_timeout=read.number("LOGOUT_TIMEOUT", 25.0, minimum=1, maximum=300),
            send_rate=read.number("SEND_RATE", 1.0, minimum=0.01, maximum=100),
            send_burst=read.integer("SEND_BURST", 5, minimum=1, maximum=1000),
            max_body_bytes=read.integer("MAX_BODY_BYTES", 1 << 20, minimum=1024, maximum=16 << 20),
            shutdown_timeout=read.number("SHUTDOWN_TIMEOUT", 8.0, minimum=1, maximum=300),
            log_level=read.choice("LOG_LEVEL", "info", LOG_LEVELS),
            log_format=read.choice("LOG_FORMAT", "text", LOG_FORMATS),
            store=cast(StoreName, read.choice("STORE", "sqlite", STORES)),
            firestore_project=read.optional("FIRESTORE_PROJECT"),
            firestore_database=read.string("FIRESTORE_DATABASE", "(default)"),
            firestore_credentials_json=credentials,
            sessions_path=None if sessions is None else Path(sessions).expanduser(),
            connect_timeout=read.number("CONNECT_TIMEOUT", 60.0, minimum=1, maximum=3600),
            backup_key=read.optional("BACKUP_KEY"),
            backup_key_file=None if key_file is None else Path(key_file),
            backup_key_id=read.string("BACKUP_KEY_ID", "k1"),
            engine_sessions_per_worker=read.integer(
                "ENGINE_SESSIONS_PER_WORKER", 10, minimum=1, maximum=1000
            ),
            engine_gomemlimit=_gomemlimit(read.optional("ENGINE_GOMEMLIMIT")),
            engine_library=read.string("ENGINE_LIBRARY", "neonize"),
            kube_watch_timeout=read.number("KUBE_WATCH_TIMEOUT", 90.0, minimum=1, maximum=3600),
            kube_watch_seconds=read.integer("KUBE_WATCH_SECONDS", 300, minimum=1, maximum=3600),
            event_retention_days=read.integer("EVENT_RETENTION_DAYS", 7, minimum=1, maximum=3650),
            event_poll=read.number("EVENT_POLL", 0.5, minimum=0.05, maximum=60),
            event_stream_ping=read.number("EVENT_STREAM_PING", 15.0, minimum=0.1, maximum=300),
            webhook_timeout=read.number("WEBHOOK_TIMEOUT", 10.0, minimum=0.1, maximum=120),
            webhook_retry_min=read.number("WEBHOOK_RETRY_MIN", 1.0, minimum=0.01, maximum=3600),
            webhook_retry_max=read.number("WEBHOOK_RETRY_MAX", 3600.0, minimum=0.01, maximum=86400),
            webhook_retry_for=read.number(
                "WEBHOOK_RETRY_FOR", 86400.0, minimum=1, maximum=30 * 86400
            ),
            webhook_concurrency=read.integer("WEBHOOK_CONCURRENCY", 16, minimum=1, maximum=1000),
            webhook_allow_private=read.boolean("WEBHOOK_ALLOW_PRIVATE", False),
            console_session_ttl=read.integer(
                "CONSOLE_SESSION_TTL", 43200, minimum=300, maximum=30 * 86400
            ),
            forwarded_allow_ips=_forwarded_allow_ips(
                read.string("FORWARDED_ALLOW_IPS", "127.0.0.1")
            ),
        )
        if settings.store == "firestore" and settings.firestore_project is None:
            raise ConfigError(
                "WAFLEET_STORE=firestore needs WAFLEET_FIRESTORE_PROJECT (the Google Cloud project)"
            )
        given = {key: value for key, value in overrides.items() if value is not None}
        if "transport" in given and given["transport"] not in TRANSPORTS:
            raise ConfigError(f"--transport {given['transport']!r} is not one of: neonize, sim")
        port = given.get("port")
        if port is not None and not 0 <= port <= 65535:
            raise ConfigError(f"--port {port} is out of range; use 0..65535")
        settings = replace(settings, **given)
        if settings.backoff_max < settings.backoff_base:
            raise ConfigError("WAFLEET_BACKOFF_MAX must be at least WAFLEET_BACKOFF_BASE")
        if settings.webhook_retry_max < settings.webhook_retry_min:
            raise ConfigError(
                "WAFLEET_WEBHOOK_RETRY_MAX must be at least WAFLEET_WEBHOOK_RETRY_MIN"
            )
        if settings.link_max_ttl < settings.link_ttl:
            raise ConfigError(
                f"WAFLEET_LINK_TTL={settings.link_ttl} is above WAFLEET_LINK_MAX_TTL="
                f"{settings.link_max_ttl}; the default lifetime of a link must be allowed"
            )
        return settings

    @property
    def sessions_dir(self) -> Path:
        return self.sessions_path or self.data_dir / "sessions"
