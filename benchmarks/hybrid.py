"""Hybrid fusion, fine-tuned embedders and reranking on SciFact / NFCorpus: every setting chosen on a selection split
(held-out training queries, or NFCorpus dev), then the chosen pipeline reported once on the test split.

    RETRIEVAL_LAB_CACHE=.cache/test-cache nice -n 10 .venv/bin/python benchmarks/hybrid.py fusion \
        --dataset scifact --dense minilm_l6 minilm_l6-scifact-ft --selection heldout
    ... benchmarks/hybrid.py fusion --dataset nfcorpus --dense minilm_l6 minilm_l6-nfcorpus-ft --selection dev
    ... benchmarks/hybrid.py fusion --dataset nfcorpus --dense minilm_l6-nfcorpus-ft --selection dev \
        --passages chunker=fixed_tokens          # every run on 128-token chunks (NFCorpus abstracts exceed 256)
    ... benchmarks/hybrid.py fusion --dataset nfcorpus --dense minilm_l6-nfcorpus-ft --selection dev \
        --norms minmax zscore max --first-stage-depths 100 1000   # fuse deeper lists: fewer missing scores
    ... benchmarks/hybrid.py fusion --dataset nfcorpus --dense minilm_l6-nfcorpus-ft minilm_l6-nfcorpus-ft2 \
        --selection dev --norms max --first-stage-depths 1000   # with two models: BM25 + both, three-way
    ... benchmarks/hybrid.py fusion --dataset nfcorpus --dense minilm_l6-nfcorpus-ft minilm_l6-nfcorpus-ft2 \
        --selection dev --norms max --first-stage-depths 1000 --bm25 rm3.fb_docs=10   # BM25 with RM3 expansion
    ... benchmarks/hybrid.py fusion --dataset scifact --dense minilm_l6-scifact-ft --selection heldout \
        --norms minmax zscore max --first-stage-depths 100 1000   # SciFact over deeper lists too
    ... benchmarks/hybrid.py rerank --dataset scifact --first-stage best --rerankers <name> \
        --depths 10 20 50 100 --sample 100 --selection heldout
    ... benchmarks/hybrid.py rerank ... --depths 50 10 --sample 0   # the selected settings on every test query
    ... benchmarks/hybrid.py table            # markdown tables from the JSON, for BENCHMARKS.md

`heldout` = the 20 % of the training queries that `train-embedder holdout=0.2 seed=0` keeps out of training (the
same hash split for every model trained with that seed), so a fine-tuned model is never selected on queries it was
trained on. First-stage runs and embeddings come from the shared cache: a fusion grid costs no search or encoding.
Results go to benchmarks/results/hybrid.json as they are measured.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from functools import partial
from itertools import product
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CI", "1")  # no progress bars in logs

OUT = Path(__file__).resolve().parent / "results" / "hybrid.json"
ALPHAS = [round(i * 0.05, 2) for i in range(21)]


class Results:
    def __init__(self, path: Path):
        self.path = path
        self.data = json.loads(path.read_text()) if path.exists() else {}

    def put(self, *keys_and_value) -> None:
        """Set one value and rewrite the file, re-read first so two commands running at once keep each other's."""
        *keys, last, value = keys_and_value
        if self.path.exists():
            self.data = json.loads(self.path.read_text())
        node = self.data
        for key in keys:
            node = node.setdefault(key, {})
        node[last] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        os.replace(tmp, self.path)


def selection_dataset(name: str, selection: str):
    """The selection split: `dev`, or `heldout` (training queries that holdout=0.2 seed=0 keeps out of training)."""
    from omegaconf import OmegaConf

    from retrieval_lab.config import compose_config
    from retrieval_lab.data import Dataset, load_dataset
    from retrieval_lab.training.data import _heldout
    from retrieval_lab.types import Qrels

    if selection != "heldout":
        return load_dataset(OmegaConf.merge(compose_config([f"dataset={name}"]).dataset, {"split": selection}))
    train = load_dataset(OmegaConf.merge(compose_config([f"dataset={name}"]).dataset, {"split": "train"}))
    keep = {q for q in train.queries.ids if _heldout(q, 0.2, 0)}
    return Dataset(train.name, "train-heldout", train.path, train.corpus, train.queries.subset(keep),
                   Qrels({q: d for q, d in train.qrels.items() if q in keep}), train.ignore_identical_ids)


