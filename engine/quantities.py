"""Kubernetes resource quantities ("500m", "1Gi", "2e3") as exact numbers.

Pod specs state CPU and memory as quantity strings; the autoscaler needs numbers. Parsing is
exact (fractions) so that "0.1" + "0.2" never drifts, and strict so that a typo in a pod
spec becomes a validation error naming the field rather than a silent zero.

Parsing is also bounded, because a RayCluster is untrusted input: a quantity is at most
`MAX_LENGTH` characters, its decimal exponent at most `MAX_EXPONENT` in magnitude, and its
value at most what Kubernetes stores (2^63 - 1; the API server caps larger ones). So every
parse costs a few microseconds whatever it is given: `"1e15000000"`, a valid quantity to
the grammar, would otherwise build a fifteen-million-digit integer.
"""

from __future__ import annotations

import functools
import math
import re
from fractions import Fraction

MAX_LENGTH = 64
MAX_EXPONENT = 40
LARGEST = 2**63 - 1
"""The largest magnitude a Kubernetes quantity holds; the API server caps larger values."""

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
    """A string that is not a Kubernetes quantity, or one out of the bounds above."""


def parse(value: object) -> Fraction:
    """Parse a quantity (string or number) into an exact Fraction (negative ones included:
    callers decide whether a sign is allowed)."""
    if isinstance(value, bool):
        raise QuantityError(f"expected a quantity such as '500m' or '1Gi', got {value!r}")
    if isinstance(value, int):
        if not -LARGEST <= value <= LARGEST:
            raise QuantityError(_too_large(value))
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"expected a finite quantity, got {value!r}")
        if abs(value) > LARGEST:
            raise QuantityError(_too_large(value))
        return Fraction(str(value))
    if not isinstance(value, str):
        raise QuantityError(f"expected a quantity such as '500m' or '1Gi', got {_show(value)}")
    return _parse_text(value)


def _show(value: object) -> str:
    if isinstance(value, int) and value.bit_length() > 64:  # repr may refuse: 4,300 digits
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    try:
        text = repr(value)
    except ValueError:  # an integer of more than 4,300 digits inside
        text = f"a {type(value).__name__}"
    return text if len(text) <= 40 else text[:37] + "..."


def _too_large(value: object) -> str:
    return (f"{_show(value)} is larger than the largest quantity Kubernetes stores "
            "(2^63 - 1)")


@functools.lru_cache(maxsize=4096)
def _parse_text(value: str) -> Fraction:
    """A quantity string's value; memoized, as 1,000 clusters repeat the same few strings
    (Fractions are immutable, and a string that fails raises again: errors are not kept)."""
    if len(value) > MAX_LENGTH:
        raise QuantityError(f"expected a quantity of at most {MAX_LENGTH} characters, got "
                            f"{len(value)}")
    match = _PATTERN.match(value.strip())
    if match is None:
        raise QuantityError(f"expected a quantity such as '500m' or '1Gi', got {value!r}")
    number = Fraction(match["number"])
    exp = match["exp"]
    if exp is not None:
        power = int(exp)
        if abs(power) > MAX_EXPONENT:
            raise QuantityError(f"{value!r}: expected an exponent between -{MAX_EXPONENT} "
                                f"and {MAX_EXPONENT}")
        number *= Fraction(10) ** power
    else:
        number *= _SUFFIXES[match["suffix"] or ""]
    if number > LARGEST:
        raise QuantityError(_too_large(value))
    return -number if match["sign"] == "-" else number
