"""Run every bundled simulator scenario on whichever engine build is importable and write
each one's trace (every event and action, `python -m sim run NAME --trace`) into a folder.
`tests/compiled/test_compiled.py` runs it on both builds and compares the traces.

Usage: python tests/compiled/scenarios.py OUT_DIR (by path, as `replay.py`)
"""

from __future__ import annotations

import sys
from pathlib import Path

from sim import cli
from sim.scenario import load
from sim.world import World


def main(out: Path) -> None:
    for name, path in cli.bundled().items():
        with (out / f"{name}.jsonl").open("w") as trace:
            World(scenario=load(path), trace_out=trace).run()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
