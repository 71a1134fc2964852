"""Settings of a connector pod in a cluster: its shard (from the pod name), namespace, lease."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from wafleet.core.envconfig import ConfigError, EnvReader
from wafleet.core.settings import Settings

_POD_NAME = re.compile(r"^(?P<statefulset>[a-z0-9]([-a-z0-9]*[a-z0-9])?)-(?P<ordinal>\d+)$")


def namespace_from_env(env: Mapping[str, str] | None = None) -> str:
    """WAFLEET_NAMESPACE: where the accounts live (from the pod's metadata.namespace)."""
    namespace = EnvReader(os.environ if env is None else env).optional("NAMESPACE")
    if namespace is None:
        raise ConfigError("WAFLEET_NAMESPACE is required: the namespace of the accounts")
    return namespace


@dataclass(frozen=True)
class ConnectorSettings:
    base: Settings
    namespace: str
    pod_name: str
    statefulset: str
    ordinal: int
    lease_seconds: int = 15

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, **overrides: object
    ) -> ConnectorSettings:
        source = os.environ if env is None else env
        read = EnvReader(source)
        namespace = namespace_from_env(source)
        pod_name = read.optional("POD_NAME") or source.get("HOSTNAME") or socket.gethostname()
        match = _POD_NAME.match(pod_name)
        if match is None:
            raise ConfigError(
                f"WAFLEET_POD_NAME={pod_name!r} does not end in a StatefulSet ordinal "
                "('<statefulset>-<N>'); set it from the pod's metadata.name"
            )
        return cls(
            base=Settings.from_env(source, **overrides),
            namespace=namespace,
            pod_name=pod_name,
            statefulset=match["statefulset"],
            ordinal=int(match["ordinal"]),
            lease_seconds=read.integer("LEASE_SECONDS", 15, minimum=3, maximum=300),
        )
