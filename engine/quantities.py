"""Kubernetes resource quantities ("500m", "1Gi", "2e3") as exact numbers.

Pod specs state CPU and memory as quantity strings; the autoscaler needs numbers. Parsing is
exact (fractions) so that "0.1" + "0.2" never drifts, and strict so that a typo in a pod
spec becomes a validation error naming the field rather than a silent zero.
"""

from __future__ import annotations

import functools
import re
from fractions import Fraction

_SUFFIXES: dict[str, Fraction] = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}

_PATTERN = re.compile(
    r"^(?P<sign>[+-]?)(?P<number>\d+(?:\.\d*)?|\.\d+)"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE](?P<exp>[+-]?\d+))?$"
)


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


def parse(value: object) -> Fraction:
    """Parse a quantity (string or number) into an exact non-negative-agnostic Fraction."""
    if isinstance(value, bool):
        raise QuantityError(f"expected a quantity such as '500m' or '1Gi', got {value!r}")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(str(value))
    if not isinstance(value, str):
        raise QuantityError(f"expected a quantity such as '500m' or '1Gi', got {value!r}")
    return _parse_text(value)


@functools.lru_cache(maxsize=4096)
def _parse_text(value: str) -> Fraction:
    """A quantity string's value; memoized, as 1,000 clusters repeat the same few strings
    (Fractions are immutable, and a string that fails raises again: errors are not kept)."""
    match = _PATTERN.match(value.strip())
    if match is None:
        raise QuantityError(f"expected a quantity such as '500m' or '1Gi', got {value!r}")
    number = Fraction(match["number"])
    if match["exp"] is not None:
        number *= Fraction(10) ** int(match["exp"])
    else:
        number *= _SUFFIXES[match["suffix"] or ""]
    return -number if match["sign"] == "-" else number
