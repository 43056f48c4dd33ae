"""The calibration's race (issue 21): interleaved rounds, ranked by median, more rounds while the
race is close or noisy, bounded. Every candidate here runs on a fake clock that the test scripts,
so no real time is measured: each call advances the clock by the seconds given for it."""

from __future__ import annotations

import itertools
import statistics

import pytest

from posterforge.backends import OPENVINO, PLAIN, TORCH, calibration


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.calls: list[str] = []  # who ran, in order: the interleaving

    def __call__(self) -> float:
        return self.now


def race(clock: Clock, **rounds: list[float] | float) -> dict:
    """Candidates whose timed calls take these seconds, one per round (a number: every round;
    a list runs out into its last value). Their untimed first call takes 100 s: it must not
    count."""

    def candidate(name: str, seconds: list[float] | float):
        script = [seconds] if isinstance(seconds, float) else seconds
        takes = itertools.chain([100.0], script, itertools.repeat(script[-1]))

        def run() -> None:
            clock.now += next(takes)
            clock.calls.append(name)

        return run

    return {name: candidate(name, seconds) for name, seconds in rounds.items()}


def choose(times: dict[str, list[float]]) -> str:
    return calibration.winner(calibration.medians(times))


def test_a_clear_winner_is_kept_after_the_fewest_rounds():
    clock = Clock()
    times = calibration.fastest(race(clock, torch=1.0, openvino=0.6), clock=clock)
    assert times == {TORCH: [1.0] * 3, OPENVINO: pytest.approx([0.6] * 3)}  # untimed left out
    assert choose(times) == OPENVINO
    # interleaved, the first of each round rotating: a burst of load hits both alike
    assert clock.calls[2:] == [TORCH, OPENVINO, OPENVINO, TORCH, TORCH, OPENVINO]


def test_a_close_race_runs_more_rounds_and_then_keeps_torch():
    clock = Clock()
    times = calibration.fastest(race(clock, torch=1.0, openvino=0.97), clock=clock)
    assert len(times[TORCH]) == calibration.MAX_ROUNDS  # bounded
    assert choose(times) == TORCH  # 3% is within the margin: torch's bytes stay


def test_a_noisy_race_runs_more_rounds_until_it_settles():
    clock = Clock()
    noisy = [1.0, 0.5, 1.6, 0.9, 1.0, 1.0, 1.0]  # a shared machine, then quiet
    times = calibration.fastest(race(clock, torch=noisy, openvino=0.6), clock=clock)
    rounds = len(times[TORCH])
    assert calibration.MIN_ROUNDS < rounds < calibration.MAX_ROUNDS
    assert calibration.settled(times) and not calibration.settled(
        {k: v[: calibration.MIN_ROUNDS] for k, v in times.items()}
    )
    assert choose(times) == OPENVINO


def test_one_outlier_round_does_not_flip_the_choice():
    clock = Clock()
    # OpenVINO's second round hit a burst of load elsewhere: 3.5x its time
    times = calibration.fastest(race(clock, torch=1.0, openvino=[0.6, 2.1, 0.6]), clock=clock)
    assert statistics.mean(times[OPENVINO]) > statistics.mean(times[TORCH])  # a mean would flip
    assert choose(times) == OPENVINO
    assert len(times[OPENVINO]) == calibration.MIN_ROUNDS  # one outlier is not noise


def test_the_old_best_of_two_is_what_a_lucky_round_fooled():
    """Last session's failure: two rounds, the best of each; one lucky torch-plain round beat
    OpenVINO. The median of the rounds keeps OpenVINO."""
    clock = Clock()
    plain = [0.25, 0.46, 0.45, 0.47]  # one round ran while the other side was loaded
    times = calibration.fastest(
        race(clock, **{TORCH: 0.465, PLAIN: plain, OPENVINO: 0.29}), clock=clock
    )
    assert min(times[PLAIN][:2]) < min(times[OPENVINO][:2])  # best of two chose torch-plain
    assert choose(times) == OPENVINO


def test_extra_rounds_stop_at_the_time_budget():
    clock = Clock()
    times = calibration.fastest(race(clock, torch=30.0, openvino=29.5), clock=clock, budget=150)
    # a close race, but three rounds took 178.5 s, past the budget: no fourth
    assert len(times[TORCH]) == calibration.MIN_ROUNDS


@pytest.mark.parametrize(
    ("rounds", "spread"), [([1.0], 0.0), ([1.0, 1.0, 5.0], 0.0), ([1.0, 0.5, 1.5], 0.5)]
)
def test_the_spread_is_the_median_absolute_deviation_over_the_median(rounds, spread):
    assert calibration.spread(rounds) == pytest.approx(spread)


def test_the_entry_says_why_in_one_line(pf_home):
    times = {TORCH: [0.45, 0.46, 0.44], OPENVINO: [0.29, 0.28, 0.3], PLAIN: [0.47, 0.47, 0.47]}
    kept = calibration.remember("k", choose(times), times)
    assert calibration.explain(kept) == (
        f"openvino 0.290 s against torch 0.450 s, torch-plain 0.470 s "
        f"(median of 3 rounds, {kept['date']})"
    )
    assert calibration.speedup(kept) == "1.55x torch"
    earlier = {"path": TORCH, "date": "2026-11-30", "seconds": {TORCH: 0.4, OPENVINO: 0.5}}
    assert calibration.explain(earlier) == (
        "torch 0.400 s against openvino 0.500 s (best of 2 rounds, 2026-11-30)"
    )  # an entry of an earlier version: kept, and said as it was made
    assert calibration.speedup(earlier) == ""
