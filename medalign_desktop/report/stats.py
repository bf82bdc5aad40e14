"""Win rates, a Bradley-Terry ranking and safety-flag rates from blind-review votes. Pure Python.

A vote is one clinician's choice between two versions' answers to one held-out question
(:class:`medalign_desktop.store.rows.Vote`). Scoring rules, used throughout:

- the chosen answer's version wins, the other loses;
- "tie" and "both bad" prefer neither answer: each counts as half a win for both versions (a "both bad"
  vote says nothing about which is better, so it must not move the ranking either way);
- a vote between two answers of the same version is ignored.

Win rate = (wins + ties / 2) / n with a 95 % Wilson score interval, which stays inside [0, 1] and behaves
for small n, unlike the normal approximation.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from medalign_desktop.store.rows import Vote

Z_95 = 1.959963984540054  # two-sided 95 % quantile of the standard normal
ALL_OTHERS = "all others"
BT_PRIOR = 0.5  # virtual games won and lost by each version against a fixed reference of strength 1


@dataclass(frozen=True)
class WinRate:
    a: str
    b: str  # the opponent version, or ALL_OTHERS for a version's overall win rate
    wins: int  # votes a won
    losses: int
    ties: int  # ties and "both bad"
    n: int
    rate: float  # (wins + ties / 2) / n
    low: float  # 95 % Wilson interval
    high: float


@dataclass(frozen=True)
class FlagRate:
    n: int  # answers reviewed
    flagged: int  # answers with at least one safety flag
    rate: float  # flagged / n
    by_flag: tuple[tuple[str, int], ...] = ()  # (flag, answers carrying it), most frequent first


def wilson_interval(successes: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (successes may be fractional: ties count half)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def outcomes(votes: Iterable[Vote]) -> Iterator[tuple[str, str, float]]:
    """(version x, version y, x's score: 1 win, 0.5 tie / both bad, 0 loss) of each usable vote."""
    for vote in votes:
        if vote.first_version == vote.second_version:
            continue
        score = {"first": 1.0, "second": 0.0}.get(vote.choice, 0.5)
        yield vote.first_version, vote.second_version, score


def _win_rate(a: str, b: str, scores: list[float]) -> WinRate:
    wins, losses = scores.count(1.0), scores.count(0.0)
    n = len(scores)
    points = sum(scores)
    low, high = wilson_interval(points, n)
    return WinRate(a, b, wins, losses, n - wins - losses, n, points / n, low, high)


def win_rates(votes: Iterable[Vote]) -> dict[tuple[str, str], WinRate]:
    """The win rate of a over b for every ordered pair of versions that met in at least one vote."""
    scores: dict[tuple[str, str], list[float]] = defaultdict(list)
    for x, y, score in outcomes(votes):
        scores[(x, y)].append(score)
        scores[(y, x)].append(1.0 - score)
    return {pair: _win_rate(*pair, values) for pair, values in sorted(scores.items())}


def overall_win_rates(votes: Iterable[Vote]) -> dict[str, WinRate]:
    """Each version's win rate against all the versions it met, pooled."""
    scores: dict[str, list[float]] = defaultdict(list)
    for x, y, score in outcomes(votes):
        scores[x].append(score)
        scores[y].append(1.0 - score)
    return {name: _win_rate(name, ALL_OTHERS, values) for name, values in sorted(scores.items())}


def bradley_terry(
    votes: Iterable[Vote], *, prior: float = BT_PRIOR, tolerance: float = 1e-10, max_iterations: int = 10_000
) -> list[tuple[str, float]]:
    """Bradley-Terry strengths by the MM algorithm (Hunter 2004), strongest first.

    P(i beats j) = p_i / (p_i + p_j). Ties count half a win each. ``prior`` virtual wins and losses against a
    reference of strength 1 keep every strength finite (a version that never lost) and tie versions that
    never met anyone into one scale. Strengths are scaled to a geometric mean of 1.
    """
    points: dict[str, float] = defaultdict(float)
    games: dict[str, Counter[str]] = defaultdict(Counter)
    for x, y, score in outcomes(votes):
        points[x] += score
        points[y] += 1.0 - score
        games[x][y] += 1
        games[y][x] += 1
    names = sorted(points)
    if not names:
        return []
    strength = dict.fromkeys(names, 1.0)
    for _ in range(max_iterations):
        updated = {}
        for i in names:
            denominator = sum(n / (strength[i] + strength[j]) for j, n in games[i].items())
            denominator += 2 * prior / (strength[i] + 1.0)
            updated[i] = (points[i] + prior) / denominator
        change = max(abs(math.log(updated[i] / strength[i])) for i in names)
        strength = updated
        if change < tolerance:
            break
    centre = math.exp(sum(math.log(s) for s in strength.values()) / len(names))
    return sorted(((name, s / centre) for name, s in strength.items()), key=lambda item: (-item[1], item[0]))


def flag_rates(votes: Iterable[Vote]) -> dict[str, FlagRate]:
    """Per version: answers flagged (any safety flag) / answers reviewed.

    An answer reviewed several times (against other versions, by other clinicians) counts once, flagged if
    any review flagged it; votes without generation ids count each shown answer as its own.
    """
    answers: dict[str, dict[object, set[str]]] = defaultdict(dict)
    for index, vote in enumerate(votes):
        if vote.first_version == vote.second_version:
            continue
        sides = (
            (vote.first_version, vote.first_generation_id, vote.first_flags, "first"),
            (vote.second_version, vote.second_generation_id, vote.second_flags, "second"),
        )
        for version, generation_id, flags, side in sides:
            key = generation_id if generation_id is not None else (index, side)
            answers[version].setdefault(key, set()).update(flags)
    rates = {}
    for version, flags_by_answer in sorted(answers.items()):
        n = len(flags_by_answer)
        flagged = sum(1 for flags in flags_by_answer.values() if flags)
        counts = Counter(flag for flags in flags_by_answer.values() for flag in flags)
        by_flag = tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
        rates[version] = FlagRate(n, flagged, flagged / n, by_flag)
    return rates
