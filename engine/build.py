"""Which build of the engine is running: pure Python, or compiled with mypyc.

The hot modules (`MODULES`, which `setup.py` compiles) can be built as C extensions from the
same source; the pure-Python build stays the reference and both must decide alike
(tests/compiled/test_compiled.py). Benchmarks and the operator's start-up line say which one
ran, since their figures differ by about a quarter.
"""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES
from types import ModuleType

from engine import (
    actions,
    autoscaler,
    claiming,
    constraints,
    demand,
    drains,
    events,
    lifecycle,
    load,
    packing,
    planner,
    pods,
    records,
    results,
    rolling,
    scheduler,
    state,
    status,
    stuck,
)

# The modules every event and every decision runs through; the rest of `engine` (spec
# parsing, manifests, snapshots, the claim format) runs once per cluster change and stays
# Python.
MODULES: tuple[ModuleType, ...] = (
    events, actions, records, lifecycle, state, pods, load, claiming, results, status,
    planner, autoscaler, scheduler, packing, drains, rolling, stuck, constraints, demand,
)


def compiled_modules() -> list[str]:
    """The hot modules loaded from a C extension."""
    return [m.__name__ for m in MODULES if str(m.__file__).endswith(tuple(EXTENSION_SUFFIXES))]


def compiled() -> bool:
    return len(compiled_modules()) == len(MODULES)


def describe() -> str:
    done = compiled_modules()
    if not done:
        return "pure Python"
    if len(done) == len(MODULES):
        return "compiled (mypyc)"
    return f"partly compiled ({', '.join(done)}): rebuild with scripts/compile-engine"
