"""Data checks run with every evaluation: warnings for set-ups that silently cost quality, each with its fix.

- Queries and documents in different case (all-caps queries over lower-case text) fed to a case-sensitive embedder:
  WordLlama fell from 0.36 to 0.06 nDCG@10 on such a collection (FIELD-NOTES); `embedder.lowercase=true` fixes it.
- A fusion input far weaker than another on the evaluated queries: a fixed weight then drags the hybrid below its
  best input (0.31 against BM25's 0.44 on the same collection); the alpha sweep finds the weight.
"""
from __future__ import annotations

import logging
import re

from retrieval_lab.types import Corpus, Qrels, Queries, Run

log = logging.getLogger(__name__)

CASE_GAP = 0.5  # difference in the share of upper-case letters between queries and documents that warns
WEAK_INPUT = 0.5  # an input whose nDCG@10 is below this share of the best input's warns
SAMPLE_CHARS = 2000  # characters read per text (and at most 2,000 texts) for the upper-case share
_LETTERS = re.compile(r"[^\W\d_]")


def upper_share(texts: list[str]) -> float:
    """Share of upper-case letters over a sample of the texts."""
    letters = upper = 0
    for text in texts[:2000]:
        for ch in _LETTERS.findall(text[:SAMPLE_CHARS]):
            letters += 1
            upper += ch.isupper()
    return upper / letters if letters else 0.0


def case_mismatch(queries: Queries, corpus: Corpus, stages: list) -> dict[str, float]:
    """`queries_upper_share` and `corpus_upper_share`; warns when they differ by `CASE_GAP` or more and a dense
    stage's model is case-sensitive."""
    in_queries, in_corpus = upper_share(queries.texts), upper_share(corpus.texts)
    if abs(in_queries - in_corpus) >= CASE_GAP:
        for stage in stages:
            if getattr(stage, "case_sensitive", False):
                log.warning("%.0f%% of the query letters are upper case against %.0f%% in the documents, and "
                            "embedder %s is case-sensitive: its scores will suffer; set embedder.lowercase=true "
                            "(or <input>.embedder.lowercase=true in a hybrid)", 100 * in_queries, 100 * in_corpus,
                            stage.embedder_config.name)
    return {"queries_upper_share": in_queries, "corpus_upper_share": in_corpus}


def weak_fusion_inputs(inputs: dict[str, Run], qrels: Qrels, evaluate_ndcg10) -> dict[str, float]:
    """nDCG@10 of each fusion input alone (`<label>_ndcg_at_10`); warns when one is below `WEAK_INPUT` of the best.
    `evaluate_ndcg10(run)` scores a passage-level input as the evaluation does (documents, same qrels)."""
    scores = {label: evaluate_ndcg10(run) for label, run in inputs.items()}
    if len(scores) > 1:
        best = max(scores, key=scores.get)
        for label, value in scores.items():
            if value < WEAK_INPUT * scores[best]:
                log.warning("fusion input %s scores nDCG@10 %.3f alone against %.3f for %s on these queries: a fixed "
                            "fusion weight can pull the hybrid below %s; sweep the weight (retrieval-lab sweep "
                            "fusion, or retriever.fusion.alpha=range(0,1.05,0.1)) or drop the input", label, value,
                            scores[best], best, best)
    return {f"{label}_ndcg_at_10": value for label, value in scores.items()}
