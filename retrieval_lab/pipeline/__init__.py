"""The chain: dataset -> passages -> first-stage runs -> fusion -> rerank -> documents -> evaluation.

Each arrow is a function over plain data; every stage's output is cached under a hash of its inputs, so a sweep
that changes only the fusion weights replays the first-stage runs instead of searching again.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np
from omegaconf import DictConfig

from retrieval_lab.cache import Cache
from retrieval_lab.chunking import Passages
from retrieval_lab.data import Dataset, dataset_from_config
from retrieval_lab.errors import ConfigError, LabError
from retrieval_lab.evaluate import METRICS, Evaluation, evaluate
from retrieval_lab.fusion import fuse
from retrieval_lab.types import Corpus, Queries, Run

log = logging.getLogger(__name__)

LATENCY_SAMPLE = 50  # queries timed one at a time for p50/p95 latency


class FirstStage(Protocol):
    """A first-stage retriever over passages (BM25, dense + index)."""

    identity: dict  # everything that changes its output (config, model weights hash): the cache key

    def index(self, passages: Passages) -> None: ...

    def search(self, texts: list[str], k: int) -> tuple[np.ndarray, np.ndarray]: ...


def _bm25_stage(node: DictConfig, cfg: DictConfig, cache: Cache, prefix: str) -> FirstStage:
    from retrieval_lab.sparse import BM25, BM25Config
    from retrieval_lab.config import typed

    config = typed(BM25Config, node, prefix, ignore=("name",))
    config.validate(prefix)
    return BM25(config)


def _dense_stage(node: DictConfig, cfg: DictConfig, cache: Cache, prefix: str) -> FirstStage:
    """Embedder + FAISS index: the node's own `embedder`/`index` sub-nodes, else the top-level groups."""
    from retrieval_lab.dense import dense_stage

    return dense_stage(node, cfg, cache, prefix)


# name -> factory(stage config node, whole config, cache, config key prefix)
FIRST_STAGES: dict[str, Callable[..., FirstStage]] = {"bm25": _bm25_stage, "dense": _dense_stage}


@dataclass
class StageRun:
    """One first stage's ranked passages for a query set, with what it cost."""

    indices: np.ndarray  # (queries, depth) passage rows, -1 = empty slot
    scores: np.ndarray
    timings: dict[str, float]
    latency_ms: np.ndarray  # per query of the latency sample
    cache_hit: bool


def first_stage_nodes(cfg: DictConfig) -> list[tuple[str, DictConfig]]:
    """(config key, node) of each first stage the retriever config names."""
    name = cfg.retriever.get("name")
    if name in FIRST_STAGES:
        return [("retriever", cfg.retriever)]
    if name == "hybrid":  # several first stages, fused (fusion/)
        from retrieval_lab.fusion import hybrid_nodes

        return hybrid_nodes(cfg.retriever, FIRST_STAGES)
    raise ConfigError("retriever.name", f"unknown retriever '{name}'",
                      f"use one of {', '.join(FIRST_STAGES)}")


def make_passages(cfg: DictConfig, corpus: Corpus, cache: Cache, stages: list | None = None) -> Passages:
    """The `passages` stage (chunking/): cached on corpus content, chunker config and tokenizer identity."""
    from retrieval_lab.chunking import build_passages, chunker_config

    node = cfg.get("chunker") or {"name": "none"}
    _, config = chunker_config(node)
    tokens = embedder_tokens(stages or []) if config.tokenizer == "embedder" else None
    return build_passages(node, corpus, cache, tokens)


def embedder_tokens(stages: list) -> Any:
    """The first dense stage's tokenizer as a token counter (for `chunker.tokenizer: embedder`), else None."""
    from retrieval_lab.chunking.tokens import from_hf

    for _, stage in stages:
        if hasattr(stage, "embedder_identity"):
            tokenizer = stage.tokenizer  # not stage.embedder.tokenizer, which loads the model
            if tokenizer is not None:
                return from_hf(tokenizer)
    return None


