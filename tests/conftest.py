"""Fixtures shared by every test directory: the real control plane, started once per run
only when a test asks for it (`tests/realk8s/plane.py`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.realk8s.plane import Plane, running


@pytest.fixture(scope="session")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    yield from running(tmp_path_factory.mktemp("control-plane"))
