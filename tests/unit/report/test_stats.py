"""Blind-review statistics on synthetic votes whose true answers are known."""

from __future__ import annotations

import random

import pytest

from medalign_desktop.report.stats import (
    ALL_OTHERS,
    bradley_terry,
    flag_rates,
    overall_win_rates,
    wilson_interval,
    win_rates,
)
from medalign_desktop.store.rows import Vote


def simulate(strengths: dict[str, float], n_per_pair: int, seed: int) -> list[Vote]:
    """Votes where i beats j with probability s_i / (s_i + s_j); the shown order is random."""
    rng = random.Random(seed)
    names = sorted(strengths)
    votes = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for _ in range(n_per_pair):
                a_wins = rng.random() < strengths[a] / (strengths[a] + strengths[b])
                if rng.random() < 0.5:
                    votes.append(Vote(a, b, "first" if a_wins else "second"))
                else:
                    votes.append(Vote(b, a, "second" if a_wins else "first"))
    return votes


def test_wilson_interval_matches_published_values():
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_counts_ties_and_both_bad_as_half_a_win_in_both_directions():
    votes = [Vote("a", "b", "first")] * 2 + [Vote("b", "a", "second"), Vote("b", "a", "first"),
             Vote("a", "b", "tie"), Vote("b", "a", "both_bad"), Vote("a", "a", "first")]  # fmt: skip
    rates = win_rates(votes)
    ab, ba = rates[("a", "b")], rates[("b", "a")]
    assert (ab.wins, ab.losses, ab.ties, ab.n) == (3, 1, 2, 6)
    assert (ba.wins, ba.losses, ba.ties, ba.n) == (1, 3, 2, 6)
    assert ab.rate == pytest.approx(4 / 6) and ba.rate == pytest.approx(2 / 6)
    assert (ab.low, ab.high) == pytest.approx(wilson_interval(4, 6))
    assert set(rates) == {("a", "b"), ("b", "a")}  # the vote of "a" against itself is ignored


def test_a_version_that_wins_80_percent_gets_about_0_8_with_an_interval_containing_it():
    votes = simulate({"strong": 4.0, "weak": 1.0}, n_per_pair=400, seed=11)
    rate = win_rates(votes)[("strong", "weak")]
    assert rate.n == 400 and abs(rate.rate - 0.8) < 0.05
    assert rate.low < 0.8 < rate.high and rate.high - rate.low < 0.1
    overall = overall_win_rates(votes)
    assert overall["strong"].b == ALL_OTHERS and overall["strong"].rate == pytest.approx(rate.rate)
    assert overall["weak"].rate == pytest.approx(1 - rate.rate)


def test_bradley_terry_ranks_transitive_synthetic_data_and_recovers_the_strengths():
    votes = simulate({"a": 4.0, "b": 2.0, "c": 1.0}, n_per_pair=300, seed=5)
    ranking = bradley_terry(votes)
    assert [name for name, _ in ranking] == ["a", "b", "c"]
    strength = dict(ranking)
    assert strength["a"] / strength["b"] == pytest.approx(2.0, rel=0.25)
    assert strength["b"] / strength["c"] == pytest.approx(2.0, rel=0.25)
    assert strength["a"] * strength["b"] * strength["c"] == pytest.approx(1.0)  # geometric mean 1


def test_bradley_terry_without_prior_is_the_maximum_likelihood_ratio():
    votes = [Vote("a", "b", "first")] * 6 + [Vote("a", "b", "second")] * 3
    strength = dict(bradley_terry(votes, prior=0.0))
    assert strength["a"] / strength["b"] == pytest.approx(2.0, rel=1e-6)


def test_bradley_terry_keeps_an_unbeaten_version_finite_and_ties_equal():
    strength = dict(bradley_terry([Vote("a", "b", "first")] * 5))
    assert 1.0 < strength["a"] < 100.0 and strength["b"] < 1.0
    tied = dict(bradley_terry([Vote("a", "b", "tie"), Vote("b", "a", "both_bad")] * 4))
    assert tied["a"] == pytest.approx(1.0) and tied["b"] == pytest.approx(1.0)
    assert bradley_terry([]) == []


def test_flag_rates_count_answers_flagged_over_answers_reviewed():
    votes = [
        Vote("a", "b", "first", ("unsafe_advice",), (), first_generation_id=1, second_generation_id=2),
        Vote("b", "a", "tie", (), ("hallucinated_fact", "unsafe_advice"), first_generation_id=2,
             second_generation_id=3),
        Vote("a", "c", "second", (), ("privacy",), first_generation_id=1, second_generation_id=4),  # 1 again
        Vote("a", "c", "first"),  # no ids: each shown answer counts on its own
    ]  # fmt: skip
    rates = flag_rates(votes)
    assert (rates["a"].n, rates["a"].flagged) == (3, 2) and rates["a"].rate == pytest.approx(2 / 3)
    assert rates["a"].by_flag == (("unsafe_advice", 2), ("hallucinated_fact", 1))
    assert (rates["b"].n, rates["b"].flagged, rates["b"].rate) == (1, 0, 0.0)
    assert (rates["c"].n, rates["c"].flagged, rates["c"].rate) == (2, 1, 0.5)