def aggregation(cfg: DictConfig) -> str:
    """`chunker.aggregate`: how passage scores become document scores (validated with the chunker config)."""
    from retrieval_lab.chunking import chunker_config

    return chunker_config(cfg.get("chunker") or {"name": "none"})[1].aggregate


def run_first_stage(stage: FirstStage, passages: Passages, queries: Queries, depth: int,
                    cache: Cache) -> StageRun:
    """Search every query (cached on stage identity, passages, queries and depth)."""
    inputs = {"stage": stage.identity, "passages": passages.fingerprint, "queries": queries.fingerprint,
              "depth": depth, "latency_sample": LATENCY_SAMPLE}

    def compute():
        t0 = time.perf_counter()
        stage.index(passages)
        index_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        indices, scores = stage.search(queries.texts, depth)
        search_s = time.perf_counter() - t0
        latency = []
        for text in queries.texts[:LATENCY_SAMPLE]:
            t1 = time.perf_counter()
            stage.search([text], depth)
            latency.append((time.perf_counter() - t1) * 1000)
        if (indices < 0).all():
            raise LabError(f"retriever {stage.identity.get('name', '?')} returned nothing for all "
                           f"{len(queries)} queries over {len(passages)} passages: the index is empty or the "
                           "tokenizer removes every term")
        timings = {"index_seconds": index_s, "queries_per_second": len(queries) / max(search_s, 1e-9)}
        timings.update(getattr(stage, "last_index_stats", {}))
        return ({"indices": indices, "scores": scores, "latency_ms": np.array(latency)}, None, timings)

    entry = cache.get_or_compute("first_stage_runs", inputs, compute)
    return StageRun(np.asarray(entry.arrays["indices"]), np.asarray(entry.arrays["scores"]), entry.meta,
                    np.asarray(entry.arrays["latency_ms"]), entry.hit)


def to_run(stage_run: StageRun, passages: Passages, query_ids: list[str]) -> Run:
    return Run.from_arrays(query_ids, passages.ids, stage_run.indices, stage_run.scores)


def to_documents(run: Run, passages: Passages, k: int, aggregate: str = "max") -> Run:
    """Passage run -> document run, each document listed once (the last step, after fusion and rerank).

    `max`: a document's score is its best retrieved passage's (MaxP); `sum`: the sum of its retrieved passages'
    scores (SumP, over the passages the first stage returned); `first`: its first chunk's score (FirstP; documents
    whose first chunk was not retrieved are left out). Ties keep the passage ranking's order.
    """
    from retrieval_lab.chunking import aggregate_documents

    return Run({qid: aggregate_documents(hits, passages, k, aggregate) for qid, hits in run.items()})


def drop_identical(run: Run, k: int) -> Run:
    """BEIR/MTEB `ignore_identical_ids`: a query never retrieves itself (ArguAna queries are corpus documents)."""
    return Run({q: [(d, s) for d, s in hits if d != q][:k] for q, hits in run.items()})


