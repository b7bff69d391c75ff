"""The Ray versions of the heads this operator is tested against, and where their test
environments live (`scripts/ray-versions build`).

The operator reads and drives every head with one client, the `ray` package it ships with
(the `ray` extra, 2.60). What it speaks to a head is the GCS's autoscaler interface: the
cluster resource state (`GetClusterResourceState`), `DrainNode` with a reason, and the
key-value store `ray status` reads. Those exist unchanged since Ray 2.8; the matrix test
(tests/adapters/test_ray_versions.py) starts a head and a worker of each version below and
checks the load read, the drain (refused while busy, accepted when idle) and `ray status`.
"""

from __future__ import annotations

import os
from pathlib import Path

TESTED = ("2.8.1", "2.30.0", "2.45.0", "2.60.0")
"""Oldest first: the range documented is TESTED[0] to TESTED[-1]."""


def environment(version: str) -> Path:
    """The virtual environment with `ray==version`."""
    root = os.environ.get("RAY_OPERATOR_RAY_CACHE") or str(
        Path.home() / ".cache" / "ray-operator" / "ray")
    return Path(root) / version
