"""Fixtures shared by every test directory: the real control plane, started once per run
only when a test asks for it (`tests/realk8s/plane.py`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.realk8s.plane import Plane, running


@pytest.fixture(scope="session")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    yield from running(tmp_path_factory.mktemp("control-plane"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests of the real control plane and of whole operator processes (tests/e2e) are slow
    too: `-m "not slow"` is the fast tier (docs: CONTRIBUTING.md)."""
    for item in items:
        if item.get_closest_marker("realk8s") is not None or "e2e" in item.path.parts:
            item.add_marker(pytest.mark.slow)
