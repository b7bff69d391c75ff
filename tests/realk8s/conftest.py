"""Fixtures of the real control plane (see tests/realk8s/plane.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.realk8s.plane import Plane, namespace


@pytest.fixture()
def fresh(plane: Plane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of this test's own."""
    name = "t-" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:10]
    yield namespace(plane, name)
    plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture()
def logs(tmp_path: Path) -> Path:
    return tmp_path
