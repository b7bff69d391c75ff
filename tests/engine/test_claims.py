"""The claim rules (engine.claims): precedence, hand-over, takeover, and the annotation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import claims
from engine.claims import Claim, Install, Verdict, verdict
from engine.scopes import EVERYWHERE, only

WIDE = Install(name="wide", rank=EVERYWHERE.rank)
NARROW = Install(name="narrow", rank=only(["ray"]).rank)
OTHER_WIDE = Install(name="other", rank=EVERYWHERE.rank)


def held_by(install: Install, **kw: object) -> Claim:
    return Claim(install=install.name, epoch=3, rank=install.rank, **kw)  # type: ignore[arg-type]


def test_an_unclaimed_cluster_is_claimed_at_epoch_one() -> None:
    assert verdict(WIDE, None, alive={}) is Verdict.CLAIM
    assert claims.claimed_by(WIDE, None).epoch == 1


def test_the_holder_acts() -> None:
    assert verdict(WIDE, held_by(WIDE), alive={"wide": True}) is Verdict.ACT


def test_a_claim_naming_us_that_this_process_did_not_write_is_written_again_first() -> None:
    """Left by the install's previous run (or handed over): its lease may have lapsed since,
    and another install may have taken the cluster over without this one seeing it."""
    assert verdict(WIDE, held_by(WIDE), alive={"wide": True}, confirmed=False) is Verdict.CLAIM
    assert claims.claimed_by(WIDE, held_by(WIDE)).epoch == 4


def test_a_narrower_install_asks_a_live_wider_holder_and_waits() -> None:
    claim = held_by(WIDE)
    assert verdict(NARROW, claim, alive={"wide": True}) is Verdict.ASK
    asked = claims.asked_by(NARROW, claim)
    assert verdict(NARROW, asked, alive={"wide": True, "narrow": True}) is Verdict.WAIT
    assert verdict(WIDE, asked, alive={"wide": True, "narrow": True}) is Verdict.HAND_OFF
    handed = claims.handed_to(asked)
    assert (handed.install, handed.epoch, handed.handoff) == ("narrow", 4, None)
    assert verdict(NARROW, handed, alive={"narrow": True}) is Verdict.ACT


def test_a_wider_install_loses_to_a_live_narrower_holder() -> None:
    assert verdict(WIDE, held_by(NARROW), alive={"narrow": True}) is Verdict.LOSE


def test_between_equal_scopes_the_live_claim_holds() -> None:
    assert verdict(OTHER_WIDE, held_by(WIDE), alive={"wide": True}) is Verdict.LOSE


def test_a_dead_holder_is_taken_over_whatever_its_scope() -> None:
    for me in (WIDE, NARROW, OTHER_WIDE):
        holder = NARROW if me is not NARROW else WIDE
        assert verdict(me, held_by(holder), alive={holder.name: False}) is Verdict.CLAIM
    assert claims.claimed_by(WIDE, held_by(NARROW)).epoch == 4


def test_a_holder_ignores_a_request_from_a_dead_or_wider_install() -> None:
    asked = held_by(NARROW, handoff=("wide", WIDE.rank))
    assert verdict(NARROW, asked, alive={"narrow": True, "wide": True}) is Verdict.ACT
    asked = held_by(WIDE, handoff=("narrow", NARROW.rank))
    assert verdict(WIDE, asked, alive={"wide": True, "narrow": False}) is Verdict.ACT


def test_a_request_by_an_equally_narrow_install_is_not_overridden() -> None:
    twin = Install(name="twin", rank=NARROW.rank)
    asked = held_by(WIDE, handoff=("narrow", NARROW.rank))
    assert verdict(twin, asked, alive={"wide": True, "narrow": True}) is Verdict.LOSE
    assert verdict(twin, asked, alive={"wide": True, "narrow": False}) is Verdict.ASK


ranks = st.sampled_from([1, 2, 3, EVERYWHERE.rank])
names = st.sampled_from(["a", "b", "c"])


@given(holder=names, holder_rank=ranks, me=names, my_rank=ranks, alive=st.booleans(),
       asker=st.none() | st.tuples(names, ranks))
def test_at_most_one_install_acts_and_only_the_holder(
    holder: str, holder_rank: int, me: str, my_rank: int, alive: bool,
    asker: tuple[str, int] | None,
) -> None:
    claim = Claim(install=holder, epoch=1, rank=holder_rank, handoff=asker)
    live = {holder: alive, **({asker[0]: True} if asker else {})}
    if me == holder:
        live[me] = True
    result = verdict(Install(name=me, rank=my_rank), claim, alive=live)
    if result is Verdict.ACT:
        assert me == holder
    if me != holder and alive:
        assert result is not Verdict.CLAIM  # a live holder is never overwritten


@given(claim=st.builds(Claim, install=names, epoch=st.integers(0, 99), rank=ranks,
                       handoff=st.none() | st.tuples(names, ranks),
                       contenders=st.dictionaries(names, ranks, max_size=3)))
def test_the_annotation_round_trips(claim: Claim) -> None:
    obj = {"metadata": {"annotations": {claims.ANNOTATION: claim.encode()}}}
    assert claims.parse(obj) == claim


@pytest.mark.parametrize(("text", "field"), [
    ("not json", "expected JSON"),
    ("[1]", "expected an object"),
    ('{"epoch": 1, "rank": 1}', ".install: expected a name"),
    ('{"install": "a", "epoch": "1", "rank": 1}', "epoch and rank must be integers"),
])
def test_a_garbled_annotation_names_what_is_wrong(text: str, field: str) -> None:
    with pytest.raises(claims.BadClaim, match=field.replace("[", r"\[").replace(".", r"\.")):
        claims.parse({"metadata": {"annotations": {claims.ANNOTATION: text}}})


def test_an_unannotated_cluster_has_no_claim() -> None:
    assert claims.parse({"metadata": {"name": "a"}}) is None
