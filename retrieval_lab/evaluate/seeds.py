"""A figure that depends on training, over several training seeds: the mean ± sd of a metric over the seeds, the
single-seed figure beside it, and the paired test of the mean gain over a baseline.

The unit of the paired test is the query, as in every other comparison the lab makes: each query's gain is averaged
over the seeds first (pipeline trained with seed s minus the baseline of seed s, or a baseline that no seed changes,
such as BM25), then a two-sided paired randomization test (scipy's `permutation_test`, which flips each query's pair)
asks whether the mean of those per-query gains differs from zero. Three seeds are too few to test across seeds; the
sd over seeds says how far one training moves the figure.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

PerQuery = Mapping[str, float]  # query id -> metric value
RESAMPLES = 10_000


def paired_p(x: np.ndarray, y: np.ndarray, resamples: int = RESAMPLES, seed: int = 0) -> float:
    """Two-sided paired randomization test of mean(x - y) = 0 (seeded: the same data give the same p)."""
    from scipy.stats import permutation_test

    if np.allclose(x, y):
        return 1.0
    result = permutation_test((x, y), lambda a, b, axis: np.mean(a - b, axis=axis), permutation_type="samples",
                              vectorized=True, n_resamples=resamples, alternative="two-sided",
                              rng=np.random.default_rng(seed))
    return float(result.pvalue)


def _queries(per_seed: Mapping[int, PerQuery], what: str) -> list[str]:
    seeds = list(per_seed)
    queries = sorted(per_seed[seeds[0]])
    for s in seeds[1:]:
        if sorted(per_seed[s]) != queries:
            differ = sorted(set(per_seed[s]) ^ set(queries))
            raise ValueError(f"{what}: seed {s} scored other queries than seed {seeds[0]} (e.g. {differ[:3]}); "
                             f"figures over seeds must come from the same queries")
    return queries


def _sd(values: list[float]) -> float | None:
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def over_seeds(per_seed: Mapping[int, PerQuery], baseline: Mapping[int, PerQuery] | None = None,
               resamples: int = RESAMPLES) -> dict:
    """Summary of one figure trained with each seed of `per_seed` (seed -> per-query metric), in its order; the
    first seed is the single-seed figure. `baseline`: seed -> per-query metric of what the gain is over (a first
    stage trained with the same seed; for one that no seed changes, such as BM25, the same mapping for each seed)."""
    if not per_seed:
        raise ValueError("no seeds to summarize")
    seeds = list(per_seed)
    queries = _queries(per_seed, "pipeline")
    scores = np.array([[per_seed[s][q] for q in queries] for s in seeds])  # seeds x queries
    values = scores.mean(axis=1).tolist()
    out = {"seeds": seeds, "queries": len(queries), "values": values, "mean": float(np.mean(values)),
           "sd": _sd(values), "single": values[0], "single_seed": seeds[0]}
    if baseline is None:
        return out
    absent = [s for s in seeds if s not in baseline]
    if absent:
        raise ValueError(f"the baseline has no figures for seeds {absent}")
    missing = [q for s in seeds for q in queries if q not in baseline[s]]
    if missing:
        raise ValueError(f"the baseline has no score for {len(missing)} of the pipeline's queries "
                         f"(e.g. {missing[:3]}): compare on the same queries")
    base = np.array([[baseline[s][q] for q in queries] for s in seeds])
    gains = (scores - base).mean(axis=1).tolist()
    mean_x, mean_y = scores.mean(axis=0), base.mean(axis=0)  # per query, averaged over the seeds
    out["gain"] = {"mean": float(np.mean(gains)), "sd": _sd(gains), "values": gains,
                   "p": paired_p(mean_x, mean_y, resamples), "single": gains[0],
                   "single_p": paired_p(scores[0], base[0], resamples),
                   "baseline_mean": float(base.mean()), "baseline_sd": _sd(base.mean(axis=1).tolist())}
    return out


def mean_sd(summary: dict, digits: int = 4) -> str:
    """'0.7550 ± 0.0021 (3 seeds)', or the one figure when one seed was trained."""
    if summary["sd"] is None:
        return f"{summary['mean']:.{digits}f} (1 seed)"
    return f"{summary['mean']:.{digits}f} ± {summary['sd']:.{digits}f} ({len(summary['seeds'])} seeds)"


def gain_text(gain: dict, digits: int = 4) -> str:
    """'+0.0032 ± 0.0040, p 0.21' (mean gain over seeds, its sd over seeds, paired p over queries)."""
    sd = f" ± {gain['sd']:.{digits}f}" if gain["sd"] is not None else ""
    return f"{gain['mean']:+.{digits}f}{sd}, p {gain['p']:.3g}"
