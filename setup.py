"""Build hook for the compiled engine (everything else about the package is in pyproject.toml).

With `RAY_OPERATOR_COMPILE=1` the engine's hot modules are compiled to C extensions with
mypyc (from mypy): the same source, type-checked, with native classes for the state and its
values. Without it the package is pure Python, which stays the reference: both builds must
make the same decisions (tests/compiled/test_compiled.py), and docs/decisions.md ("The engine
can be compiled") says why and what it costs. A compiled build needs mypy and a C compiler
in the build environment, so it is built without isolation:

    RAY_OPERATOR_COMPILE=1 pip wheel --no-build-isolation --no-deps .
    scripts/compile-engine DIR     # a compiled install in DIR, for PYTHONPATH=DIR
"""

from __future__ import annotations

import os

from setuptools import setup


def _extensions() -> list[object]:
    flag = os.environ.get("RAY_OPERATOR_COMPILE", "")
    if flag not in ("", "0", "1"):
        raise SystemExit(f"RAY_OPERATOR_COMPILE: expected 1 (compile) or 0/unset, got {flag!r}")
    if flag != "1":
        return []
    from mypyc.build import mypycify

    from engine.build import MODULES  # the one list of the modules to compile

    return list(mypycify([f"{m.__name__.replace('.', '/')}.py" for m in MODULES],
                         opt_level="3"))


setup(ext_modules=_extensions())
