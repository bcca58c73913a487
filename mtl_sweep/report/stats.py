"""Statistics over seeds: means, Student-t intervals, paired tests, Holm's correction, power.

Pure numpy/scipy on per-seed values (no MLflow, no report types), so each formula can be
tested alone. Differences are *signed gains*: g_i = s (M_i - S_i) for seed i, with M the
multi-task value, S the single-task value of the same seed and s = +1 where higher is
better, -1 where lower is better, so a positive gain always means multi-task is better.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

import numpy as np

from mtl_sweep.report.model.base import DEFAULT_ALPHA, Interval, Paired, Stat

WILCOXON_MIN_N = 6  # below this the signed-rank test cannot reach p < 0.05 (2/2^5 = 0.0625)
POWER = 0.8  # the power the minimum detectable difference is quoted at
# No test where the gains' std is below this fraction of their scale: the gains are then
# one value up to float rounding, and a t statistic would be ±inf or noise over noise.
_ZERO_SPREAD = 1e-12
NO_SPREAD = "no spread"  # Paired.no_test where every pair had the same gain


def mean_ci(values: Iterable[float], confidence: float = 1 - DEFAULT_ALPHA) -> Interval:
    """Mean ± t(1 - (1 - confidence)/2, n - 1) · std / √n over per-seed values.

    With zero spread the interval is the mean itself; with n < 2 it is NaN.
    """
    s = Stat.of(values)
    if s.n < 2:
        return Interval(s.mean, s.std, s.n)
    half = t_quantile(confidence, s.n - 1) * s.std / math.sqrt(s.n)
    return Interval(s.mean, s.std, s.n, s.mean - half, s.mean + half)


@functools.lru_cache(maxsize=256)
def t_quantile(confidence: float, df: int) -> float:
    """t(1 - (1 - confidence)/2, df) from scipy.stats.t, cached: a report asks for few."""
    from scipy import stats

    return float(stats.t.ppf(1 - (1 - confidence) / 2, df))


def _no_spread(s: Stat) -> bool:
    return not s.std > _ZERO_SPREAD * max(1.0, abs(s.mean))


def paired(
    mtl: Mapping[int, float], stl: Mapping[int, float], sign: int, alpha: float = DEFAULT_ALPHA
) -> Paired | None:
    """Pair `mtl` and `stl` (seed -> value) on their shared seeds and test the gains.

    Seeds present on one side only are dropped. The interval is the (1 - alpha) Student-t
    interval of the mean gain; the p-value is scipy's two-sided paired t-test
    (`ttest_rel` on s·M against s·S, i.e. a one-sample t-test of the gains), and from
    WILCOXON_MIN_N pairs on, scipy's Wilcoxon signed-rank test of the gains is added.
    None when no seed is shared.
    """
    return paired_many([(mtl, stl, sign)], alpha)[0]


def paired_many(
    cells: Sequence[tuple[Mapping[int, float], Mapping[int, float], int]],
    alpha: float = DEFAULT_ALPHA,
) -> list[Paired | None]:
    """`paired` over many (mtl, stl, sign) cells at once.

    Cells with the same number of pairs n go through scipy as one (cells, n) array along
    axis 1: a report of hundreds of cells makes a few scipy calls instead of hundreds.
    """
    out: list[Paired | None] = [None] * len(cells)
    groups: dict[int, list[int]] = {}
    shared = [tuple(sorted(set(mtl) & set(stl))) for mtl, stl, _ in cells]
    for i, seeds in enumerate(shared):
        if seeds:
            groups.setdefault(len(seeds), []).append(i)
    for idx in groups.values():
        m = np.array([[cells[i][0][s] for s in shared[i]] for i in idx], dtype=float)  # (k, n)
        b = np.array([[cells[i][1][s] for s in shared[i]] for i in idx], dtype=float)
        up = np.array([[cells[i][2]] for i in idx], dtype=float)  # (k, 1): each cell's sign
        for i, test in zip(idx, _paired_block(m, b, up, alpha), strict=True):
            out[i] = replace(test, seeds=shared[i])
    return out


def _paired_block(m: np.ndarray, b: np.ndarray, up: np.ndarray, alpha: float) -> list[Paired]:
    """Tests for k cells of n pairs: values m and b (k, n), signs up (k, 1)."""
    from scipy import stats

    k, n = m.shape
    gains = up * (m - b)
    cis = [mean_ci(g, 1 - alpha) for g in gains]
    tests = [
        Paired((), float(mm), float(bm), c.mean, c.std, c.low, c.high, math.nan, math.nan)
        for mm, bm, c in zip(m.mean(axis=1), b.mean(axis=1), cis, strict=True)
    ]
    if n < 2:
        return [replace(t, no_test="n = 1") for t in tests]
    spread = np.array([not _no_spread(c) for c in cis])
    p, w = np.full(k, math.nan), np.full(k, math.nan)
    if spread.any():
        p[spread] = stats.ttest_rel((up * m)[spread], (up * b)[spread], axis=1).pvalue
        if n >= WILCOXON_MIN_N:
            w[spread] = wilcoxon_p(gains[spread])
    return [
        replace(t, p_value=float(pv), p_wilcoxon=float(wv)) if ok else replace(t, no_test=NO_SPREAD)
        for t, ok, pv, wv in zip(tests, spread, p, w, strict=True)
    ]


def wilcoxon_p(gains: np.ndarray) -> np.ndarray:
    """Two-sided Wilcoxon signed-rank p-values of each row of gains (k, n), zeros dropped."""
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # exact → normal approximation note
        return np.asarray(stats.wilcoxon(gains, axis=1).pvalue, dtype=float)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input order.

    Sort the m p-values ascending, p(1) <= ... <= p(m); then
    p_adj(k) = max over j <= k of min(1, (m - j + 1) p(j)). NaN entries are not tests:
    they stay NaN and do not count in m.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    tested = np.flatnonzero(~np.isnan(p))
    m = tested.size
    if m == 0:
        return out.tolist()
    order = tested[np.argsort(p[tested], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out.tolist()


def holm_adjust(cells: Sequence[Paired], alpha: float) -> list[Paired]:
    """The cells with `p_adjusted` (Holm over all of them) and `significant` (< alpha) set."""
    adjusted = holm([c.p_value for c in cells])
    return [
        replace(c, p_adjusted=a, significant=bool(a < alpha))
        for c, a in zip(cells, adjusted, strict=True)
    ]


def min_detectable_difference(n: int, std: float, alpha: float, power: float = POWER) -> float:
    """Smallest true mean gain δ that a two-sided paired t-test at level `alpha` over n
    pairs detects with probability `power`, for gains with standard deviation `std`.

    Power(δ) = P(T > t_c) + P(T < -t_c) with T ~ noncentral t(df = n - 1,
    nc = δ √n / std) and t_c = t(1 - alpha/2, n - 1) (scipy.stats.nct); δ is the root of
    Power(δ) = power (scipy.optimize.brentq). NaN when n < 2 or std is not positive.
    For large n, δ ≈ (z(1 - alpha/2) + z(power)) std / √n, e.g. 2.8 std / √n at 0.05, 0.8.
    """
    from scipy import optimize, stats

    if n < 2 or not std > 0:
        return math.nan
    df = n - 1
    t_c = stats.t.ppf(1 - alpha / 2, df)

    def short(nc: float) -> float:
        # P(T < -t_c | nc) as P(T > t_c | -nc): scipy's far lower tail (cdf) can be NaN.
        return stats.nct.sf(t_c, df, nc) + stats.nct.sf(t_c, df, -nc) - power

    high = t_c + 1.0
    while short(high) < 0:  # power rises with nc: double until it is reached
        high *= 2.0
    nc = optimize.brentq(short, 0.0, high, xtol=1e-10)
    return float(nc * std / math.sqrt(n))
