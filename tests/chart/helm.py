"""Rendering chart/ray with real Helm (helm-python-sdk, Helm v4 in-process), as documents."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from helm_python import chart as hc

CHART = Path(__file__).parent.parent.parent / "chart" / "ray"


@functools.cache
def chart() -> hc.Chart:
    return hc.Chart.load(str(CHART))


def render(values: dict[str, Any] | None = None, *, release: str = "example-cluster",
           namespace: str = "ray") -> list[dict[str, Any]]:
    """The documents `helm template <release> chart/ray -n <namespace>` prints, CRDs aside."""
    c = chart()
    out = c.render(values=c.merge_values(values or {}), name=release, namespace=namespace,
                   is_install=True)
    return [doc for path in sorted(out) for doc in yaml.safe_load_all(out[path]) if doc]


def crd() -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load((CHART / "crds" / "cluster_crd.yaml").read_text())
    return found


def crd_schema() -> dict[str, Any]:
    schema: dict[str, Any] = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def kinds(docs: list[dict[str, Any]]) -> list[str]:
    return sorted(doc["kind"] for doc in docs)
