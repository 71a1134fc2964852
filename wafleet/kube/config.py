"""Where the Kubernetes API is and how to authenticate: in-cluster or a kubeconfig."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class KubeConnection:
    host: str  # https://10.0.0.1:443 or http://127.0.0.1:PORT
    token: str | None = None
    token_file: Path | None = None  # re-read on each request: projected tokens rotate
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True

    def bearer(self) -> str | None:
        if self.token_file is not None:
            return self.token_file.read_text().strip()
        return self.token


def load_connection() -> KubeConnection:
    """In a pod: the service account. Elsewhere: KUBECONFIG (or ~/.kube/config)."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    if host and (SA_DIR / "token").exists():
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if ":" in host:  # an IPv6 address
            host = f"[{host}]"
        return KubeConnection(
            host=f"https://{host}:{port}",
            token_file=SA_DIR / "token",
            ca_file=str(SA_DIR / "ca.crt"),
        )
    from kubernetes import client, config  # noqa: PLC0415 (only the cluster extra has it)

    configuration = client.Configuration()
    config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    auth = configuration.api_key.get("authorization") or configuration.api_key.get("BearerToken")
    token = auth.removeprefix("Bearer ").strip() if auth else None
    return KubeConnection(
        host=configuration.host,
        token=token,
        ca_file=configuration.ssl_ca_cert,
        cert_file=configuration.cert_file,
        key_file=configuration.key_file,
        verify=bool(configuration.verify_ssl),
    )