class Retriever:
    """A configured pipeline over one corpus: `retrieve` for query sets, `search` for one query."""

    def __init__(self, cfg: DictConfig, corpus: Corpus, cache: Cache | None = None):
        self.cfg = cfg
        self.corpus = corpus
        self.cache = cache or cache_from_config(cfg)
        self.stages = [(key, FIRST_STAGES[node.name](node, cfg, self.cache, key))
                       for key, node in first_stage_nodes(cfg)]
        self.passages = make_passages(cfg, corpus, self.cache, self.stages)
        self.aggregate = aggregation(cfg)
        self.passage_run: Run | None = None  # the last passage-level run, before aggregation (span metrics)
        self.ignore_identical_ids = bool(cfg.dataset.get("ignore_identical_ids", False))
        self._indexed = False
        from retrieval_lab.fusion import hybrid_settings
        from retrieval_lab.rerank import RerankStage

        # hybrid: fusion settings and the depth each input retrieves (null: the final depth)
        self.fusion, self.first_stage_depth = hybrid_settings(cfg.retriever, len(self.stages))
        self.reranker = RerankStage(cfg, self.cache)
        self.first_stage_run: Run | None = None  # fused passage run before reranking (recall ceiling)

    def retrieve(self, queries: Queries, depth: int) -> tuple[Run, dict[str, float]]:
        """Documents ranked per query (at most `depth`), and the stage timings."""
        extra = 1 if self.ignore_identical_ids else 0
        timings: dict[str, float] = {}
        latency = np.zeros(min(len(queries), LATENCY_SAMPLE))
        runs = []
        for key, stage in self.stages:
            stage_run = self.run_stage(stage, queries, (self.first_stage_depth or depth) + extra)
            label = key.rsplit(".", 1)[-1] if key.startswith("retriever.inputs.") else \
                key.replace("retriever.", "").replace("retriever", stage.identity.get("name", "stage"))
            timings.update({f"{label}_{name}": value for name, value in stage_run.timings.items()})
            timings[f"{label}_cache_hit"] = float(stage_run.cache_hit)
            latency += stage_run.latency_ms
            runs.append(to_run(stage_run, self.passages, queries.ids))
        run = fuse(runs, self.fusion) if self.fusion else runs[0]
        self.first_stage_run = run
        if self.reranker.active:
            run, rerank_timings = self.reranker.apply(run, queries, self.passages)
            timings.update(rerank_timings)
        self.passage_run = run
        docs = to_documents(run, self.passages, depth + extra, self.aggregate)
        if self.ignore_identical_ids:
            docs = drop_identical(docs, depth)
        timings["index_seconds"] = sum(v for k, v in timings.items() if k.endswith("_index_seconds"))
        timings["query_p50_ms"] = float(np.percentile(latency, 50))
        timings["query_p95_ms"] = float(np.percentile(latency, 95))
        timings["queries_per_second"] = 1000.0 / max(float(latency.mean()), 1e-9)
        return docs, timings

    def run_stage(self, stage: FirstStage, queries: Queries, depth: int) -> StageRun:
        """A first stage's passages, deep enough that every query yields `depth` distinct documents (doubling)."""
        from retrieval_lab.chunking import documents_filled, passage_depth

        k = passage_depth(self.passages, len(self.corpus), depth)
        while True:
            stage_run = run_first_stage(stage, self.passages, queries, k, self.cache)
            if k >= len(self.passages) or documents_filled(stage_run.indices, self.passages, depth, self.aggregate):
                return stage_run
            k = min(len(self.passages), k * 2)

    def search(self, text: str, k: int = 10) -> list[dict[str, Any]]:
        """Top-k documents for one query: id, score, title and the best matching passage text."""
        if not self._indexed:
            for _, stage in self.stages:
                stage.index(self.passages)
            self._indexed = True
        from retrieval_lab.chunking import passage_depth

        runs = []
        for _, stage in self.stages:
            indices, scores = stage.search([text], passage_depth(self.passages, len(self.corpus),
                                                                 max(k, self.first_stage_depth or 0)))
            runs.append(Run.from_arrays(["q"], self.passages.ids, indices, scores))
        run = fuse(runs, self.fusion) if self.fusion else runs[0]
        if self.reranker.active:
            run, _ = self.reranker.apply(run, Queries(["q"], [text]), self.passages)
        row_of = self.passages.row_of()
        best_passage: dict[str, str] = {}
        for pid, _ in run["q"]:
            best_passage.setdefault(self.passages.doc_ids[row_of[pid]], pid)
        docs = to_documents(run, self.passages, k, self.aggregate)["q"]
        doc_row = self.corpus.index_of()
        return [{"doc_id": d, "score": s, "title": self.corpus.titles[doc_row[d]],
                 "passage": self.passages.texts[row_of[best_passage[d]]]} for d, s in docs]


def cache_from_config(cfg: DictConfig) -> Cache:
    node = cfg.get("cache") or {}
    return Cache(node.get("dir"), enabled=bool(node.get("enabled", True)))


@dataclass
class EvalSettings:
    metrics: list[str] = field(default_factory=lambda: list(METRICS))
    k: list[int] = field(default_factory=lambda: [1, 3, 5, 10, 100])
    depth: int = 100


