"""What hostile input costs: the slowest quantity to parse, and validating the largest
scenario file `python -m sim` accepts. Both are bounded by construction (engine.quantities,
sim.scenario); this measures the bounds, so that a regression shows here, not as a stall."""

from __future__ import annotations

import contextlib
import functools
import shutil
import tempfile
import time
import timeit
from pathlib import Path

from engine import quantities
from sim import cli
from sim.reading import MAX_FILE_BYTES
from sim.scenario import load

WORST_QUANTITIES = ("1e15000000", "1e40", "9" * 64, "123456789012345678.5Ki", "-1e-40",
                    "500m", "1Gi")


def quantity_microseconds(runs: int) -> list[float]:
    """The slowest of the quantities above, parsed uncached, in µs (one figure per run)."""
    parse = quantities._parse_text.__wrapped__  # the parse itself, not the memo

    def one(text: str) -> None:
        with contextlib.suppress(quantities.QuantityError):
            parse(text)
    out = []
    for _ in range(runs):
        out.append(max(min(timeit.repeat(functools.partial(one, text), number=2_000,
                                         repeat=3)) / 2_000 * 1e6
                       for text in WORST_QUANTITIES))
    return out


def largest_scenario() -> tuple[Path, int]:
    """A valid scenario just under the size limit: many workload steps."""
    folder = Path(tempfile.mkdtemp(prefix="bench-scenario-"))
    shutil.copytree(Path(cli.__file__).parent / "scenarios" / "clusters", folder / "clusters")
    head = ("name: largest\nduration: 600s\ntimeline:\n"
            "  - {at: 0s, applyFile: clusters/test-b-cluster.yaml}\n")
    step = ("  - {at: 200s, workload: {cluster: scale/example-cluster, tasks: "
            "[{resources: {CPU: 1}, count: 15, duration: 120s}]}}\n")
    steps = (MAX_FILE_BYTES - len(head) - 100) // len(step)
    path = folder / "largest.yaml"
    path.write_text(head + step * steps)
    return path, steps + 1


def validate_seconds(runs: int) -> tuple[list[float], int]:
    path, steps = largest_scenario()
    try:
        out = []
        for _ in range(runs):
            started = time.perf_counter()
            load(path)
            out.append(time.perf_counter() - started)
        return out, steps
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)
