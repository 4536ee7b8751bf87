"""Rerank: rescore each query's top `depth` passages with a scorer (`rerank.rerank`)."""
from __future__ import annotations

from dataclasses import asdict

from retrieval_lab.chunking import Passages
from retrieval_lab.pipeline.step import LATENCY_SAMPLE, Context, Step, StepResult
from retrieval_lab.pipeline.trace import RERANK
from retrieval_lab.rerank import RerankerConfig, rerank

# settings that change how scores are fetched (threads, retries, keys, prices), never which scores come back
OPERATIONAL = ("threads", "max_retries", "retry_backoff_s", "timeout_s", "api_key_env", "price_per_1m_tokens",
               "base_url")
SPENT = ("rerank_pairs_computed",)  # the pairs the model scored now (the rest came from the score cache)


class RerankStep(Step):
    """Rescore each query's top `config.depth` passages; latency is the model's time per query: its pairs times the
    seconds per pair measured when they were scored (the score cache replays that figure on a hit)."""

    label = RERANK
    stage_version = 1

    def __init__(self, config: RerankerConfig, scorer, reads: tuple[str, ...]):
        self.config, self.scorer, self.reads = config, scorer, reads
        self._text_of: tuple[Passages, dict[str, str]] | None = None

    @property
    def identity(self) -> dict:
        settings = {name: value for name, value in asdict(self.config).items() if name not in OPERATIONAL}
        return {"name": "rerank", "stage_version": self.stage_version, "scorer": self.scorer.identity, **settings}

    def _texts(self, passages: Passages) -> dict[str, str]:
        if self._text_of is None or self._text_of[0] is not passages:
            self._text_of = (passages, dict(zip(passages.ids, passages.texts)))
        return self._text_of[1]

    def run(self, context: Context) -> StepResult:
        run = context.input().run
        reranked, costs = rerank(run, context.queries, self._texts(context.passages), self.scorer,
                                 self.config.depth, self.config.interpolate)
        per_pair = costs["rerank_seconds_per_pair"]
        latency = [1000 * per_pair * min(self.config.depth, len(run[qid]))
                   for qid in context.queries.ids[:LATENCY_SAMPLE]]
        spent = {name: value for name, value in costs.items() if name in SPENT or name.startswith("rerank_spent_")}
        return StepResult(reranked, latency, {n: v for n, v in costs.items() if n not in spent}, spent)
