"""Hostile input for the fuzz properties: RayClusters and scenario files as an attacker
would write them.

RayClusters come two ways: generated from the CRD's own schema (what a real API server
stores; `podConfig` is open, so anything goes there) and made by mutating a valid cluster
whose pod types use every field the operator reads (wrong types, nulls, huge numbers, long
and odd strings, unicode, deep nesting, keys added and removed).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from tests.builders import raycluster

CRD = Path(__file__).parents[2] / "chart" / "ray" / "crds" / "cluster_crd.yaml"


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for i in range(depth):
        value = {"x": value} if i % 2 else [value]
    return value


LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.text(min_size=60, max_size=300),
    st.sampled_from(["1e5000", "1e15000000", "1e-41", "500m", "1Gi", "99999", "-1", "", "0",
                     "x" * 64, "A=B", "Ray-Worker-", "ray start --head; echo", "cluster.ray.io/x",
                     "ray-cluster-name", "\u0000", "\U0001f600" * 10, "a" * 254]),
    st.integers(4400, 5000).map(lambda n: 10**n), st.just(2**63), st.just(-(2**63)),
)
JSON = st.recursive(LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12)
HOSTILE = st.one_of(JSON, st.integers(60, 3_000).map(_nested),
                    st.just({"note": "x" * 300_000}))


def rich_cluster() -> dict[str, Any]:
    """A valid cluster that uses every field the operator reads or rewrites."""
    obj = raycluster("hostile", "ray", uid="uid-hostile")
    obj["spec"]["headServicePorts"] = [{"name": "extra", "port": 9000, "targetPort": 9000}]
    obj["spec"]["headStartRayCommands"] = ["ray stop", "ray start --head --port=6379; echo up"]
    worker = obj["spec"]["podTypes"][1]
    worker["setupCommands"] = ["echo setup"]
    config = worker["podConfig"]
    config["metadata"].update(labels={"team": "a"}, annotations={"note": "n"})
    container = config["spec"]["containers"][0]
    container.update(env=[{"name": "A", "value": "1"}], ports=[{"containerPort": 8080,
                                                                "name": "http"}],
                     command=["x"], args=["y"])
    config["spec"]["containers"].append({"name": "side", "image": "busybox",
                                         "command": ["sleep", "1"]})
    return obj


def paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from paths(v, (*path, i))


BASE = rich_cluster()
PATHS = [p for p in paths(BASE) if p[:1] == ("spec",)
         or (p[:1] == ("metadata",) and p[1:2] in (("labels",), ("annotations",)))]
KEYS = st.one_of(st.text(max_size=12), st.sampled_from(
    ["labels", "annotations", "env", "ports", "resources", "metadata", "generateName",
     "cluster.ray.io/component", "ray-cluster-name", "namespace", "name", "ownerReferences",
     "limits", "requests", "cpu", "memory", "nvidia.com/gpu", "maxWorkers", "minWorkers"]))
MUTATIONS = st.tuples(st.sampled_from(PATHS), st.sampled_from(["replace", "delete", "add",
                                                               "wrap"]), KEYS, HOSTILE)


def mutate(obj: dict[str, Any], mutation: tuple[tuple[Any, ...], str, str, Any]) -> None:
    path, op, key, value = mutation
    parent: Any = obj
    try:
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        if op == "replace":
            parent[last] = value
        elif op == "delete":
            del parent[last]
        elif op == "add" and isinstance(parent[last], dict):
            parent[last][key] = value
        elif op == "wrap":
            parent[last] = [parent[last]]
    except (KeyError, IndexError, TypeError):
        return  # an earlier mutation removed or reshaped the way there


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    obj = copy.deepcopy(BASE)
    for mutation in draw(st.lists(MUTATIONS, min_size=1, max_size=4)):
        mutate(obj, mutation)
    return obj


def from_schema(schema: Any) -> st.SearchStrategy[Any]:
    """Values the OpenAPI schema of a CRD allows (what the API server would store): types,
    properties and `required`, items, enums and bounds; an object that preserves unknown
    fields (podConfig) is any JSON. (hypothesis-jsonschema does this for JSON Schema, but its
    last release does not run on current Hypothesis.)"""
    if schema.get("x-kubernetes-preserve-unknown-fields") and "properties" not in schema:
        return st.dictionaries(st.text(max_size=12), JSON, max_size=5)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties")
        if props is None:
            extra = schema.get("additionalProperties")
            values = from_schema(extra) if isinstance(extra, dict) else JSON
            return st.dictionaries(st.text(max_size=12), values, max_size=4)
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {k: from_schema(v) for k, v in props.items() if k in required},
            optional={k: from_schema(v) for k, v in props.items() if k not in required})
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {})), min_size=schema.get("minItems", 0),
                        max_size=4)
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        low = schema.get("minimum")
        return st.floats(low, schema.get("maximum"), allow_nan=False,
                         exclude_min=bool(schema.get("exclusiveMinimum")) and low is not None)
    if kind == "string":
        return st.one_of(st.text(min_size=schema.get("minLength", 0), max_size=20),
                         LEAVES.filter(lambda v: isinstance(v, str)))
    if kind == "boolean":
        return st.booleans()
    return JSON  # int-or-string, and anything else the schema leaves open


def from_crd() -> st.SearchStrategy[dict[str, Any]]:
    crd = yaml.safe_load(CRD.read_text())
    schema = dict(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k != "status"}
    strategy: st.SearchStrategy[dict[str, Any]] = from_schema(schema)
    return strategy


def rayclusters() -> st.SearchStrategy[dict[str, Any]]:
    """Any RayCluster an attacker may write, named `ray/hostile` (as the API server would
    give it: the name and namespace are the key's)."""
    def named(obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.get("metadata")
        obj["metadata"] = {**(meta if isinstance(meta, dict) else {}), "name": "hostile",
                           "namespace": "ray", "uid": "uid-hostile", "generation": 1}
        return obj
    return st.one_of(mutated(), from_crd()).map(named)
