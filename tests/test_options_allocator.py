"""The allocator: best reward-to-risk among candidates that fit the budget."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from mtbt.options.allocator import allocate
from mtbt.options.chain import ChainModel, SyntheticChain

CALLS = {"long_call", "call_debit_spread", "call_butterfly", "call_bwb"}
PUTS = {"long_put", "put_debit_spread", "put_butterfly", "put_bwb"}


@pytest.fixture
def chain() -> SyntheticChain:
    return SyntheticChain(ChainModel(), 600.0, 15.0, dt.datetime(2024, 6, 3, 10),
                          dt.datetime(2024, 6, 3, 16))


@pytest.mark.parametrize("side,names,right", [(1, CALLS, "C"), (-1, PUTS, "P")])
def test_each_side_builds_only_its_own_rights(chain, side, names, right):
    alloc = allocate(side, 600.0, chain, 1_000.0)
    assert {c.structure.name for c in alloc.candidates} == names
    assert all(leg.right == right for c in alloc.candidates for leg in c.structure.legs)


def test_picks_the_best_reward_to_risk(chain):
    alloc = allocate(1, 600.0, chain, 1_000.0)
    kept = [c for c in alloc.candidates if c.kept]
    assert len(kept) >= 3
    assert alloc.best is not None
    assert alloc.best.reward_risk == max(c.reward_risk for c in kept)
    # the scores are what the docstring says, from the chain's honest fills
    tp = 600.0 * np.array([1.01, 1.02])
    for c in alloc.candidates:
        s, mult = c.structure, chain.model.multiplier
        assert c.premium == pytest.approx(s.fill(chain))
        assert c.fees == pytest.approx(0.65 * s.contracts)
        cost = c.premium + 2 * c.fees / mult          # fees to open and to close
        assert c.reward == pytest.approx(np.mean(s.payoff(tp)) - cost)
        assert c.risk == pytest.approx(s.max_loss(c.premium) + 2 * c.fees / mult)
        assert c.reward_risk == pytest.approx(c.reward / c.risk)
        assert c.max_loss_per_contract == pytest.approx(c.risk * mult)


def test_respects_the_budget(chain):
    budget = 500.0
    alloc = allocate(1, 600.0, chain, budget)
    for c in alloc.candidates:
        if c.kept:
            assert c.contracts == math.floor(budget / c.max_loss_per_contract)
            assert 1 <= c.contracts and c.contracts * c.max_loss_per_contract <= budget
        else:
            assert c.contracts == 0 and c.max_loss_per_contract > budget
            assert "budget" in c.reason
    assert alloc.best is not None and alloc.best.kept


def test_a_tiny_budget_drops_everything(chain):
    alloc = allocate(-1, 600.0, chain, 5.0)
    assert alloc.best is None
    assert alloc.candidates and all(c.reason and not c.kept for c in alloc.candidates)
    line = alloc.describe()
    assert "no structure fits" in line and "\n" not in line


def test_describe_names_the_choice(chain):
    alloc = allocate(1, 600.0, chain, 1_000.0)
    line = alloc.describe()
    assert "\n" not in line and alloc.best.structure.label in line
    assert f"x{alloc.best.contracts}" in line


def test_targets_and_width_shape_the_strikes(chain):
    alloc = allocate(1, 600.0, chain, 1_000.0, targets=(0.005,), width=2.0)
    strikes = {c.structure.label for c in alloc.candidates}
    assert strikes == {"long_call 600", "call_debit_spread 600/603", "call_butterfly 601/603/605",
                       "call_bwb 601/603/607"}


def test_rejects_bad_arguments(chain):
    for kwargs in ({"side": 0}, {"side": 1, "budget": -1.0}, {"side": 1, "targets": ()}):
        args = {"side": 1, "budget": 100.0} | kwargs
        with pytest.raises(ValueError):
            allocate(args.pop("side"), 600.0, chain, args.pop("budget"), **args)
