"""The candidate pipelines of the cross-validated selection (`benchmarks/cross_validate.py`): per dataset, a grid
of named override lists (`grid`), each composing to one `retrieval-lab run` configuration.

The grid holds BM25 alone over (k1, b), each dense model alone, BM25 + one dense model fused (convex min-max and
z-score over `ALPHAS`, RRF k 60) and BM25 + two dense models fused three-way on a weight simplex; per dataset, passage
variants multiply it, and `rm3=True` appends the BM25 families again with RM3 expansion. Names are stable: the
committed best pipelines (experiments/best-<dataset>.yaml) are named by them, and a tie on the training folds goes
to the name listed first, so the cheaper families come first.
"""
from __future__ import annotations

from retrieval_lab.errors import ConfigError

ALPHAS = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
# Fixed fusion settings a default could be (label -> method, normalization, alpha), each run as `hybrid(model, ...)`
# by `cross_validate.py fusion-default`. The two-input `alpha` weights RRF too (0.5: plain RRF).
DEFAULTS = {**{f"convex {norm} {a / 10}": ("convex", norm, a / 10)
               for norm in ("minmax", "zscore") for a in range(1, 10)},
            "rrf 60": ("rrf", "minmax", 0.5), **{f"rrf 60 {a / 10}": ("rrf", "minmax", a / 10) for a in (4, 6, 7)}}

# Dense models: the embedder option and key changes, written for the top-level group or a hybrid's extra input.
EMBEDDERS = {
    "wordllama": ("wordllama", {}),
    "minilm_l3": ("minilm_l3", {}),
    "minilm_l6": ("minilm_l6", {}),
    "minilm_l6@512": ("minilm_l6", {"max_tokens": 512}),  # whole ArguAna arguments: 26% exceed 256 tokens
}

# Per dataset: dense models, the pairs of dense models fused three-way with BM25, passage variants (overrides for
# every run of the grid), and the passage variants whose BM25 families `rm3=True` adds again with RM3 expansion.
GRIDS = {
    # MiniLM-L6 at 512 tokens scored below 256 alone (0.483 against 0.501), so the three-way fusions use 256
    "arguana": {"dense": ["wordllama", "minilm_l3", "minilm_l6", "minilm_l6@512"],
                "three_way": [("minilm_l6", "minilm_l3"), ("minilm_l6", "wordllama")],
                "passages": {"": []}},
    # Cranfield's text starts with its title: indexing title + text counts the title twice
    "cranfield": {"dense": ["wordllama", "minilm_l3", "minilm_l6"],
                  "three_way": [("minilm_l6", "minilm_l3"), ("minilm_l6", "wordllama")],
                  "passages": {"": [], "no-title ": ["chunker.title=false"]},
                  # RM3 lifts Cranfield's BM25 by 0.036 (benchmarks/rm3.py); the title counted twice, which led
                  # every family without it
                  "rm3_passages": [""]},
}
# RM3 at Anserini's settings (10 feedback passages, 10 terms, query weight 0.5), as benchmarks/rm3.py measures it
RM3 = {"fb_docs": 10}
# BM25 (k1, b) alone, and as the BM25 input of the hybrids. A first pass (k1 up to 3.0 alone, 2.0 in hybrids) had its
# best ArguAna and Cranfield settings on the edge of the grid, so k1 goes further.
BM25_SETTINGS = [(k1, b) for b in (0.4, 0.6, 0.75, 0.9, 1.0) for k1 in (0.6, 0.9, 1.2, 1.5, 2.0, 3.0, 4.0, 6.0)]
HYBRID_BM25 = [(k1, b) for b in (0.4, 0.75, 1.0) for k1 in (0.9, 1.2, 2.0, 3.0)]


def embedder_overrides(model: str, at: str | None = None) -> list[str]:
    """`embedder=<option>` plus its key changes, or the same as a hybrid's extra dense input `at`."""
    option, keys = EMBEDDERS[model]
    if at is None:
        return [f"embedder={option}", *(f"embedder.{k}={v}" for k, v in keys.items())]
    return [f"+retriever@retriever.inputs.{at}=dense", f"+embedder@retriever.inputs.{at}.embedder={option}",
            *(f"retriever.inputs.{at}.embedder.{k}={v}" for k, v in keys.items())]


def rm3_overrides(at: str, rm3: bool) -> list[str]:
    return [f"{at}.rm3.{key}={value}" for key, value in RM3.items()] if rm3 else []


