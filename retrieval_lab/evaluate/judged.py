"""How much of a ranking a pooled judged set covers (`retrieval-lab judge`, judging/).

A pooled set judges only what the pooled configurations retrieved; every other document counts as not relevant.
`judged_at_k` is the share of a query's top k documents that have a judgement (relevant or not), averaged over the
evaluated queries (the "judged@k" that pooled evaluations report): a configuration outside the pool, or ranks
below the pool's depth, bring unjudged documents, and the metric is then a lower bound.
"""
from __future__ import annotations

from retrieval_lab.types import Qrels, Queries, Run

JUDGED_AT = 10


def judged_at_k(run: Run, qrels: Qrels, query_ids: list[str], k: int = JUDGED_AT) -> float:
    """Mean over `query_ids` of the share of judged documents in each query's top k (of those retrieved)."""
    shares = []
    for qid in query_ids:
        top = run.get(qid, [])[:k]
        if top:
            judged = qrels.get(qid, {})
            shares.append(sum(doc in judged for doc, _ in top) / len(top))
    return sum(shares) / len(shares) if shares else 0.0


def pool_metrics(run: Run, queries: Queries, qrels: Qrels) -> dict[str, float]:
    """`judged_at_10` and `pool_depth` for queries of a judged set (their metadata holds `pool_depth`), else {}."""
    depths = [m["pool_depth"] for m in queries.metadata or [] if isinstance(m, dict) and m.get("pool_depth")]
    if not depths:
        return {}
    return {f"judged_at_{JUDGED_AT}": judged_at_k(run, qrels, list(qrels)), "pool_depth": float(min(depths))}
