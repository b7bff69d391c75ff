"""The rules a Kubernetes API server applies to an object being written, as pure functions:
the CRD's structural schema (prune, or refuse with 422), generated name suffixes, write
preconditions (409), and JSON merge patches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from driver.execute import ApiError, Precondition
from sim import schema

Obj = dict[str, Any]


def admit(name: str, body: Obj) -> Obj:
    """A RayCluster as the CRD's structural schema admits it: pruned, or refused (422)."""
    pruned: Obj = schema.prune(body, schema.raycluster_schema())
    refused = schema.refusal(name, pruned)
    if refused is not None:
        raise ApiError(422, "Invalid", refused)
    return pruned


def generated_suffix(n: int) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    out = ""
    n = n * 7919 + 12345
    for _ in range(5):
        n, r = divmod(n, len(alphabet))
        out += alphabet[r]
    return out


def check_precondition(obj: Obj, precondition: Precondition) -> None:
    """A write's preconditions, as the API server applies them (409 Conflict otherwise)."""
    meta = obj["metadata"]
    if precondition.uid and meta.get("uid") != precondition.uid:
        raise ApiError(409, "Conflict",
                       f"Precondition failed: UID in precondition: {precondition.uid}, "
                       f"UID in object meta: {meta.get('uid')}")
    annotations = meta.get("annotations") or {}
    for key, value in precondition.annotations.items():
        if annotations.get(key) != value:
            raise ApiError(409, "Conflict", f"test failed: metadata.annotations[{key}] is "
                                            f"{annotations.get(key)!r}, not {value!r}")


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, building new dicts (never mutating `target`). Values that
    are not objects are taken as they are: nothing stored is ever mutated."""
    if not isinstance(patch, Mapping):
        return patch
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out
