"""The head's ports: where its GCS listens (from its start commands) and the ports of the
head Service (the defaults merged with the user's), each checked as the API server would.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from attrs import frozen

from engine import checks
from engine.checks import Checker

DEFAULT_HEAD_PORT = 6379
DEFAULT_SERVICE_PORTS: tuple[tuple[str, int], ...] = (
    ("client", 10001),
    ("dashboard", 8265),
    ("ray-serve", 8000),
)
_HEAD_PORT = re.compile(r"--port[= ]+(\d+)")


@frozen(kw_only=True)
class ServicePort:
    """One port of the head Service; `protocol` is None when the user did not give one."""

    name: str
    port: int
    target_port: int | str
    protocol: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "port": self.port, "targetPort": self.target_port}
        if self.protocol is not None:
            out["protocol"] = self.protocol
        return out


def infer_head_port(commands: Sequence[str]) -> int:
    """The GCS port from `--port X` or `--port=X` in the head start commands, else 6379."""
    for cmd in commands:
        match = _HEAD_PORT.search(cmd)
        if match:
            digits = match.group(1)
            return int(digits) if len(digits) <= 9 else 0  # 0: out of range either way
    return DEFAULT_HEAD_PORT


def default_head_commands(port: int) -> tuple[str, ...]:
    return (
        "ray stop",
        f"ulimit -n 65536; ray start --head --port={port} --no-monitor --dashboard-host 0.0.0.0",
    )


def default_worker_commands(port: int) -> tuple[str, ...]:
    return ("ray stop", f"ulimit -n 65536; ray start --address=$RAY_HEAD_IP:{port}")


_PORT_FIELDS = frozenset({"name", "port", "targetPort", "protocol"})


def service_ports(check: Checker, raw: object, head_port: int) -> tuple[ServicePort, ...]:
    """Defaults merged by name with the user's ports (same name replaces, new names append);
    each as the API server checks a Service port, and no two on one port and protocol."""
    merged: dict[str, ServicePort] = {
        n: ServicePort(name=n, port=p, target_port=p, protocol="TCP")
        for n, p in DEFAULT_SERVICE_PORTS
    }
    for i, item in enumerate(check.items(raw, "spec.headServicePorts")):
        path = f"spec.headServicePorts[{i}]"
        entry = check.mapping(item, path)
        check.unknown(entry, _PORT_FIELDS, path)
        port_name = check.string(entry.get("name"), f"{path}.name")
        if port_name is not None:
            check.rule(port_name, f"{path}.name", checks.dns_label(port_name))
        port = check.integer(entry.get("port"), f"{path}.port", minimum=1, maximum=65535)
        target = _target_port(check, entry.get("targetPort"), f"{path}.targetPort")
        protocol = entry.get("protocol")
        if protocol is not None and protocol not in ("TCP", "UDP", "SCTP"):
            check.add(f"{path}.protocol", f"expected TCP, UDP or SCTP, got {checks.show(protocol)}")
        if port_name and port is not None and target is not None:
            merged[port_name] = ServicePort(
                name=port_name, port=port, target_port=target, protocol=protocol
            )
    if "gcs-server" not in merged and all(p.port != head_port for p in merged.values()):
        merged["gcs-server"] = ServicePort(
            name="gcs-server", port=head_port, target_port=head_port, protocol="TCP"
        )
    seen: dict[tuple[int, str], str] = {}
    for p in merged.values():
        other = seen.setdefault((p.port, p.protocol or "TCP"), p.name)
        if other != p.name:
            check.add("spec.headServicePorts",
                      f"ports {other!r} and {p.name!r} both use {p.port}/{p.protocol or 'TCP'}")
    return tuple(merged.values())


def _target_port(check: Checker, value: object, path: str) -> int | str | None:
    if isinstance(value, str):
        why = checks.port_name(value)
        if why is None:
            return value
        check.rule(value, path, why)
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        check.add(path, f"expected a port number or name, got {checks.show(value)}")
        return None
    return check.integer(value, path, minimum=1, maximum=65535)
