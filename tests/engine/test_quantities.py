from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import quantities


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", Fraction(1, 2)), ("1Gi", 2**30), ("1G", 10**9), ("2", 2), ("1.5", Fraction(3, 2)),
     ("2e3", 2000), ("100Ki", 102400), (".5", Fraction(1, 2))],
)
def test_parses_kubernetes_quantities(text: str, value: Fraction) -> None:
    assert quantities.parse(text) == value


@pytest.mark.parametrize("text", ["", "1.2.3", "5 Gi", "Gi", "1gi", "lots"])
def test_rejects_what_is_not_a_quantity(text: str) -> None:
    with pytest.raises(quantities.QuantityError, match="expected a quantity"):
        quantities.parse(text)


@given(st.integers(0, 10**12), st.sampled_from(["", "k", "M", "Ki", "Mi", "Gi", "m"]))
def test_integer_with_suffix_round_trips(n: int, suffix: str) -> None:
    factor = {"": 1, "k": 10**3, "M": 10**6, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30,
              "m": Fraction(1, 1000)}[suffix]
    if n * factor > quantities.LARGEST:
        with pytest.raises(quantities.QuantityError, match="larger than the largest"):
            quantities.parse(f"{n}{suffix}")
    else:
        assert quantities.parse(f"{n}{suffix}") == n * factor


@pytest.mark.parametrize("text", ["1e15000000", "1e5000", "1e-41", "1" * 65])
def test_an_absurd_exponent_or_length_is_refused_at_once(text: str) -> None:
    # "1e15000000" took about 10 s (a fifteen-million-digit integer) and stalled the loop.
    with pytest.raises(quantities.QuantityError, match=r"exponent|at most 64 characters"):
        quantities.parse(text)


@pytest.mark.parametrize("value", ["1e19", 10**5000, 2**63, 1e300, float("inf"), float("nan")],
                         ids=["1e19", "10**5000", "2**63", "1e300", "inf", "nan"])
def test_what_kubernetes_cannot_store_is_refused(value: object) -> None:
    # A memory of "1e5000" once reached a 5,000-digit integer that crashed the manifest.
    with pytest.raises(quantities.QuantityError):
        quantities.parse(value)
