"""Where the Kubernetes API is and how to authenticate: in-cluster or a kubeconfig.

Both are the official client's own loaders: ``kubernetes_asyncio``'s in-cluster config
(the service account, with its token re-read as it rotates) and, outside a cluster, the
kubeconfig (``KUBECONFIG`` or ``~/.kube/config``) read by the ``kubernetes`` package's
loader, whose result is copied into the asyncio client's Configuration.
"""

from __future__ import annotations

import os
from pathlib import Path

from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.config import load_incluster_config

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def load_connection() -> Configuration:
    """In a pod: the service account. Elsewhere: KUBECONFIG (or ~/.kube/config)."""
    configuration = Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST") and (SA_DIR / "token").exists():
        load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return configuration
    from kubernetes import client, config  # noqa: PLC0415 (a sync loader; no event loop here)

    sync = client.Configuration()
    config.load_kube_config(client_configuration=sync)  # type: ignore[no-untyped-call]
    configuration.host = sync.host
    configuration.verify_ssl = bool(sync.verify_ssl)
    configuration.ssl_ca_cert = sync.ssl_ca_cert
    configuration.cert_file = sync.cert_file
    configuration.key_file = sync.key_file
    auth = sync.api_key.get("authorization") or sync.api_key.get("BearerToken")
    if auth:
        configuration.api_key["BearerToken"] = auth.removeprefix("Bearer ").strip()
        configuration.api_key_prefix["BearerToken"] = "Bearer"
    return configuration
