"""Data checks run with every evaluation: warnings for set-ups that silently cost quality, each with its fix.

- Queries and documents in different case (all-caps queries over lower-case text) fed to a case-sensitive embedder:
  WordLlama fell from 0.36 to 0.06 nDCG@10 on such a collection (FIELD-NOTES); `embedder.lowercase=true` fixes it.
- A fused ranking that scores below its best input alone on the evaluated queries: BM25 + MiniLM-L6 scored nDCG@10
  0.6106 on a manual's pages where its dense input alone scored 0.6675, and a weak input dragged another hybrid to
  0.31 against BM25's 0.44 (FIELD-NOTES). A fixed weight does not transfer between collections: the fix is to sweep
  the weight on these questions, and to choose it with cross-validation so the choice is not fitted to them.
"""
from __future__ import annotations

import logging
import re

from retrieval_lab.types import Corpus, Facts, Qrels, Queries, Run

log = logging.getLogger(__name__)

CASE_GAP = 0.5  # difference in the share of upper-case letters between queries and documents that warns
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


def case_mismatch(queries: Queries, corpus: Corpus, facts: list[Facts]) -> dict[str, float]:
    """`queries_upper_share` and `corpus_upper_share`; warns when they differ by `CASE_GAP` or more and a first
    stage declares its model case-sensitive (`facts`: the first stages' facts)."""
    in_queries, in_corpus = upper_share(queries.texts), upper_share(corpus.texts)
    if abs(in_queries - in_corpus) >= CASE_GAP:
        for fact in facts:
            if fact.case_sensitive:
                log.warning("%.0f%% of the query letters are upper case against %.0f%% in the documents, and "
                            "embedder %s is case-sensitive: its scores will suffer; set embedder.lowercase=true "
                            "(or <input>.embedder.lowercase=true in a hybrid)", 100 * in_queries, 100 * in_corpus,
                            fact.model)
    return {"queries_upper_share": in_queries, "corpus_upper_share": in_corpus}


def fusion_below_input(inputs: dict[str, Run], fused_ndcg10: float, n_queries: int,
                       evaluate_ndcg10) -> dict[str, float]:
    """nDCG@10 of each fusion input alone (`<label>_ndcg_at_10`) and `fusion_gain_ndcg_at_10` (fused minus the best
    input); warns whenever the fused ranking scores below its best input on these queries. `evaluate_ndcg10(run)`
    scores a passage-level input as the evaluation does (documents, same qrels)."""
    scores = {label: evaluate_ndcg10(run) for label, run in inputs.items()}
    out = {f"{label}_ndcg_at_10": value for label, value in scores.items()}
    if len(scores) < 2:
        return out
    best = max(scores, key=scores.get)
    out["fusion_gain_ndcg_at_10"] = fused_ndcg10 - scores[best]
    if fused_ndcg10 < scores[best]:
        log.warning("the fused ranking scores nDCG@10 %.4f on these %d queries, below its input %s alone (%.4f; %s): "
                    "the fusion weight does not fit this collection. Sweep it: retrieval-lab sweep <your overrides> "
                    "retriever.fusion.alpha=0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1 (the runs replay the cached "
                    "inputs), then choose it with retrieval-lab best --cross-validate K, so the weight is not fitted "
                    "to the questions that score it", fused_ndcg10, n_queries, best, scores[best],
                    ", ".join(f"{label} {value:.4f}" for label, value in scores.items()))
    return out
