"""Hard negatives for training: per training query, the top-ranked documents that are not judged relevant.

`mine_negatives(tq, source, depth)` draws them from BM25 (`source="bm25"`), or from the first stage of an experiment
in experiments/ (`source=<experiment name>`, its reranker off). A reranker sees only its first stage's candidates,
so negatives from that first stage teach it the distinctions it will have to make there.
"""
from __future__ import annotations

import logging
from pathlib import Path

from retrieval_lab.chunking import whole_documents
from retrieval_lab.errors import ConfigError
from retrieval_lab.sparse import BM25, BM25Config
from retrieval_lab.training.data import TrainingQueries

log = logging.getLogger(__name__)

# Extra hits fetched beyond `depth`, so that dropping a query's judged documents still leaves `depth` negatives.
SPARE = 20


def unjudged(tq: TrainingQueries, ranked: dict[str, list[tuple[str, float]]], depth: int) -> dict[str, list[str]]:
    """Per query, the top-`depth` documents of its (doc, score) ranking that are not judged relevant. Equal scores
    are ordered by document id, so the negatives (and the rows sampled from them) do not depend on the order in
    which a first stage happens to return ties."""
    out = {}
    for qid, hits in ranked.items():
        judged = {d for d, g in tq.dataset.qrels.get(qid, {}).items() if g >= 1}
        ordered = sorted(hits, key=lambda hit: (-float(hit[1]), hit[0]))
        out[qid] = [d for d, _ in ordered if d not in judged][:depth]
    return out


def bm25_negatives(tq: TrainingQueries, depth: int) -> dict[str, list[str]]:
    """Per training query, the BM25 top-`depth` documents that are not judged relevant (best first)."""
    passages = whole_documents(tq.dataset.corpus, title=True)
    indices, scores = BM25(BM25Config()).index(passages).search(tq.train.texts, depth + SPARE)
    ranked = {qid: [(passages.ids[j], s) for j, s in zip(rows, row_scores) if j >= 0]
              for qid, rows, row_scores in zip(tq.train.ids, indices, scores)}
    return unjudged(tq, ranked, depth)


def pipeline_negatives(tq: TrainingQueries, experiment: str, depth: int,
                       cache_root: str | Path | None = None) -> dict[str, list[str]]:
    """Per training query, the top-`depth` unjudged documents of `experiment`'s first stage (reranker off), run on
    the training queries with the lab's own pipeline and caches."""
    from retrieval_lab.config import compose_config
    from retrieval_lab.paths import study_dirs
    from retrieval_lab.pipeline import Retriever

    known = sorted(p.stem for folder in study_dirs() for p in folder.glob("*.yaml"))
    if experiment not in known:
        raise ConfigError("negatives_from", f"no experiment '{experiment}'", f"use bm25 or one of: {', '.join(known)}")
    overrides = [f"+experiments={experiment}", "reranker.name=none",
                 "tracking.enabled=false"]
    if cache_root is not None:
        overrides.append(f"cache.dir={cache_root}")
    cfg = compose_config(overrides)
    if cfg.dataset.name != tq.dataset.name:
        raise ConfigError("negatives_from", f"experiment '{experiment}' runs on dataset '{cfg.dataset.name}', the "
                                            f"training data is '{tq.dataset.name}'",
                          f"name an experiment over {tq.dataset.name}, or use bm25")
    if cfg.eval.depth < depth + SPARE:
        cfg.eval.depth = depth + SPARE
    trace = Retriever(cfg, tq.dataset.corpus).retrieve(tq.train)
    ranked = {qid: list(trace.documents.get(qid, [])) for qid in tq.train.ids}
    log.info("mined negatives for %d training queries from %s's first stage", len(ranked), experiment)
    return unjudged(tq, ranked, depth)


def mine_negatives(tq: TrainingQueries, source: str, depth: int,
                   cache_root: str | Path | None = None) -> dict[str, list[str]]:
    if source == "bm25":
        return bm25_negatives(tq, depth)
    return pipeline_negatives(tq, source, depth, cache_root)