class Evaluator:
    """run_experiment over a fixed dataset object per split; returns the metrics we tabulate."""

    def __init__(self, name: str, selection: str, extra: list[str] | None = None):
        from omegaconf import OmegaConf

        from retrieval_lab.config import compose_config
        from retrieval_lab.data import load_dataset

        self.name = name
        self.datasets = {"test": load_dataset(compose_config([f"dataset={name}"]).dataset),
                         "selection": selection_dataset(name, selection)}
        self.selection = selection
        self.extra = list(extra or [])  # overrides for every evaluation (e.g. chunker=fixed_tokens)
        self._om = OmegaConf

    def __call__(self, overrides: list[str], split: str = "test", queries: set[str] | None = None,
                 per_query: bool = False) -> dict:
        from retrieval_lab.config import compose_config
        from retrieval_lab.data import Dataset
        from retrieval_lab.pipeline import run_experiment
        from retrieval_lab.types import Qrels

        ds = self.datasets[split]
        if queries is not None:
            ds = Dataset(ds.name, ds.split, ds.path, ds.corpus, ds.queries.subset(queries),
                         Qrels({q: d for q, d in ds.qrels.items() if q in queries}), ds.ignore_identical_ids)
        cfg = compose_config([f"dataset={self.name}", "tracking.enabled=false", *self.extra, *overrides])
        t0 = time.perf_counter()
        outcome = run_experiment(cfg, dataset=ds)
        means = outcome.evaluation.means
        row = {"ndcg_at_10": means["ndcg_at_10"], "recall_at_100": means.get("recall_at_100"),
               "queries": len(ds.queries), "seconds": time.perf_counter() - t0}
        row.update({k: v for k, v in outcome.extra_metrics.items() if k.startswith("first_stage")})
        row.update({k: v for k, v in outcome.timings.items() if k.startswith("rerank")})
        if per_query:  # for significance tests; not kept in the JSON
            values = outcome.evaluation.per_query["ndcg_at_10"].tolist()
            row["per_query"] = dict(zip(outcome.evaluation.query_ids, values))
        return row


def cost_aware_choice(first_stage: dict, grid: dict[str, dict], alpha: float = 0.05) -> tuple[str | None, dict]:
    """The `retrieval-lab best` rule on the selection split: the top setting by mean nDCG@10, then the cheapest
    setting (no reranking, then the shallowest depth) whose paired randomization test against the top is not
    significant after Holm correction. Never a setting that scores below the first stage. Returns (setting or None
    for no reranking, the p-values)."""
    from retrieval_lab.evaluate.significance import against_top

    rows = {None: first_stage, **grid}
    top = max(rows, key=lambda k: rows[k]["ndcg_at_10"])
    queries = sorted(first_stage["per_query"])
    vector = {k: [row["per_query"][q] for q in queries] for k, row in rows.items()}
    others = [k for k in rows if k != top]
    adjusted = dict(zip(others, against_top(vector[top], [vector[k] for k in others])[1]))
    adjusted[top] = 1.0
    def cost(setting: str | None) -> tuple[int, float]:  # "<depth> <interpolate>": shallower first
        return (-1, 0.0) if setting is None else (int(setting.split()[0]), -float(setting.split()[1]))

    eligible = [k for k in rows if adjusted[k] >= alpha and rows[k]["ndcg_at_10"] >= first_stage["ndcg_at_10"]]
    return min(eligible, key=cost), {str(k): p for k, p in adjusted.items()}


def dense_overrides(model: str) -> list[str]:
    return ["retriever=dense", f"embedder.model={model}", f"embedder.name={model}"]


