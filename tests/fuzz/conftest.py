"""How many hostile inputs the fuzz properties tried: `FUZZ_EXAMPLES` sets the budget
(CI runs a fixed, derandomized one), and with `FUZZ_REPORT=FILE` the counts are written
there at the end (`scripts/fuzz` prints them)."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator

import pytest

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
TRIED: Counter[str] = Counter()


@pytest.fixture(scope="session", autouse=True)
def report() -> Iterator[None]:
    yield
    path = os.environ.get("FUZZ_REPORT")
    if path:
        with open(path, "w") as out:
            json.dump(dict(TRIED), out)