def eval_settings(cfg: DictConfig) -> EvalSettings:
    from retrieval_lab.config import typed

    settings = typed(EvalSettings, cfg.get("eval") or {}, "eval")
    unknown = [m for m in settings.metrics if m not in METRICS]
    if unknown:
        raise ConfigError("eval.metrics", f"unknown metric(s) {unknown}", f"use any of {', '.join(METRICS)}")
    if not settings.k or any(k <= 0 for k in settings.k):
        raise ConfigError("eval.k", f"every cutoff must be a positive integer, got {settings.k}")
    if settings.depth < max(settings.k):
        raise ConfigError("eval.depth", f"{settings.depth} is below the largest cutoff {max(settings.k)}",
                          f"set eval.depth >= {max(settings.k)}")
    return settings


def validate(cfg: DictConfig) -> None:
    """Check the whole config before any work: every stage builds its typed config (no data is loaded)."""
    eval_settings(cfg)
    aggregation(cfg)  # the chunker config: overlap >= size, size <= 0, unknown tokenizer, ...
    nodes = first_stage_nodes(cfg)
    for key, node in nodes:
        FIRST_STAGES[node.name](node, cfg, Cache(enabled=False), key)
    from retrieval_lab.fusion import hybrid_settings
    from retrieval_lab.rerank import reranker_config

    hybrid_settings(cfg.retriever, len(nodes))
    reranker_config(cfg.get("reranker") or {"name": "none"})
    split = cfg.dataset.get("split")
    if not split:
        raise ConfigError("dataset.split", "missing", "set dataset.split=test (or train, dev)")


@dataclass
class Outcome:
    dataset: Dataset
    run: Run
    evaluation: Evaluation
    timings: dict[str, float]
    extra_metrics: dict[str, float] = field(default_factory=dict)


def run_experiment(cfg: DictConfig, cache: Cache | None = None, dataset: Dataset | None = None) -> Outcome:
    """Load the dataset (unless given, as sweeps do), build the retriever, retrieve every query and evaluate."""
    validate(cfg)
    settings = eval_settings(cfg)
    dataset = dataset if dataset is not None else dataset_from_config(cfg.dataset)
    retriever = Retriever(cfg, dataset.corpus, cache)
    from retrieval_lab.training.registry import check_config_models

    check_config_models(cfg, dataset.name, dataset.split, dataset.queries.ids)  # LeakageError: trained on these
    run, timings = retriever.retrieve(dataset.queries, settings.depth)
    evaluation = evaluate(run, dataset.qrels, settings.metrics, settings.k)
    extra = chunk_metrics(retriever, dataset)
    if retriever.reranker.active:  # what the first stage handed the reranker: its recall@N is the ceiling
        extra.update(retriever.reranker.ceiling(
            retriever.first_stage_run, retriever.passages, dataset.qrels,
            lambda r, passages, k: to_documents(r, passages, k, retriever.aggregate)))
    return Outcome(dataset, run, evaluation, timings, extra)


def chunk_metrics(retriever: Retriever, dataset: Dataset) -> dict[str, float]:
    """Chunk statistics and, where the dataset has span gold (SciFact rationales), span-level metrics."""
    from retrieval_lab.chunking import chunk_stats
    from retrieval_lab.evaluate.spans import span_metrics

    out = chunk_stats(retriever.passages, len(dataset.corpus))
    out.update(truncation_stats(retriever))
    if retriever.passage_run is not None:
        out.update(span_metrics(retriever.passage_run, retriever.passages, dataset))
    return out


def truncation_stats(retriever: Retriever) -> dict[str, float]:
    """Chunks longer than a dense stage's embedder max tokens (counted with its tokenizer; a warning if any)."""
    from retrieval_lab.chunking import truncated_chunks

    out = {}
    for _, stage in retriever.stages:
        identity = getattr(stage, "embedder_identity", None)
        max_tokens = identity.get("max_tokens") if isinstance(identity, dict) else None
        if max_tokens:
            tokens = embedder_tokens([(None, stage)])
            if tokens is not None:
                out["chunks_truncated"] = float(truncated_chunks(retriever.passages, tokens, int(max_tokens)))
    return out
