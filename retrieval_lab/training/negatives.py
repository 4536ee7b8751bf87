"""Hard negatives for training: per training query, the top-ranked documents that are not judged relevant.

`mine_negatives(tq, source, depth)` draws them from BM25 (`source="bm25"`), or from the first stage of an experiment
in experiments/ (`source=<experiment name>`, its reranker off), ranked by the function the command passes in. A
reranker sees only its first stage's candidates, so negatives from that first stage teach it the distinctions it will
have to make there.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from retrieval_lab.chunking import whole_documents
from retrieval_lab.errors import ConfigError
from retrieval_lab.sparse import BM25, BM25Config
from retrieval_lab.training.data import TrainingQueries

log = logging.getLogger(__name__)

# (experiment name, training queries, how many to rank, cache root) -> per training query its first stage's
# (document id, score) ranking, reranker off (`commands.train.experiment_first_stage`).
FirstStageRanking = Callable[[str, TrainingQueries, int, "str | Path | None"], dict[str, list[tuple[str, float]]]]

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


def mine_negatives(tq: TrainingQueries, source: str, depth: int, cache_root: str | Path | None = None,
                   first_stage: FirstStageRanking | None = None) -> dict[str, list[str]]:
    """Per training query, the top-`depth` unjudged documents of BM25 (`source="bm25"`) or of the first stage of the
    experiment `source`, ranked by `first_stage` (the lab's pipeline, which the command passes in: training sits
    below the pipeline and does not import it)."""
    if source == "bm25":
        return bm25_negatives(tq, depth)
    if first_stage is None:
        raise ConfigError("negatives_from", f"'{source}' names an experiment, and no first stage was given to rank "
                                            "its candidates", "use bm25, or train with `retrieval-lab "
                                            "train-reranker`, which runs the experiment's first stage")
    ranked = first_stage(source, tq, depth + SPARE, cache_root)
    log.info("mined negatives for %d training queries from %s's first stage", len(ranked), source)
    return unjudged(tq, ranked, depth)
