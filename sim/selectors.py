"""Label and field selectors, as the API server applies them to lists and watches.

Label selectors: `=`, `==`, `!=`, `k`, `!k`, `in`, `notin`. Field selectors: `=`, `==` and
`!=` on the fields the real API server indexes for each kind (every kind: `metadata.name`
and `metadata.namespace`; pods, events, namespaces and services a few more). A field the
real server does not support is refused with 400, as it refuses it (`kubectl describe`
relies on `involvedObject.*` to show one object's events).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from driver.execute import ApiError

Obj = dict[str, Any]
FIELDS: dict[str, frozenset[str]] = {
    "pods": frozenset({"spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                       "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                       "status.podIP", "status.nominatedNodeName"}),
    "events": frozenset({"involvedObject.kind", "involvedObject.namespace",
                         "involvedObject.name", "involvedObject.uid",
                         "involvedObject.apiVersion", "involvedObject.resourceVersion",
                         "involvedObject.fieldPath", "reason", "reportingComponent", "source",
                         "type"}),
    "namespaces": frozenset({"status.phase"}),
    "services": frozenset({"spec.clusterIP", "spec.type"}),
}
_FIELD = re.compile(r"\s*([A-Za-z.]+)\s*(==|!=|=)\s*(.*?)\s*$")


def parse_fields(resource: str, text: str) -> Callable[[Obj], bool]:
    """A field selector for `resource` as a predicate over objects."""
    known = FIELDS.get(resource, frozenset()) | {"metadata.name", "metadata.namespace"}
    tests: list[Callable[[Obj], bool]] = []
    for part in text.split(","):
        if not part.strip():
            continue
        match = _FIELD.match(part)
        if match is None:
            raise ApiError(400, "BadRequest", f"invalid field selector {text!r}")
        name, op, value = match.groups()
        if name not in known:
            raise ApiError(400, "BadRequest", f'field label not supported: {name}')
        path = name.split(".")
        if op == "!=":
            tests.append(lambda obj, p=path, v=value: _field(obj, p) != v)  # type: ignore[misc]
        else:
            tests.append(lambda obj, p=path, v=value: _field(obj, p) == v)  # type: ignore[misc]
    return lambda obj: all(t(obj) for t in tests)


def _field(obj: Obj, path: list[str]) -> str:
    """A field's value as the server compares it: a string, "" when absent (`source` of an
    event is its `source.component`)."""
    value: Any = obj
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if path == ["source"] and isinstance(value, dict):
        value = value.get("component")
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


_REQ = re.compile(r"\s*([A-Za-z0-9_./-]+)\s*(==|!=|=|\s+in\s+|\s+notin\s+)?\s*(.*)$")


def parse_selector(text: str) -> Callable[[Mapping[str, str]], bool]:
    """A Kubernetes label selector as a predicate over a labels dict."""
    tests: list[Callable[[Mapping[str, str]], bool]] = []
    for part in _split(text):
        part = part.strip()
        if not part:
            continue
        if part.startswith("!"):
            key = part[1:].strip()
            tests.append(lambda labels, k=key: k not in labels)  # type: ignore[misc]
            continue
        match = _REQ.match(part)
        if match is None:
            raise ApiError(400, "BadRequest", f"invalid label selector {text!r}")
        key, op, value = match.group(1), (match.group(2) or "").strip(), match.group(3).strip()
        if not op:
            tests.append(lambda labels, k=key: k in labels)  # type: ignore[misc]
        elif op in ("=", "=="):
            tests.append(lambda labels, k=key, v=value: labels.get(k) == v)  # type: ignore[misc]
        elif op == "!=":
            tests.append(lambda labels, k=key, v=value: labels.get(k) != v)  # type: ignore[misc]
        else:
            values = {v.strip() for v in value.strip("()").split(",")}
            if op == "in":
                tests.append(lambda labels, k=key, vs=values: labels.get(k) in vs)  # type: ignore[misc]
            else:
                tests.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)  # type: ignore[misc]
    return lambda labels: all(t(labels) for t in tests)


def _split(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts
