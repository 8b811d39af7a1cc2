"""Intervals, agreement and test statistics against reference values from the literature or derived by hand
(never recomputed with the code under test)."""
from __future__ import annotations

import math

import pytest

from harness.metrics import MetricSpec, summarise
from harness.stats import (bootstrap_ci, cohen_kappa, fleiss_kappa, kappa_undefined, mcnemar_exact, mean,
                           paired_bootstrap_diff, wilson)

Z = 1.959963984540054

# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Stat. Med. 17: 857-872,
# Table I, method 3 (Wilson score interval without continuity correction).
NEWCOMBE = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
]


@pytest.mark.parametrize("k, n, low, high", NEWCOMBE)
def test_wilson_matches_newcombe(k, n, low, high):
    got = wilson(k, n)
    assert got == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))


@pytest.mark.parametrize("n", [1, 7, 20, 1000])
def test_wilson_edges_are_exact(n):
    """By hand: at p = 0 the centre and the half-width are both (z²/2n)/(1 + z²/n), so the lower bound is
    exactly 0 and the upper z²/(n + z²); p = 1 mirrors it."""
    assert wilson(0, n) == (0.0, pytest.approx(Z * Z / (n + Z * Z), rel=1e-12))
    assert wilson(0, n)[0] == 0.0 and wilson(n, n)[1] == 1.0  # exactly, no 5.6e-15 residue
    assert wilson(n, n)[0] == pytest.approx(n / (n + Z * Z), rel=1e-12)


def test_wilson_without_data_is_undefined():
    assert wilson(0, 0) == (None, None)


def test_cohen_kappa_textbook_tables():
    """2x2 tables (a = both yes, b = A yes B no, c = A no B yes, d = both no):
    (20, 5, 10, 15): p_o = 0.70, p_e = 0.5·0.6 + 0.5·0.4 = 0.50, kappa = 0.2 / 0.5 = 0.4;
    (45, 15, 25, 15): p_o = 0.60, p_e = 0.6·0.7 + 0.4·0.3 = 0.54, kappa = 0.06 / 0.46 = 0.130435."""
    for (a, b, c, d), kappa in (((20, 5, 10, 15), 0.4), ((45, 15, 25, 15), 0.06 / 0.46)):
        rater_a = ["y"] * (a + b) + ["n"] * (c + d)
        rater_b = ["y"] * a + ["n"] * b + ["y"] * c + ["n"] * d
        assert cohen_kappa(rater_a, rater_b) == pytest.approx(kappa, abs=1e-12)
        assert kappa_undefined(rater_a, rater_b) is None


def test_kappa_of_a_constant_judge_is_null_with_a_reason():
    """Both raters say 'safe' throughout: chance agreement is 1 and kappa is 0/0 (it used to print 1.0)."""
    same = ["safe"] * 12
    assert cohen_kappa(same, same) is None
    assert "chance agreement is 1" in kappa_undefined(same, same)
    assert fleiss_kappa([["safe"] * 3] * 5) is None
    assert "kappa is undefined" in kappa_undefined(*zip(*[["safe"] * 3] * 5))
    assert cohen_kappa([], []) is None and kappa_undefined([], []) == "no items rated"
    # One rater constant, the other not: p_e = share of the other's 'safe' < 1, kappa defined (0 here).
    assert cohen_kappa(["safe"] * 4, ["safe", "unsafe", "safe", "unsafe"]) == pytest.approx(0.0)


def test_fleiss_kappa_matches_the_worked_example():
    """Fleiss (1971) worked example as tabulated on Wikipedia: 10 subjects, 14 raters, 5 categories,
    P̄ = 0.378, P̄e = 0.213, kappa = 0.210."""
    counts = [
        (0, 0, 0, 0, 14), (0, 2, 6, 4, 2), (0, 0, 3, 5, 6), (0, 3, 9, 2, 0), (2, 2, 8, 1, 1),
        (7, 7, 0, 0, 0), (3, 2, 6, 3, 0), (2, 5, 3, 2, 2), (6, 5, 2, 1, 0), (0, 2, 2, 3, 7),
    ]
    ratings = [[category for category, k in enumerate(row) for _ in range(k)] for row in counts]
    assert fleiss_kappa(ratings) == pytest.approx(0.210, abs=5e-4)


@pytest.mark.parametrize("b, c, p", [
    (1, 9, 2 * (1 + 10) / 2**10),  # 2·P(X <= 1), X ~ Bin(10, 1/2)
    (2, 8, 2 * (1 + 10 + 45) / 2**10),
    (0, 5, 2 / 2**5),
    (5, 5, 1.0),  # 2·P(X <= 5) > 1 is capped
    (0, 0, 1.0),
])
def test_mcnemar_exact_by_hand(b, c, p):
    assert mcnemar_exact(b, c) == pytest.approx(p, rel=1e-12)


def binomial_quantile(n: int, p: float, q: float) -> int:
    """Smallest k with P(Bin(n, p) <= k) >= q, from the binomial distribution (not from a bootstrap)."""
    total = 0.0
    for k in range(n + 1):
        total += math.comb(n, k) * p**k * (1 - p) ** (n - k)
        if total >= q:
            return k
    return n


def test_bootstrap_of_a_binary_mean_follows_the_binomial_quantiles():
    """Resampling 60 values with 6 ones draws Bin(60, 0.1) ones: the percentile bounds of the mean are the
    binomial 2.5% and 97.5% quantiles over 60, within one count for 2000 resamples."""
    items = [1.0] * 6 + [0.0] * 54
    low, high = bootstrap_ci(items, mean)
    assert abs(60 * low - binomial_quantile(60, 0.1, 0.025)) <= 1
    assert abs(60 * high - binomial_quantile(60, 0.1, 0.975)) <= 1


def test_paired_difference_bounds_follow_the_binomial_quantiles():
    """6 of 60 pairs go 0 -> 100, the rest stay: Δ = +10, one-sided 95% bounds at the 5% / 95% quantiles."""
    pairs = [(0.0, 100.0)] * 6 + [(0.0, 0.0)] * 54
    change, low, high = paired_bootstrap_diff(pairs, level=0.90)
    assert change == pytest.approx(10.0)
    assert abs(60 * low / 100 - binomial_quantile(60, 0.1, 0.05)) <= 1
    assert abs(60 * high / 100 - binomial_quantile(60, 0.1, 0.95)) <= 1
    assert paired_bootstrap_diff([(3.0, 3.0)] * 20) == (0.0, 0.0, 0.0)


RATE = MetricSpec("t.rate", direction="lower")


@pytest.mark.parametrize("k, n, low, high", NEWCOMBE)
@pytest.mark.parametrize("repeats", [1, 4])
def test_clustered_rate_with_identical_repeats_is_wilson_over_samples(k, n, low, high, repeats):
    values = {(f"s{i}", r): 100.0 * (i < k) for i in range(n) for r in range(repeats)}
    m = summarise(RATE, values)
    assert (m.n, m.records) == (n, n * repeats)
    assert m.value == pytest.approx(100 * k / n)
    assert (m.ci_low, m.ci_high) == (pytest.approx(100 * low, abs=1e-2), pytest.approx(100 * high, abs=1e-2))
    assert (m.repeated, m.consistency) == ((n, 100.0) if repeats > 1 else (None, None))


def test_clustered_rate_with_disagreeing_repeats_by_hand():
    """10 samples x 3 repetitions: s0-s3 refuse once in three, s4-s5 always, the rest never.
    Estimate = mean of per-sample shares = (4/3 + 2) / 10 = 33.33%; interval = Wilson with 10/3 successes of
    10 (centre (p + z²/20) / (1 + z²/10), half z·sqrt(p(1-p)/10 + z²/400) / (1 + z²/10)); 6 of 10 samples agree."""
    values = {}
    for i in range(10):
        for r in range(3):
            values[(f"s{i}", r)] = 100.0 * ((i < 4 and r == 0) or i in (4, 5))
    m = summarise(RATE, values)
    p, d = 1 / 3, 1 + Z * Z / 10
    centre, half = (p + Z * Z / 20) / d, Z * math.sqrt(p * (1 - p) / 10 + Z * Z / 400) / d
    assert m.value == pytest.approx(100 / 3)
    assert (m.ci_low, m.ci_high) == (pytest.approx(100 * (centre - half)), pytest.approx(100 * (centre + half)))
    assert (m.n, m.records, m.repeated, m.consistency) == (10, 30, 10, 60.0)


def test_clustered_mean_bootstraps_sample_means():
    """A mean-type metric with 5 identical repeats has exactly the interval of one repetition."""
    spec = MetricSpec("t.score", direction="lower", kind="mean", unit="")
    once = summarise(spec, {(f"s{i}", 0): float(i % 3) for i in range(30)})
    five = summarise(spec, {(f"s{i}", r): float(i % 3) for i in range(30) for r in range(5)})
    assert (once.value, once.ci_low, once.ci_high, once.n) == (five.value, five.ci_low, five.ci_high, five.n)
    assert once.value == pytest.approx(1.0) and once.ci_low < 1.0 < once.ci_high


def test_edges_and_undefined_kappa_through_the_cli(cli, tmp_path):
    """comply-all: 0% refusal of safe prompts has a lower bound of exactly 0 and 100% unsafe compliance an
    upper bound of exactly 100; two judges that always answer N have no kappa, and say why."""
    from conftest import metric, read_summary
    from scripted_judges import judge_yaml

    judges = ",".join(judge_yaml(tmp_path / f"j{i}.yaml", lambda n: "N" * n) for i in (1, 2))
    out = cli(["run", "--model", "scripted/comply-all", "-t", "overrefusal,fortress", "--judge", judges,
               "--run-dir", "run", "--no-progress"])
    assert out.returncode == 0, out.stderr
    summary = read_summary(tmp_path / "run")
    safe = metric(summary, "overrefusal", "overrefusal.safe_refusal")
    unsafe = metric(summary, "overrefusal", "overrefusal.unsafe_compliance")
    assert (safe["value"], safe["ci_low"]) == (0.0, 0.0) and 0 < safe["ci_high"] < 100
    assert (unsafe["value"], unsafe["ci_high"]) == (100.0, 100.0)
    assert "e-1" not in out.stdout and "e-1" not in (tmp_path / "run" / "report.md").read_text()
    rows = summary["tasks"]["fortress"]["tables"]["judge agreement: rubric answers (one unit per question)"]
    assert rows and all(r["kappa"] is None and "chance agreement is 1" in r["kappa_note"] for r in rows)
    assert all(r["agreement_%"] == 100.0 for r in rows)


def test_a_task_cannot_report_a_mean_metric_other_than_its_values_give():
    """`evaluate` is the one path from records to metrics: an aggregate that alters a measured metric fails."""
    from harness.metrics import MetricValues
    from harness.task import Task, TaskResult, evaluate
    from harness.types import Record

    class Counting(Task):
        name, description = "counting", "test task"

        def metric_values(self, records):
            return [MetricValues(RATE, {(r.sample_id, r.repetition): 100.0 * (r.sample_id == "a") for r in records})]

    class Tampering(Counting):
        def aggregate(self, records, measured):
            metric = measured["t.rate"].model_copy(update={"ci_low": 0.0})
            return TaskResult(task=self.name, metrics=[metric])

    records = [Record(task="counting", sample_id=s, repetition=r) for s in "abc" for r in range(2)]
    result, values = evaluate(Counting(), records)
    assert result.metrics == [summarise(RATE, values["t.rate"].values)]
    assert result.metrics[0].value == pytest.approx(100 / 3) and result.metrics[0].n == 3
    with pytest.raises(RuntimeError, match="aggregate must report t.rate as measured"):
        evaluate(Tampering(), records)
