"""Timelines that long random runs of the state machines found, replayed step by step."""

from __future__ import annotations

import pytest

from sim import testing
from sim.testing import INSTALLS, InstallsMachine

SPEC = {s.name: s for s in INSTALLS}


@pytest.fixture(autouse=True)
def _no_notes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(testing, "note", lambda _text: None)  # notes need a Hypothesis run


def test_a_restarted_install_with_its_watches_down_does_not_act_on_its_old_claim() -> None:
    """wide-2 claims team-a/alpha and crashes; team-only takes the cluster over; wide-2 is
    installed again and its watches drop at once: it must not act on the claim its previous
    run wrote (it patched the cluster's Service before the fix)."""
    m = InstallsMachine()
    m.start(seed=0, first=SPEC["wide"])
    m.install(spec=SPEC["wide-2"])
    m.crash(spec=SPEC["wide"])
    m.apply(high=1, name="alpha", namespace="team-a")
    m.crash(spec=SPEC["wide-2"])
    m.install(spec=SPEC["team-only"])
    m.lease_faults(count=1, spec=SPEC["wide-2"])
    m.install(spec=SPEC["wide-2"])
    m.watch_cut(duration=30.0, spec=SPEC["wide-2"])
    m.settle()
    assert m.world.violations == []
