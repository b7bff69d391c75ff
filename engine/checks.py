"""Reading untrusted input field by field, and Kubernetes' own rules for what it stores.

A RayCluster is written by one tenant among many, and the operator turns parts of it into
pods and a Service. Whatever the API server would refuse in those objects is refused here
first, naming the RayCluster's field: a pod the API answers with 422 would otherwise be
retried without end, and a value the engine cannot read must never reach code that assumes
it can. The rules restate Kubernetes' validation (apimachinery's `validation` package and
the core API's) for the parts of a pod the operator passes through or writes:
- names: DNS-1123 labels (63) and subdomains (253); IANA service names for named ports;
- label keys (an optional DNS prefix, a name of 63) and values (63, or empty);
- annotation keys as label keys, all annotations together at most 256 KiB;
- environment variable names: printable ASCII without `=`;
- ports 1-65535.

`Checker` collects every problem with its field path and reports them all at once, so a
user fixes one file once instead of meeting the problems one by one.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from attrs import define, field

from engine.errors import Problem

MAX_DEPTH = 64
"""Deepest nesting of a RayCluster object (a Pod spec is under 15 levels deep): anything
deeper is refused before code that walks it recursively (hashing, copying) can overflow."""
MAX_NODES = 1_000_000
"""Most values in one object (an API object is at most about 1.5 MB of JSON)."""
MAX_ANNOTATIONS_BYTES = 256 * 1024
MAX_NUMBER = 2**63 - 1

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[\x20-\x3c\x3e-\x7e]+$")  # printable ASCII but '='


def dns_label(value: str) -> str | None:
    """Why `value` is no DNS-1123 label, or None."""
    return _dns(value, 63, _DNS_LABEL, "'-'")


def dns_subdomain(value: str) -> str | None:
    """Why `value` is no DNS-1123 subdomain (the form of most object names), or None."""
    return _dns(value, 253, _DNS_SUBDOMAIN, "'-' and '.'")


def _dns(value: str, longest: int, pattern: re.Pattern[str], marks: str) -> str | None:
    if len(value) > longest:
        return f"must be at most {longest} characters, got {len(value)}"
    if not pattern.match(value):
        return (f"must consist of lower-case letters, digits and {marks}, and start and end "
                "with a letter or digit")
    return None


def label_key(value: str) -> str | None:
    """Why `value` is no label or annotation key (`[prefix/]name`), or None."""
    prefix, slash, name = value.rpartition("/")
    if slash and (not prefix or dns_subdomain(prefix) is not None):
        return "its prefix must be a DNS subdomain (lower-case, at most 253 characters)"
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return ("must be a name of at most 63 letters, digits, '-', '_' or '.', starting and "
                "ending with a letter or digit, with an optional DNS prefix and '/'")
    return None


def label_value(value: str) -> str | None:
    """Why `value` is no label value, or None (the empty string is one)."""
    if len(value) > 63:
        return f"must be at most 63 characters, got {len(value)}"
    if value and not _QUALIFIED_NAME.match(value):
        return "must consist of letters, digits, '-', '_' or '.', and start and end with a " \
               "letter or digit"
    return None


def port_name(value: str) -> str | None:
    """Why `value` is no IANA service name (a container port's or a named target), or None."""
    if (len(value) > 15 or not _IANA_SVC_NAME.match(value) or "--" in value
            or not any(c.isalpha() for c in value)):
        return ("must be at most 15 lower-case letters, digits and single '-', with at least "
                "one letter")
    return None


def env_name(value: str) -> str | None:
    if not _ENV_NAME.match(value):
        return "must be printable ASCII characters other than '='"
    return None


def shape_problem(value: object, *, depth: int = MAX_DEPTH, nodes: int = MAX_NODES
                  ) -> str | None:
    """Why `value` cannot be taken in whole, or None: nested deeper than `depth`, more than
    `nodes` values (a YAML document can share one object many times over, an alias bomb,
    which a walk, a copy or a hash would expand exponentially), or a number no API object
    holds (an integer beyond 64 bits: printing it fails; a float that is not finite).
    Walked without recursion, once quickly; a problem found is walked again to name its
    path in the form of the API server's messages."""
    if _fits(value, depth, nodes):
        return None
    return _explain(value, depth, nodes)


_SCALARS = frozenset({str, bool, type(None)})


def _fits(value: object, depth: int, nodes: int) -> bool:
    """The fast walk: plain JSON types by their exact type (a spec is read on every new
    generation, so this stays a few microseconds for a typical object)."""
    stack: list[tuple[object, int]] = [(value, 0)]
    pop, push = stack.pop, stack.append
    seen = 0
    while stack:
        item, level = pop()
        seen += 1
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is dict or kind is list:
            if level >= depth or seen > nodes:
                return False
            children: Any = item.values() if kind is dict else item  # type: ignore[attr-defined]
            for child in children:
                push((child, level + 1))
        elif kind is int:
            if not -MAX_NUMBER - 1 <= item <= MAX_NUMBER:  # type: ignore[operator]
                return False
        elif kind is float:
            if not math.isfinite(item):  # type: ignore[arg-type]
                return False
        else:
            return False  # another type: the careful walk decides
    return seen <= nodes


def _explain(value: object, depth: int, nodes: int) -> str | None:
    stack: list[tuple[object, tuple[object, ...]]] = [(value, ())]
    seen = 0
    while stack:
        item, path = stack.pop()
        seen += 1
        if seen > nodes:
            return f"has more than {nodes} values"
        if isinstance(item, Mapping):
            children: Any = [(v, (*path, k)) for k, v in item.items()]
        elif isinstance(item, list | tuple):
            children = [(v, (*path, i)) for i, v in enumerate(item)]
        elif isinstance(item, int) and not isinstance(item, bool) and not (
                -MAX_NUMBER - 1 <= item <= MAX_NUMBER):
            return f"{_path(path)}: an integer beyond 64 bits"
        elif isinstance(item, float) and not math.isfinite(item):
            return f"{_path(path)}: {item} is not a number JSON can hold"
        else:
            continue
        if len(path) >= depth:
            return f"{_path(path)}: nested deeper than {depth} levels"
        stack.extend(children)
    return None


def _path(path: tuple[object, ...]) -> str:
    if not path:
        return "object"
    first = path[0]
    out = first if isinstance(first, str) and _PLAIN_KEY.match(first) else child("object",
                                                                               first)
    for step in path[1:]:
        out = f"{out}[{step}]" if isinstance(step, int) else child(out, step)
    return out


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")


def child(path: str, key: object) -> str:
    """The path of `key` under `path`: `spec.name`, or `spec["odd key"]` for a key that
    is not a plain name (empty, dotted, long or not a string)."""
    if isinstance(key, str) and _PLAIN_KEY.match(key):
        return f"{path}.{key}"
    return f"{path}[{show(key) if not isinstance(key, str) else json.dumps(key[:60])}]"


def entry(path: str, key: object) -> str:
    """The path of map entry `key` under `path`: `requests[cpu]`, or `requests["a]b"]`
    (quoted as JSON) for a key a reader could not tell from the brackets around it."""
    text = str(key)
    if text and not any(c in text for c in '"[]\\'):
        return f"{path}[{text[:60]}]"
    return f"{path}[{json.dumps(text[:60])}]"


def show(value: object) -> str:
    """A short rendering of a value for an error message."""
    if value is None:
        return "nothing"
    if isinstance(value, str):
        text = repr(value)
    else:
        try:
            text = json.dumps(value, default=str)
        except (ValueError, RecursionError):  # a huge integer, or nesting too deep
            text = f"a {type(value).__name__}"
    return text if len(text) <= 40 else text[:37] + "..."


@define
class Checker:
    """Collects problems while untrusted input is read; the caller raises them together."""

    problems: list[Problem] = field(factory=list)

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path=path, message=message))

    def mapping(self, value: object, path: str, *, required: bool = True) -> Mapping[str, Any]:
        if value is None and not required:
            return {}
        if not isinstance(value, Mapping):
            self.add(path, f"expected an object, got {show(value)}")
            return {}
        return value

    def items(self, value: object, path: str) -> list[Any]:
        """A list, or [] after naming what it was instead (None is an empty list)."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.add(path, f"expected a list, got {show(value)}")
            return []
        return value

    def string(self, value: object, path: str) -> str | None:
        if not isinstance(value, str) or not value:
            self.add(path, f"expected a non-empty string, got {show(value)}")
            return None
        return value

    def integer(self, value: object, path: str, *, minimum: int | None = 0,
                maximum: int = MAX_NUMBER) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, f"expected an integer, got {show(value)}")
            return None
        if minimum is not None and value < minimum:
            self.add(path, f"expected an integer >= {minimum}, got {show(value)}")
            return None
        if value > maximum:
            self.add(path, f"expected an integer <= {maximum}, got {show(value)}")
            return None
        return value

    def number(self, value: object, path: str, *, maximum: float = MAX_NUMBER
               ) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(path, f"expected a number, got {show(value)}")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.add(path, f"expected a finite number, got {value}")
            return None
        if not -MAX_NUMBER <= value <= maximum:
            self.add(path, f"expected a number from {-MAX_NUMBER} to {maximum:g}, got "
                           f"{show(value)}")
            return None
        return float(value)

    def strings(self, value: object, path: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add(path, f"expected a list of strings, got {show(value)}")
            return ()
        return tuple(value)

    def unknown(self, obj: Mapping[str, Any], allowed: frozenset[str], path: str) -> None:
        for key in obj:
            if key not in allowed:
                self.add(child(path, key), f"unknown field; expected one of {sorted(allowed)}")

    def rule(self, value: str, path: str, why: str | None) -> None:
        """Name `value` at `path` when a rule above found it wrong (`why` is not None)."""
        if why is not None:
            self.add(path, f"{show(value)} {why}")

    def string_map(self, value: object, path: str, *, values: bool = True
                   ) -> dict[str, str]:
        """Labels or annotations: an object of string keys (label-key rules) and string
        values (label-value rules when `values`); what is wrong is named key by key."""
        found = self.mapping(value, path, required=False)
        out: dict[str, str] = {}
        for key, item in found.items():
            if not isinstance(key, str):
                self.add(path, f"expected string keys, got {show(key)}")
                continue
            self.rule(key, entry(path, key), label_key(key))
            if not isinstance(item, str):
                self.add(entry(path, key), f"expected a string value, got {show(item)}")
                continue
            if values:
                self.rule(item, entry(path, key), label_value(item))
            out[key] = item
        return out
