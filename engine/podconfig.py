"""What a pod type's `podConfig` may contain: a Pod the API server will accept.

The CRD keeps `podConfig` open (an embedded Pod with its fields preserved), so the API
server stores whatever a tenant writes there, and the operator turns it into every pod of
that type. This module reads it before anything else does: the parts the operator reads or
rewrites (metadata, containers, their environment, ports and resources) must have the
shapes the code expects and the values Kubernetes accepts, or the pod type is refused with
each problem named by its field path. Everything else of the Pod spec is passed through
untouched, and the API server remains the judge of it: a pod it still rejects puts the
cluster in phase Error with the server's message (`engine.rejections`).

Metadata is limited to what a template may say: `labels` (none of the operator's own,
`engine.labels`), `annotations`, `generateName`, and a `namespace` equal to the cluster's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine import checks, labels, quantities
from engine.checks import Checker

_TOP = frozenset({"apiVersion", "kind", "metadata", "spec"})
_METADATA = frozenset({"generateName", "labels", "annotations", "namespace"})
_PROTOCOLS = ("TCP", "UDP", "SCTP")
_RESTART_POLICIES = ("Always", "OnFailure", "Never")
COUNTER_DIGITS = 10
"""Room left in a pod name for the counter the operator appends to the prefix."""


def read(check: Checker, raw: object, path: str, *, cluster: str, namespace: str,
         prefix: str) -> Mapping[str, Any]:
    """Check one podConfig; `prefix` is its pods' name without the counter. Problems go to
    `check`; the config is returned as given (what is wrong in it is never read later,
    because a cluster with problems gets no pods)."""
    config = check.mapping(raw, path)
    if not isinstance(raw, Mapping):
        return config  # named already
    check.unknown(config, _TOP, path)
    if config.get("apiVersion", "v1") != "v1":
        check.add(f"{path}.apiVersion", f"expected 'v1', got {checks.show(config['apiVersion'])}")
    if config.get("kind", "Pod") != "Pod":
        check.add(f"{path}.kind", f"expected 'Pod', got {checks.show(config['kind'])}")
    _metadata(check, config.get("metadata"), f"{path}.metadata", namespace=namespace,
              prefix=prefix)
    _spec(check, config.get("spec"), f"{path}.spec")
    return config


def _metadata(check: Checker, raw: object, path: str, *, namespace: str, prefix: str) -> None:
    meta = check.mapping(raw, path, required=False)
    for key in meta:
        if key == "name":
            check.add(f"{path}.name", "must not be set; pods are named by the operator")
        elif key not in _METADATA:
            check.add(checks.child(path, key), "not supported in a podConfig; expected only "
                                       f"{sorted(_METADATA)} (the operator sets the rest)")
    if "namespace" in meta and meta["namespace"] != namespace:
        check.add(f"{path}.namespace",
                  f"expected the cluster's namespace {namespace!r}, got "
                  f"{checks.show(meta['namespace'])}")
    if "generateName" in meta:
        check.string(meta["generateName"], f"{path}.generateName")
    sample = prefix + "9" * COUNTER_DIGITS
    why = checks.dns_subdomain(sample)
    if why is not None:
        check.add(f"{path}.generateName",
                  f"pod names {prefix!r} + a counter {why.replace('must', 'must each')}")
    found = check.string_map(meta.get("labels"), f"{path}.labels")
    for key in found:
        if labels.reserved(key):
            check.add(checks.entry(f"{path}.labels", key), "is set by the operator (its labels and "
                                                 f"every {labels.RESERVED_PREFIX} key are "
                                                 "reserved)")
    notes = check.string_map(meta.get("annotations"), f"{path}.annotations", values=False)
    size = sum(len(k.encode()) + len(v.encode()) for k, v in notes.items())
    if size > checks.MAX_ANNOTATIONS_BYTES:
        check.add(f"{path}.annotations",
                  f"{size} bytes in all; Kubernetes allows {checks.MAX_ANNOTATIONS_BYTES}")


def _spec(check: Checker, raw: object, path: str) -> None:
    spec = check.mapping(raw, path)
    if not isinstance(raw, Mapping):
        return  # named already
    policy = spec.get("restartPolicy")
    if policy is not None and policy not in _RESTART_POLICIES:
        check.add(f"{path}.restartPolicy",
                  f"expected one of {list(_RESTART_POLICIES)}, got {checks.show(policy)}")
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        check.add(f"{path}.containers", f"expected a non-empty list, got {checks.show(containers)}")
        containers = []
    names: set[str] = set()
    ports: set[str] = set()
    for j, item in enumerate(containers):
        _container(check, item, f"{path}.containers[{j}]", names, ports, first=j == 0)
    for j, item in enumerate(check.items(spec.get("initContainers"), f"{path}.initContainers")):
        _container(check, item, f"{path}.initContainers[{j}]", names, ports, first=False)


def _container(check: Checker, raw: object, path: str, names: set[str], port_names: set[str],
               *, first: bool) -> None:
    c = check.mapping(raw, path)
    name = check.string(c.get("name"), f"{path}.name")
    if name is not None:
        check.rule(name, f"{path}.name", checks.dns_label(name))
        if name in names:
            check.add(f"{path}.name", f"duplicate container name {name!r}")
        names.add(name)
    check.string(c.get("image"), f"{path}.image")
    if not first:  # the first container's command and args are the operator's
        check.strings(c.get("command"), f"{path}.command")
        check.strings(c.get("args"), f"{path}.args")
    for k, item in enumerate(check.items(c.get("env"), f"{path}.env")):
        _env(check, item, f"{path}.env[{k}]")
    for k, item in enumerate(check.items(c.get("envFrom"), f"{path}.envFrom")):
        check.mapping(item, f"{path}.envFrom[{k}]")
    for k, item in enumerate(check.items(c.get("ports"), f"{path}.ports")):
        _port(check, item, f"{path}.ports[{k}]", port_names)
    _resources(check, c.get("resources"), f"{path}.resources")


def _env(check: Checker, raw: object, path: str) -> None:
    entry = check.mapping(raw, path)
    name = check.string(entry.get("name"), f"{path}.name")
    if name is not None:
        check.rule(name, f"{path}.name", checks.env_name(name))
    if "value" in entry and not isinstance(entry["value"], str):
        check.add(f"{path}.value", f"expected a string, got {checks.show(entry['value'])}")
    if "valueFrom" in entry:
        check.mapping(entry["valueFrom"], f"{path}.valueFrom")


def _port(check: Checker, raw: object, path: str, names: set[str]) -> None:
    port = check.mapping(raw, path)
    check.integer(port.get("containerPort"), f"{path}.containerPort", minimum=1, maximum=65535)
    if "hostPort" in port:
        check.integer(port["hostPort"], f"{path}.hostPort", minimum=1, maximum=65535)
    protocol = port.get("protocol")
    if protocol is not None and protocol not in _PROTOCOLS:
        check.add(f"{path}.protocol", f"expected TCP, UDP or SCTP, got {checks.show(protocol)}")
    if "name" in port:
        name = check.string(port["name"], f"{path}.name")
        if name is not None:
            check.rule(name, f"{path}.name", checks.port_name(name))
            if name in names:
                check.add(f"{path}.name", f"duplicate port name {name!r}")
            names.add(name)


def _resources(check: Checker, raw: object, path: str) -> None:
    res = check.mapping(raw, path, required=False)
    amounts: dict[str, dict[str, Any]] = {}
    for part in ("requests", "limits"):
        values = check.mapping(res.get(part), f"{path}.{part}", required=False)
        amounts[part] = {}
        for key, value in values.items():
            where = checks.entry(f"{path}.{part}", key)
            check.rule(str(key), where, checks.label_key(str(key)))
            try:
                amount = quantities.parse(value)
            except quantities.QuantityError as exc:
                check.add(where, str(exc))
                continue
            if amount < 0:
                check.add(where, "must not be negative")
                continue
            amounts[part][key] = amount
    for key, request in amounts["requests"].items():
        limit = amounts["limits"].get(key)
        if limit is not None and request > limit:
            check.add(checks.entry(f"{path}.requests", key),
                      f"{checks.show(res['requests'][key])} is more than its limit "
                      f"{checks.show(res['limits'][key])}")