def hybrid_overrides(model: str, method: str = "convex", alpha: float | None = 0.5, norm: str = "minmax",
                     weights: list[float] | None = None, extra_dense: str | None = None, depth: int = 100,
                     bm25: list[str] = ()) -> list[str]:
    out = ["retriever=hybrid", f"embedder.model={model}", f"embedder.name={model}",
           f"retriever.fusion.name={method}", f"retriever.fusion.normalization={norm}",
           *(f"retriever.inputs.bm25.{setting}" for setting in bm25)]
    if depth != 100:  # the first-stage depth each input retrieves (conf/retriever/hybrid.yaml: 100)
        out.append(f"retriever.depth={depth}")
    if extra_dense:
        out.append(f"+retriever.inputs.dense2={{name: dense, embedder: {{name: {extra_dense}, model: {extra_dense}, "
                   "max_tokens: 256}}")  # as the embedder group's max_tokens: same identity, cached vectors
    if weights is not None:
        out += ["retriever.fusion.alpha=null", f"retriever.fusion.weights=[{','.join(map(str, weights))}]"]
    else:
        out.append(f"retriever.fusion.alpha={alpha}")
    return out


def cmd_fusion(args) -> None:
    results = Results(args.out)
    ev = Evaluator(args.dataset, args.selection, args.passages)
    hybrid = partial(hybrid_overrides, bm25=args.bm25)
    bm25_overrides = ["retriever=bm25", *(f"retriever.{setting}" for setting in args.bm25)]
    depths = sorted(set(args.first_stage_depths))
    section = " ".join([f"fusion/{args.dataset}", *args.passages, *(f"bm25.{setting}" for setting in args.bm25)]
                       + ([f"depths={','.join(map(str, depths))}"] if depths != [100] else []))
    log = lambda *a: print(*a, flush=True)  # noqa: E731
    log(f"{args.dataset}: selection split {ev.selection} ({len(ev.datasets['selection'].queries)} queries)")
    bm25 = {split: ev(bm25_overrides, split) for split in ("selection", "test")}
    results.put(section, "bm25", bm25)
    log("bm25", {s: round(r["ndcg_at_10"], 4) for s, r in bm25.items()})
    best_overall = ("bm25", bm25_overrides, bm25["selection"]["ndcg_at_10"])
    for model in args.dense:
        done = results.data.get(section, {}).get(model, {})
        if "hybrid" in done and not args.redo:  # measured by an earlier (interrupted) run of this command
            d, h = done["dense"], done["hybrid"]
            log(model, "already measured: hybrid", h["chosen"], "test", round(h["test"]["ndcg_at_10"], 4))
            if h["selection"]["ndcg_at_10"] > best_overall[2]:
                best_overall = (f"bm25 + {model} ({h['chosen']})", h["overrides"], h["selection"]["ndcg_at_10"])
            if d["selection"]["ndcg_at_10"] > best_overall[2]:
                best_overall = (model, dense_overrides(model), d["selection"]["ndcg_at_10"])
            continue
        dense = {split: ev(dense_overrides(model), split) for split in ("selection", "test")}
        results.put(section, model, "dense", dense)
        log(model, "dense", {s: round(r["ndcg_at_10"], 4) for s, r in dense.items()})
        grid = {}
        for depth in depths:  # grid keys: "<method> <normalization or rrf k> <alpha>[ depth=<first-stage depth>]"
            at = "" if depths == [100] else f" depth={depth}"
            for norm in args.norms:
                for alpha in ALPHAS:
                    grid[f"convex {norm} {alpha}{at}"] = ev(hybrid(model, "convex", alpha, norm, depth=depth),
                                                            "selection")
            for alpha in (0.3, 0.4, 0.5, 0.6, 0.7):  # rrf k 60 with per-run weights
                grid[f"rrf 60 {alpha}{at}"] = ev(hybrid(model, "rrf", alpha, depth=depth), "selection")
        results.put(section, model, "selection_grid", {k: v["ndcg_at_10"] for k, v in grid.items()})
        chosen = max(grid, key=lambda k: (grid[k]["ndcg_at_10"], k == "convex minmax 0.5"))
        method, norm_or_k, alpha, *at = chosen.split()
        overrides = hybrid(model, method, float(alpha), norm_or_k if method == "convex" else "minmax",
                           depth=int(at[0].split("=")[1]) if at else 100)
        test = ev(overrides, "test")
        fixed = {"convex minmax 0.5": ev(hybrid(model, "convex", 0.5, "minmax"), "test"),
                 "rrf 60 0.5": ev(hybrid(model, "rrf", 0.5), "test")}
        results.put(section, model, "hybrid", {"chosen": chosen, "selection": grid[chosen], "test": test,
                                               "overrides": overrides,
                                               "fixed_test": {k: v["ndcg_at_10"] for k, v in fixed.items()}})
        log(model, "hybrid chosen", chosen, "selection", round(grid[chosen]["ndcg_at_10"], 4),
            "test", round(test["ndcg_at_10"], 4), {k: round(v["ndcg_at_10"], 4) for k, v in fixed.items()})
        if grid[chosen]["ndcg_at_10"] > best_overall[2]:
            best_overall = (f"bm25 + {model} ({chosen})", overrides, grid[chosen]["ndcg_at_10"])
        if dense["selection"]["ndcg_at_10"] > best_overall[2]:
            best_overall = (model, dense_overrides(model), dense["selection"]["ndcg_at_10"])
    if len(args.dense) >= 2:  # bm25 + two dense models, weights on a 0.1 simplex grid, per normalization and depth
        first, second = args.dense[:2]
        grid = {}  # key: "<normalization> <weights>[ depth=<first-stage depth>]"
        for depth, norm in product(depths, args.norms):
            at = "" if depths == [100] else f" depth={depth}"
            for w1, w2 in product([i / 10 for i in range(1, 9)], repeat=2):
                w3 = round(1 - w1 - w2, 2)
                if w3 <= 0:
                    continue
                weights = [w1, w2, w3]
                overrides = hybrid(first, "convex", None, norm, weights, second, depth)
                grid[f"{norm} {json.dumps(weights)}{at}"] = (ev(overrides, "selection"), overrides, weights, norm,
                                                              depth)
        chosen = max(grid, key=lambda k: grid[k][0]["ndcg_at_10"])
        row, overrides, weights, norm, depth = grid[chosen]
        test = ev(overrides, "test")
        label = f"bm25 + {first} + {second}"
        results.put(section, "three_way", {"inputs": label, "chosen_weights": weights, "normalization": norm,
                                           "depth": depth, "selection": row, "test": test, "overrides": overrides})
        log(label, "chosen", chosen, "selection", round(row["ndcg_at_10"], 4), "test", round(test["ndcg_at_10"], 4))
        if row["ndcg_at_10"] > best_overall[2]:
            best_overall = (f"{label} (convex {chosen})", overrides, row["ndcg_at_10"])
    label, overrides, sel = best_overall
    test = ev(overrides, "test")
    results.put(section, "best", {"pipeline": label, "overrides": [*args.passages, *overrides],
                                  "selection_ndcg_at_10": sel, "test": test})
    log("best on selection:", label, round(sel, 4), "-> test", round(test["ndcg_at_10"], 4))


