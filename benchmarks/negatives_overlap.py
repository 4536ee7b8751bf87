"""How far a reranker's training negatives move when they are mined from the first stage it reranks: per training
query, how many of BM25's top unjudged documents are also among an experiment's first-stage top (the figure in
BENCHMARKS.md, "A reranker within 300 ms that gains +0.01"). Needs the experiment's models trained.

    RETRIEVAL_LAB_DATA=<datasets> .venv/bin/python benchmarks/negatives_overlap.py \
        [--experiment best-scifact] [--dataset scifact] [--depth 10]
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CI", "1")  # no progress bars


def main() -> None:
    from retrieval_lab.config import compose_config
    from retrieval_lab.training.data import training_queries
    from retrieval_lab.training.negatives import mine_negatives

    parser = argparse.ArgumentParser()
    parser.add_argument("--experiment", default="best-scifact")
    parser.add_argument("--dataset", default="scifact")
    parser.add_argument("--depth", type=int, default=10)
    args = parser.parse_args()
    cfg = compose_config([f"dataset={args.dataset}", "dataset.split=train"])
    tq = training_queries(cfg.dataset, "train", ["test"], holdout=0.2, seed=0)  # the queries the rerankers train on
    bm25 = mine_negatives(tq, "bm25", args.depth)
    other = mine_negatives(tq, args.experiment, args.depth)
    shared = [len(set(bm25[q]) & set(other[q])) for q in tq.train.ids]
    print(f"{len(shared)} training queries: of BM25's top {args.depth} unjudged documents, "
          f"{sum(shared) / len(shared):.1f} on average are among {args.experiment}'s first-stage top {args.depth}")


if __name__ == "__main__":
    main()