def bm25(k1: float, b: float, rm3: bool = False) -> list[str]:
    return ["retriever=bm25", f"retriever.k1={k1}", f"retriever.b={b}", *rm3_overrides("retriever", rm3)]


def dense(model: str) -> list[str]:
    return ["retriever=dense", *embedder_overrides(model)]


def hybrid(model: str, method: str, norm: str, alpha: float | None, weights: list[float] | None = None,
           second: str | None = None, k1: float = 0.9, b: float = 0.4, rm3: bool = False) -> list[str]:
    out = ["retriever=hybrid", f"retriever.inputs.bm25.k1={k1}", f"retriever.inputs.bm25.b={b}",
           *rm3_overrides("retriever.inputs.bm25", rm3), *embedder_overrides(model),
           f"retriever.fusion.name={method}", f"retriever.fusion.normalization={norm}"]
    if second:
        out += embedder_overrides(second, "dense2")
    if weights is not None:
        return out + ["retriever.fusion.alpha=null", f"retriever.fusion.weights=[{','.join(map(str, weights))}]"]
    return out + [f"retriever.fusion.alpha={alpha}"]


def bm25_label(k1: float, b: float) -> str:
    return "bm25" if (k1, b) == (0.9, 0.4) else f"bm25({k1},{b})"


def fusion_family(model: str, k1: float = 0.9, b: float = 0.4, alphas=ALPHAS, rm3: bool = False
                  ) -> dict[str, list[str]]:
    """BM25 (k1, b) + one dense model: convex min-max and z-score over `alphas` (weight of BM25), RRF k 60."""
    out, first = {}, bm25_label(k1, b)
    for norm in ("minmax", "zscore"):
        for alpha in alphas:
            out[f"{first}+{model} convex {norm} {alpha}"] = hybrid(model, "convex", norm, alpha, k1=k1, b=b,
                                                                   rm3=rm3)
    out[f"{first}+{model} rrf 60"] = hybrid(model, "rrf", "minmax", 0.5, k1=k1, b=b, rm3=rm3)
    return out


def three_way_weights() -> list[list[float]]:
    """BM25 / first dense / second dense on a 0.1 simplex grid, the second dense model a minor input (0.1-0.2)."""
    out = []
    for w3 in (0.1, 0.2):
        for w1 in [i / 10 for i in range(2, 8)]:
            w2 = round(1 - w1 - w3, 2)
            if w2 >= 0.1:
                out.append([w1, w2, w3])
    return out


def families(spec: dict, rm3: bool = False) -> dict[str, list[str]]:
    """BM25 alone, each dense model alone (not with `rm3`: it has no BM25), two- and three-way fusions."""
    part = {f"bm25 k1={k1} b={b}": bm25(k1, b, rm3) for k1, b in BM25_SETTINGS}
    if not rm3:
        part.update({f"dense {m}": dense(m) for m in spec["dense"]})
    for k1, b in HYBRID_BM25:
        for model in spec["dense"]:
            part.update(fusion_family(model, k1, b, rm3=rm3))
    for k1, b in HYBRID_BM25:
        for first, second in spec["three_way"]:
            for norm in ("minmax", "zscore"):
                for w in three_way_weights():
                    part[f"{bm25_label(k1, b)}+{first}+{second} convex {norm} {w}"] = hybrid(
                        first, "convex", norm, None, w, second, k1, b, rm3)
    return part


def grid(dataset: str, rm3: bool = False) -> dict[str, list[str]]:
    """Candidate name -> overrides, cheaper families first (a tie on the training folds goes to the earlier); with
    `rm3`, the RM3 variants (named `rm3 ...`) after all the others."""
    if dataset not in GRIDS:
        raise ConfigError("dataset", f"no candidate grid for '{dataset}'",
                          fix=f"choose one of {', '.join(sorted(GRIDS))}, or add its entry to GRIDS in "
                              "retrieval_lab/sweep/grids.py")
    spec = GRIDS[dataset]
    out: dict[str, list[str]] = {}
    for prefix, passages in spec["passages"].items():
        out.update({prefix + name: [*passages, *overrides] for name, overrides in families(spec).items()})
    for prefix in spec.get("rm3_passages", []) if rm3 else []:
        passages = spec["passages"][prefix]
        out.update({f"rm3 {prefix}{name}": [*passages, *overrides]
                    for name, overrides in families(spec, rm3=True).items()})
    return out