def cmd_rerank(args) -> None:
    results = Results(args.out)
    ev = Evaluator(args.dataset, args.selection)
    # one section per query set: the first-stage figures stored in it hold for every reranker measured in it
    section = " ".join([f"rerank/{args.dataset}"] + ([] if args.sample == 100 else [f"sample={args.sample or 'all'}"])
                       + ([f"selection-sample={args.selection_sample}"] if args.selection_sample else []))
    first = results.data[f"fusion/{args.dataset}"]["best"]["overrides"] if args.first_stage == "best" \
        else json.loads(args.first_stage)
    test_ids = sorted(ev.datasets["test"].queries.ids)
    sample = set(random.Random(args.seed).sample(test_ids, min(args.sample, len(test_ids)))) if args.sample else None
    sel_ids = set(ev.datasets["selection"].queries.ids)
    if args.selection_sample and args.selection_sample < len(sel_ids):
        sel_ids = set(random.Random(args.seed).sample(sorted(sel_ids), args.selection_sample))
    base = {"selection": ev(first, "selection", sel_ids, per_query=True), "test_sample": ev(first, "test", sample)}
    selection_row = {k: v for k, v in base["selection"].items() if k != "per_query"}
    results.put(section, "first_stage", {"overrides": first, "selection": selection_row,
                                         "test_sample": base["test_sample"],
                                         "test_sample_queries": len(sample) if sample else len(test_ids)})
    print("first stage", {k: round(v["ndcg_at_10"], 4) for k, v in base.items()}, flush=True)
    for name in args.rerankers:
        rr = ["reranker=cross_encoder", f"reranker.model={name}",
              f"reranker.max_length={args.max_length}", f"reranker.batch_size={args.batch_size}"]
        grid = {}
        for depth in sorted(args.selection_depths, reverse=True):  # deepest first: shallower ones hit the cache
            for w in args.interpolate:
                grid[f"{depth} {w}"] = ev([*first, *rr, f"reranker.depth={depth}", f"reranker.interpolate={w}"],
                                          "selection", sel_ids, per_query=True)
                print(name, "selection depth", depth, "w", w, round(grid[f"{depth} {w}"]["ndcg_at_10"], 4),
                      flush=True)
        results.put(section, name, "selection_grid", {k: v["ndcg_at_10"] for k, v in grid.items()})
        chosen = max(grid, key=lambda k: grid[k]["ndcg_at_10"])
        on = grid[chosen]["ndcg_at_10"] > base["selection"]["ndcg_at_10"]
        aware, pvalues = cost_aware_choice(base["selection"], grid)
        results.put(section, name, "selection_choice", {"setting": chosen, "ndcg_at_10": grid[chosen]["ndcg_at_10"],
                                                         "first_stage": base["selection"]["ndcg_at_10"],
                                                         "rerank_on": on, "cost_aware": aware,
                                                         "p_holm_vs_top": pvalues})
        print(name, "selection chooses", chosen if on else "no reranking", "; cost-aware:", aware or "no reranking",
              flush=True)
        curve = {}
        weights = {0.0, float(chosen.split()[1])} | ({float(aware.split()[1])} if aware else set())
        for depth in sorted(args.depths, reverse=True):
            for w in sorted(weights):
                row = ev([*first, *rr, f"reranker.depth={depth}", f"reranker.interpolate={w}"], "test", sample)
                curve[f"{depth} {w}"] = row
                print(name, "test depth", depth, "w", w, round(row["ndcg_at_10"], 4),
                      f"{row.get('rerank_ms_per_query', 0):.0f} ms/q", flush=True)
                results.put(section, name, "test_curve", curve)


