"""Reading untrusted scenario files: bounded, strict, and precise about what is wrong.

Every reader here refuses a value with a `ScenarioError` naming the file, the field path
and what was expected. Files are bounded in size and nesting before YAML reads them, so a
hostile file cannot exhaust memory or the stack (docs/security.md).
"""

from __future__ import annotations

import copy
import os
import re
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from engine import checks

_DURATION = re.compile(r"^\s*(\d{1,12}(?:\.\d{1,9})?)\s*(ms|s|m|h)?\s*$")


MAX_DURATION = 7 * 24 * 3600.0
"""The longest a scenario, or any time in it, may be (a run simulates it in minutes)."""


MAX_FILE_BYTES = 1024 * 1024
"""The largest scenario or cluster file read."""


MAX_COUNT = 10**9


MAX_NODES = 100_000


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class ScenarioError(ValueError):
    """A scenario that cannot run: `FILE: field: expected ..., got ...`."""

    def __init__(self, source: str, path: str, message: str) -> None:
        self.source = source
        self.path = path
        super().__init__(f"{source}: {path}: {message}")


def duration(value: object, source: str, path: str) -> float:
    if isinstance(value, bool):
        raise ScenarioError(source, path,
                            f"expected a duration such as 90s, 5m or 1h, got {value!r}")
    if isinstance(value, int | float):
        if not 0 <= value <= MAX_DURATION:  # NaN fails this too
            raise ScenarioError(source, path, f"expected a duration between 0 and "
                                              f"{MAX_DURATION:g} s (7 days), got {show(value)}")
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) and len(value) <= 40 else None
    if match is None:
        raise ScenarioError(source, path,
                            f"expected a duration such as 90s, 5m or 1h, got {show(value)}")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_DURATION:
        raise ScenarioError(source, path, f"expected at most 7 days, got {value!r}")
    return seconds


def read_text(path: Path, source: str, where: str, *, limit: int = MAX_FILE_BYTES) -> str:
    """A file's text, read as untrusted: a regular file of at most `limit` bytes, UTF-8."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the open itself
            raise ScenarioError(source, where, f"{path} is not a regular file")
        with open(path, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise ScenarioError(source, where, f"{path} is not a regular file")
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ScenarioError(source, where,
                            f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise ScenarioError(source, where, f"{path} is larger than {limit} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(source, where,
                            f"{path} is not UTF-8 text (byte {exc.start})") from None


def _check_depth(text: str, source: str, where: str) -> None:
    """Refuse deep nesting before anything builds objects from the text: building a
    document nested 100,000 deep overflows the C stack of libyaml's composer (a crash, not
    an exception). The event stream is read without recursion."""
    depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > checks.MAX_DEPTH:
                raise ScenarioError(source, where,
                                    f"is nested deeper than {checks.MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def read_yaml(text: str, source: str, where: str) -> Any:
    """YAML parsed by libyaml when present (linear and fast), refused when it nests too
    deep or expands too far (an alias bomb), naming `where`."""
    try:
        _check_depth(text, source, where)
        data = yaml.load(text, Loader=_LOADER)  # a safe loader (libyaml's when present)
    except yaml.YAMLError as exc:
        raise ScenarioError(source, where, f"is not valid YAML: {exc}") from None
    except RecursionError:
        raise ScenarioError(source, where, "is nested too deeply") from None
    problem = checks.shape_problem(data)
    if problem is not None:
        raise ScenarioError(source, where, problem)
    return data


def quantity(value: object, source: str, path: str) -> float:
    from engine import quantities

    try:
        return float(quantities.parse(value))
    except quantities.QuantityError as exc:
        raise ScenarioError(source, path, str(exc)) from None


class Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> ScenarioError:
        return ScenarioError(self.source, path, message)

    def mapping(self, value: object, path: str, allowed: set[str]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(path, f"expected a mapping, got {show(value)}")
        for key in value:
            if key not in allowed:
                raise self.fail(f"{path}.{key}" if path else str(key),
                                f"unknown field; expected one of {sorted(allowed)}")
        return value

    def string(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(path, f"expected a non-empty string, got {show(value)}")
        return value

    def integer(self, value: object, path: str, minimum: int = 0,
                maximum: int = MAX_COUNT) -> int:
        if (isinstance(value, bool) or not isinstance(value, int) or value < minimum
                or value > maximum):
            raise self.fail(path, f"expected an integer from {minimum} to {maximum}, got "
                                  f"{show(value)}")
        return value

    def cluster(self, value: object, path: str) -> str:
        text = self.string(value, path)
        if text.count("/") != 1 or not all(text.split("/")):
            raise self.fail(path, f"expected <namespace>/<name>, got {show(text)}")
        namespace, name = text.split("/")
        self.namespace(namespace, path)
        self.object_name(name, path)
        return text

    def namespace(self, value: object, path: str) -> str:
        """A namespace name, as the API server allows it (a DNS-1123 label)."""
        return self._named(value, path, "namespace", checks.dns_label)

    def object_name(self, value: object, path: str) -> str:
        """An object's name, as the API server allows it (a DNS-1123 subdomain)."""
        return self._named(value, path, "name", checks.dns_subdomain)

    def _named(self, value: object, path: str, what: str,
               rule: Callable[[str], str | None]) -> str:
        text = self.string(value, path)
        why = rule(text)
        if why is not None:
            raise self.fail(path, f"{what} {show(text)} {why}")
        return text


def show(value: object) -> str:
    return checks.show(value)


def list_of(r: Reader, value: object, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise r.fail(path, f"expected a list, got {show(value)}")
    return value


def resources(r: Reader, value: object, path: str) -> dict[str, float]:
    if not isinstance(value, Mapping) or not value:
        raise r.fail(path, f"expected a mapping of resource names to amounts, got {show(value)}")
    out = {}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= MAX_COUNT:
            raise r.fail(f"{path}.{k}", f"expected a number from 0 to {MAX_COUNT}, got "
                                        f"{show(v)}")
        out[str(k)] = float(v)
    return out


def raycluster(r: Reader, value: object, path: str) -> dict[str, Any]:
    obj = r.mapping(value, path, {"apiVersion", "kind", "metadata", "spec", "status"})
    if obj.get("apiVersion") != "cluster.ray.io/v1" or obj.get("kind") != "RayCluster":
        raise r.fail(path, "expected apiVersion cluster.ray.io/v1 and kind RayCluster, got "
                           f"{obj.get('apiVersion')!r} {obj.get('kind')!r}")
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        raise r.fail(f"{path}.metadata", f"expected a mapping, got {show(meta)}")
    r.object_name(meta.get("name"), f"{path}.metadata.name")
    if "namespace" in meta:
        r.namespace(meta["namespace"], f"{path}.metadata.namespace")
    if not isinstance(obj.get("spec"), Mapping):
        raise r.fail(f"{path}.spec", f"expected a mapping, got {show(obj.get('spec'))}")
    out = copy.deepcopy(dict(obj))
    out["metadata"] = dict(out["metadata"])
    out["metadata"].setdefault("namespace", "default")
    return out
