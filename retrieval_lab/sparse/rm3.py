"""RM3 pseudo-relevance feedback for BM25 (Lavrenko and Croft's relevance model, interpolated with the query as in
Anserini and PyTerrier): the top `fb_docs` passages of a first BM25 pass vote for their terms, the `fb_terms`
strongest join the query, and the weighted query is searched again.

It helps where queries are short and miss the documents' vocabulary (BM25 alone, nDCG@10: NFCorpus dev 0.284 ->
0.305, Cranfield 0.352 -> 0.387) and hurts where queries are already precise claims (SciFact train 0.695 -> 0.666),
so it is off by default and chosen per dataset like any other setting (experiments/README.md, "Query expansion (RM3)").
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from retrieval_lab.errors import ConfigError


@dataclass(frozen=True)
class RM3Config:
    fb_docs: int = 0  # passages of the first pass that vote; 0 = off (Anserini's -rm3 uses 10)
    fb_terms: int = 10  # expansion terms kept (Anserini: 10)
    query_weight: float = 0.5  # weight of the original query against the expansion terms (Anserini: 0.5)

    @property
    def active(self) -> bool:
        return self.fb_docs > 0

    def validate(self, prefix: str) -> None:
        if self.fb_docs < 0:
            raise ConfigError(f"{prefix}.fb_docs", f"must be >= 0 (0 turns RM3 off), got {self.fb_docs}")
        if self.active and self.fb_terms < 1:
            raise ConfigError(f"{prefix}.fb_terms", f"must be >= 1 when fb_docs > 0, got {self.fb_terms}",
                              "set fb_terms=10 (Anserini's default), or fb_docs=0 to turn RM3 off")
        if not 0 <= self.query_weight <= 1:
            raise ConfigError(f"{prefix}.query_weight", f"must be within [0, 1], got {self.query_weight}")


def expanded_query(query: list[str], feedback: list[list[str]], feedback_scores: list[float],
                   fb_terms: int, query_weight: float) -> dict[str, float]:
    """Term -> weight: `query_weight` x the query's term distribution + (1 - `query_weight`) x the relevance model,
    sum over feedback passages of (score share x P(term | passage)), cut to its `fb_terms` heaviest terms and
    renormalized. Passages with no score or no terms do not vote; with none left the query comes back unchanged."""
    counts = Counter(query)
    voters = [(tokens, score) for tokens, score in zip(feedback, feedback_scores) if score > 0 and tokens]
    if not counts or not voters:
        return {term: float(n) for term, n in counts.items()}
    total_score = sum(score for _, score in voters)
    relevance: Counter[str] = Counter()
    for tokens, score in voters:
        share = score / total_score / len(tokens)
        for term, n in Counter(tokens).items():
            relevance[term] += share * n
    # ties broken by term so the expansion does not depend on the passages' order
    kept = sorted(relevance.items(), key=lambda item: (-item[1], item[0]))[:fb_terms]
    kept_mass = sum(weight for _, weight in kept)
    query_len = sum(counts.values())
    weights = {term: query_weight * n / query_len for term, n in counts.items()}
    for term, weight in kept:
        weights[term] = weights.get(term, 0.0) + (1 - query_weight) * weight / kept_mass
    return weights
