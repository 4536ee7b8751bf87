"""One configuration evaluated: load the dataset, build the retriever, run every query through the chain, score."""
from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import DictConfig

from retrieval_lab.cache import Cache
from retrieval_lab.chunking import Passages, chunk_stats, truncated_chunks
from retrieval_lab.chunking.units import unit_spans_of
from retrieval_lab.data import Dataset, dataset_from_config
from retrieval_lab.data.folder import is_import, skipped_files
from retrieval_lab.evaluate import Evaluation, evaluate
from retrieval_lab.evaluate.judged import pool_metrics
from retrieval_lab.evaluate.spans import span_metrics
from retrieval_lab.pipeline.build import cache_for, embedder_tokens, first_stages, read_config, unused_config_groups
from retrieval_lab.pipeline.checks import case_mismatch, fusion_below_input
from retrieval_lab.pipeline.retriever import Retriever
from retrieval_lab.pipeline.trace import Trace
from retrieval_lab.training.recipes import check_required_models
from retrieval_lab.training.registry import check_config_models
from retrieval_lab.types import Facts, Run


@dataclass
class Outcome:
    dataset: Dataset
    run: Run
    evaluation: Evaluation
    timings: dict[str, float]  # stage costs and latency (end to end: `query_p50_ms`, `query_p95_ms`)
    extra_metrics: dict[str, float] = field(default_factory=dict)
    trace: Trace | None = None
    # metric -> query id -> value, for metrics defined on some queries only (span metrics: the queries with span
    # gold); more per_query.csv columns, blank for the other queries
    extra_per_query: dict[str, dict[str, float]] = field(default_factory=dict)


def run_experiment(cfg: DictConfig, cache: Cache | None = None, dataset: Dataset | None = None) -> Outcome:
    """Load the dataset (unless given, as sweeps do), build the retriever, retrieve every query and evaluate."""
    settings = read_config(cfg)
    cache = cache or cache_for(settings)
    stages = first_stages(settings, cache)  # config errors and missing models surface before the data loads
    check_required_models(cfg, cache.root, unused_config_groups(cfg))  # a model of `requires` not trained yet
    dataset = dataset if dataset is not None else dataset_from_config(cfg.dataset, settings.cache_dir)
    check_config_models(cfg, dataset.name, dataset.split, dataset.queries.ids)  # LeakageError: trained on these
    retriever = Retriever(cfg, dataset.corpus, cache, settings, stages)
    trace = retriever.retrieve(dataset.queries)
    evaluation = evaluate(trace.documents, dataset.qrels, settings.eval.metrics, settings.eval.k)
    timings = {**trace.costs, **trace.latency_metrics()}
    extra = chunk_stats(retriever.passages, len(dataset.corpus))
    if is_import(dataset.path):  # a folder of documents: how many files its import left out, on every run
        extra["import_skipped_files"] = float(len(skipped_files(dataset.path)))
    extra.update(pool_metrics(trace.documents, dataset.queries, dataset.qrels))  # a judged set: its coverage
    facts = [step.facts for step in retriever.chain.first_stages]
    extra.update(truncation_stats(facts, retriever.passages))
    extra.update(case_mismatch(dataset.queries, dataset.corpus, facts))
    if settings.fusion is not None:
        inputs = {step.label: trace.runs[step.label] for step in retriever.chain.first_stages}
        fused = evaluation.means.get("ndcg_at_10")
        if fused is None:  # not among the configured metrics: the check needs it all the same
            fused = evaluate(trace.documents, dataset.qrels, ["ndcg"], [10]).means["ndcg_at_10"]
        extra.update(fusion_below_input(inputs, fused, len(dataset.qrels), lambda run: evaluate(
            retriever.chain.documents.of(run, retriever.passages, 10), dataset.qrels, ["ndcg"], [10]
        ).means["ndcg_at_10"]))
    spans = span_metrics(unit_spans_of(trace.units), dataset)  # the returned units: what a reader gets
    extra.update(spans.means)
    if settings.reranker.active:
        extra.update(rerank_ceiling(trace, retriever, dataset))
    return Outcome(dataset, trace.documents, evaluation, timings, extra, trace, spans.by_query())


def rerank_ceiling(trace: Trace, retriever: Retriever, dataset: Dataset) -> dict[str, float]:
    """What the first stage handed the reranker: the recall of its top N passages' documents (the best any reranker
    of depth N can reach) and its own nDCG@10."""
    n = retriever.settings.reranker.depth
    documents = retriever.chain.documents  # as the evaluated ranking: same aggregation, identical ids dropped
    candidates = trace.candidates
    reachable = documents.of(candidates.truncate(n), retriever.passages, n)
    recall = evaluate(reachable, dataset.qrels, ["recall"], [n]).means[f"recall_at_{n}"]
    first = documents.of(candidates, retriever.passages, 10)
    ndcg = evaluate(first, dataset.qrels, ["ndcg"], [10]).means["ndcg_at_10"]
    return {f"first_stage_recall_at_{n}": recall, "first_stage_ndcg_at_10": ndcg}


def truncation_stats(facts: list[Facts], passages: Passages) -> dict[str, float]:
    """Passages longer than a first stage's declared max tokens (counted with its declared tokenizer; a warning if
    any): `chunks_truncated` is the most any model truncates; with several, `chunks_truncated_<model>` each."""
    counts = {}
    for fact in facts:
        tokens = embedder_tokens([fact]) if fact.max_tokens else None
        if tokens is not None:
            counts[fact.model] = float(truncated_chunks(passages, tokens, int(fact.max_tokens)))
    if not counts:
        return {}
    out = {"chunks_truncated": max(counts.values())}
    if len(counts) > 1:
        out.update({f"chunks_truncated_{name}": n for name, n in counts.items()})
    return out