def _row(label: str, part: dict) -> None:
    print(f"| {label} | {part['selection']['ndcg_at_10']:.4f} | {part['test']['ndcg_at_10']:.4f} | "
          f"{part['test']['recall_at_100']:.4f} |")


def cmd_table(args) -> None:
    data = Results(args.out).data
    for key, section in data.items():
        if key.startswith("fusion/"):
            print(f"\n### {key.split('/')[1]} (test nDCG@10; settings chosen on the selection split)\n")
            print("| pipeline | selection nDCG@10 | test nDCG@10 | test R@100 |\n|---|---:|---:|---:|")
            _row("bm25", section["bm25"])
            for model, part in section.items():
                if model in ("bm25", "best", "three_way"):
                    continue
                if part.get("dense"):
                    _row(f"dense {model}", part["dense"])
                h = part.get("hybrid")
                if h:
                    _row(f"bm25 + {model}, {h['chosen']}", h)
                    for name, value in h["fixed_test"].items():
                        print(f"| bm25 + {model}, {name} (fixed, not selected) | - | {value:.4f} | - |")
            if "three_way" in section:
                t = section["three_way"]
                _row(f"{t['inputs']}, convex {t.get('normalization', 'minmax')} weights {t['chosen_weights']}"
                     + (f", depth {t['depth']}" if t.get("depth", 100) != 100 else ""), t)
            b = section.get("best")
            if b:
                print(f"\nBest on the selection split: **{b['pipeline']}** -> test nDCG@10 "
                      f"**{b['test']['ndcg_at_10']:.4f}**")
        if key.startswith("rerank/"):
            print(f"\n### reranking on {key.split('/')[1]}\n")
            fs = section["first_stage"]
            print(f"First stage: `{' '.join(fs['overrides'])}`; selection nDCG@10 {fs['selection']['ndcg_at_10']:.4f}"
                  f", test sample ({fs['test_sample_queries']} queries) {fs['test_sample']['ndcg_at_10']:.4f}\n")
            for name, part in section.items():
                if name == "first_stage":
                    continue
                c = part.get("selection_choice", {})
                print(f"Reranker `{name}`: selection grid (depth interpolate: nDCG@10) "
                      + ", ".join(f"{k}: {v:.4f}" for k, v in part.get("selection_grid", {}).items())
                      + f"; the top setting: {c['setting'] if c.get('rerank_on') else 'no reranking'}"
                      + (f"; cost- and significance-aware (as `retrieval-lab best`): "
                         f"{c['cost_aware'] or 'no reranking'}" if "cost_aware" in c else "") + "\n")
                print("| depth | interpolate | test nDCG@10 | first-stage recall@depth (ceiling) | rerank ms/query |")
                print("|---:|---:|---:|---:|---:|")
                for k, row in sorted(part.get("test_curve", {}).items(), key=lambda kv: [float(x) for x in kv[0].split()]):
                    depth, w = k.split()
                    print(f"| {depth} | {w} | {row['ndcg_at_10']:.4f} | "
                          f"{row.get(f'first_stage_recall_at_{depth}', float('nan')):.4f} | "
                          f"{row.get('rerank_ms_per_query', float('nan')):.0f} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("fusion")
    p.add_argument("--dataset", default="scifact")
    p.add_argument("--dense", nargs="+", default=["minilm_l6"])
    p.add_argument("--selection", default="heldout", help="heldout (20%% of train, seed 0) or a split name (dev)")
    p.add_argument("--norms", nargs="+", default=["minmax", "zscore"])
    p.add_argument("--first-stage-depths", nargs="+", type=int, default=[100],
                   help="documents each input retrieves before fusion, crossed with the grid (results under "
                        "'fusion/<dataset> depths=...' unless only 100)")
    p.add_argument("--redo", action="store_true", help="measure models already in the JSON again")
    p.add_argument("--passages", nargs="*", default=[],
                   help="overrides for every run, e.g. chunker=fixed_tokens (results under 'fusion/<dataset> <overrides>')")
    p.add_argument("--bm25", nargs="*", default=[],
                   help="BM25 settings for its runs alone and as a hybrid input, e.g. rm3.fb_docs=10 (results under "
                        "'fusion/<dataset> bm25.<setting>')")
    p.set_defaults(func=cmd_fusion)
    p = sub.add_parser("rerank")
    p.add_argument("--dataset", default="scifact")
    p.add_argument("--first-stage", default="best", help="'best' (from the fusion section) or a JSON list of overrides")
    p.add_argument("--rerankers", nargs="+", required=True)
    p.add_argument("--selection", default="heldout")
    p.add_argument("--selection-depths", nargs="+", type=int, default=[10, 20, 50])
    p.add_argument("--selection-sample", type=int, default=0,
                   help="0: every selection query (else results under 'rerank/<dataset> selection-sample=N')")
    p.add_argument("--interpolate", nargs="+", type=float, default=[0.0, 0.3, 0.5, 0.7])
    p.add_argument("--depths", nargs="+", type=int, default=[10, 20, 50, 100])
    p.add_argument("--sample", type=int, default=100,
                   help="random test queries for the depth curve (0: all; results under 'rerank/<dataset> sample=...' "
                        "unless 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=32)
    p.set_defaults(func=cmd_rerank)
    p = sub.add_parser("table")
    p.set_defaults(func=cmd_table)
    args = parser.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
