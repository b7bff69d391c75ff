"""The RayCluster CRD's structural schema, enforced as the API server enforces it.

A real API server prunes the fields a structural schema does not declare (unless it
preserves unknown fields there, as `podConfig` and `status` do) and refuses with 422 an
object that breaks the schema, listing every field: `RayCluster.cluster.ray.io "x" is
invalid: [spec.headPodType: Required value, spec.maxWorkers: Invalid value: -1: ...]`. The
simulated API does the same with the chart's CRD (`sim/crd.yaml`, generated from it), so a
spec the real one refuses is refused in the simulator too. What is checked: types
(integers, numbers, strings, booleans, objects, arrays, int-or-string), `required`,
`enum`, `minimum`/`maximum` (and the exclusive minimum), `minItems` and `minLength`.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import yaml

Schema = dict[str, Any]


@functools.cache
def raycluster_schema() -> Schema:
    text = (resources.files("sim") / "crd.yaml").read_text()
    crd = yaml.safe_load(text)
    schema: Schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def prune(value: Any, schema: Schema) -> Any:
    """`value` without the fields `schema` does not declare (where it does not preserve
    unknown fields)."""
    kind = schema.get("type")
    if isinstance(value, dict) and kind == "object":
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props is None:
            if isinstance(extra, dict):
                return {k: prune(v, extra) for k, v in value.items()}
            return value  # open (preserved) object
        keep = schema.get("x-kubernetes-preserve-unknown-fields", False)
        return {k: prune(v, props[k]) if k in props else v for k, v in value.items()
                if k in props or keep}
    if isinstance(value, list) and kind == "array" and isinstance(schema.get("items"), dict):
        return [prune(v, schema["items"]) for v in value]
    return value


def problems(value: Any, schema: Schema, path: str = "") -> list[str]:
    """Every way `value` breaks `schema`, as the API server words them."""
    out: list[str] = []
    kind = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        if isinstance(value, bool) or not isinstance(value, int | str):
            out.append(_invalid(path, value, "must be of type int-or-string"))
        return out
    if kind is not None and not _typed(value, kind):
        out.append(_invalid(path, value, f"{path} in body must be of type {kind}: "
                                         f"\"{_type_name(value)}\""))
        return out
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(json.dumps(v) for v in schema["enum"])
        out.append(f"{path}: Unsupported value: {json.dumps(value)}: supported values: "
                   f"{allowed}")
    if kind in ("integer", "number"):
        low = schema.get("minimum")
        if low is not None and (value < low or (schema.get("exclusiveMinimum") and value == low)):
            word = "greater than" if schema.get("exclusiveMinimum") else \
                "greater than or equal to"
            out.append(_invalid(path, value, f"{path} in body should be {word} {low}"))
        high = schema.get("maximum")
        if high is not None and value > high:
            out.append(_invalid(path, value,
                                f"{path} in body should be less than or equal to {high}"))
    if kind == "string" and len(value) < schema.get("minLength", 0):
        out.append(_invalid(path, value, f"{path} in body should be at least "
                                         f"{schema['minLength']} chars long"))
    if kind == "array":
        if len(value) < schema.get("minItems", 0):
            out.append(_invalid(path, value, f"{path} in body should have at least "
                                             f"{schema['minItems']} items"))
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                out.extend(problems(item, items, f"{path}[{i}]"))
    if kind == "object":
        for name in schema.get("required", ()):
            if name not in value:
                out.append(f"{_join(path, name)}: Required value")
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                out.extend(problems(item, props[key], _join(path, key)))
            elif isinstance(extra, dict):
                out.extend(problems(item, extra, f"{_join(path, key)}"))
    return out


def refusal(name: str, value: Any) -> str | None:
    """The 422 message for a RayCluster that breaks the schema, or None."""
    found = problems(value, raycluster_schema())
    if not found:
        return None
    return f'RayCluster.cluster.ray.io "{name}" is invalid: [{", ".join(found)}]'


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _invalid(path: str, value: Any, why: str) -> str:
    return f"{path}: Invalid value: {json.dumps(value, default=str)[:60]}: {why}"


def _typed(value: Any, kind: str) -> bool:
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return True


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
            float: "number"}.get(type(value), type(value).__name__)
