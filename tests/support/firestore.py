"""The official Cloud Firestore emulator for tests and benchmarks.

One JVM per test session (``firestore_emulator``, session-scoped) on a free
loopback port; every test gets an empty database and its own client
(``firestore_client``), since gRPC channels belong to one event loop. Tests that
use them are skipped, with the reason, where java or the emulator jar is absent.
The jar comes from the Debian package ``google-cloud-cli-firestore-emulator``
(or ``WAFLEET_FIRESTORE_EMULATOR_JAR``).

In a conftest: ``from support.firestore import firestore_client, firestore_emulator``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from google.cloud.firestore import AsyncClient

from support.process import free_port
from wafleet.stores.firestore_io import close_client

JAR_ENV = "WAFLEET_FIRESTORE_EMULATOR_JAR"
DEFAULT_JAR = Path(
    "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"
)
PACKAGE = "google-cloud-cli-firestore-emulator"
MAIN_CLASS = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
PROJECT = "demo-wafleet"
START_TIMEOUT = 60.0


def find_jar() -> Path | None:
    given = os.environ.get(JAR_ENV)
    if given:
        return Path(given) if Path(given).is_file() else None
    if DEFAULT_JAR.is_file():
        return DEFAULT_JAR
    if shutil.which("dpkg") is None:
        return None
    listed = subprocess.run(
        ["dpkg", "-L", PACKAGE], capture_output=True, text=True, timeout=10, check=False
    )
    jars = [Path(line) for line in listed.stdout.splitlines() if line.endswith("emulator.jar")]
    return next((jar for jar in jars if jar.is_file()), None)


def unavailable_reason() -> str | None:
    """Why the emulator cannot run here, or None."""
    if shutil.which("java") is None:
        return "the Firestore emulator needs java, which is not installed (apt install default-jre)"
    if find_jar() is None:
        return (
            f"the Firestore emulator jar was not found (Debian package {PACKAGE}, "
            f"or set {JAR_ENV} to its cloud-firestore-emulator.jar)"
        )
    return None


@dataclass
class FirestoreEmulator:
    jar: Path
    port: int = field(default_factory=free_port)
    project: str = PROJECT
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self, timeout: float = START_TIMEOUT) -> None:
        fd, log = tempfile.mkstemp(prefix="firestore-emulator-", suffix=".log")
        self.log_path = Path(log)
        command = ["java", "-cp", str(self.jar), MAIN_CLASS, "start"]
        command += ["--host=127.0.0.1", f"--port={self.port}"]
        self.proc = subprocess.Popen(
            command, stdout=fd, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        os.close(fd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the Firestore emulator exited early:\n{self.log()}")
            if self._ready():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the Firestore emulator was not ready in {timeout} s:\n{self.log()}")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def clear(self) -> None:
        """Delete every document of the database (the emulator's own endpoint)."""
        url = f"{self.url}/emulator/v1/projects/{self.project}/databases/(default)/documents"
        request = urllib.request.Request(url, method="DELETE")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200, response.status

    def log(self, tail: int = 4000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-tail:]

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> FirestoreEmulator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


_shared: FirestoreEmulator | None = None
_users = 0


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[FirestoreEmulator]:
    """The emulator, started once; FIRESTORE_EMULATOR_HOST points at it meanwhile.

    Several conftests import this fixture (each import is its own fixture to
    pytest), so the JVM is shared by reference count: one per test run.
    """
    global _shared, _users  # noqa: PLW0603
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":  # CI must not pass by skipping Firestore tests
            pytest.fail(reason)
        pytest.skip(reason)
    if _shared is None:
        jar = find_jar()
        assert jar is not None
        emulator = FirestoreEmulator(jar)
        emulator.start()
        _shared = emulator
    _users += 1
    previous = os.environ.get("FIRESTORE_EMULATOR_HOST")
    os.environ["FIRESTORE_EMULATOR_HOST"] = _shared.host
    try:
        yield _shared
    finally:
        _users -= 1
        if _users == 0:
            _shared.stop()
            _shared = None
            if previous is None or previous == os.environ.get("FIRESTORE_EMULATOR_HOST"):
                os.environ.pop("FIRESTORE_EMULATOR_HOST", None)


@pytest.fixture
async def firestore_client(firestore_emulator: FirestoreEmulator) -> AsyncIterator[AsyncClient]:
    """A new client on an empty database."""
    firestore_emulator.clear()
    client = AsyncClient(project=firestore_emulator.project)
    yield client
    await close_client(client)
