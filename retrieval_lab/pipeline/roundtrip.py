"""One pipeline over a BEIR dataset and over the same corpus imported from a folder of documents
(`retrieval_lab.data.roundtrip` writes it): both runs' metrics, their difference, and which formats a difference
comes from.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from retrieval_lab.config import compose_config
from retrieval_lab.data.roundtrip import FORMATS, doc_id_of, folder_overrides
from retrieval_lab.pipeline.experiment import run_experiment
from retrieval_lab.types import Corpus

METRICS = ("ndcg_at_10", "recall_at_100")


def compare_runs(beir_dataset, folder_dataset, config: list[str], base: list[str], folder: Path,
                 questions: Path, paths: dict[str, str]) -> dict:
    """Both paths' metrics for one retriever configuration, their differences, and where the per-query nDCG@10
    differs: counts of those queries by the formats of their relevant documents."""
    result = {}
    per_query = {}
    for label, overrides, dataset in (("beir", base, beir_dataset),
                                      ("folder", folder_overrides(base, folder, questions), folder_dataset)):
        start = time.perf_counter()
        outcome = run_experiment(compose_config([*overrides, *config]), dataset=dataset)
        means = outcome.evaluation.means
        result[label] = {"queries": len(outcome.evaluation.query_ids), "seconds": time.perf_counter() - start,
                         **{m: means[m] for m in METRICS}}
        per_query[label] = dict(zip(outcome.evaluation.query_ids, outcome.evaluation.per_query["ndcg_at_10"]))
    result["difference"] = {m: result["folder"][m] - result["beir"][m] for m in METRICS}
    changed = [q for q in per_query["beir"] if abs(per_query["beir"][q] - per_query["folder"].get(q, 0.0)) > 1e-9]
    formats: Counter = Counter()
    for q in changed:
        formats.update(sorted({paths[d].split("/")[0] for d in beir_dataset.qrels[q] if d in paths}))
    result["queries_ndcg_changed"] = len(changed)
    result["changed_by_relevant_format"] = dict(formats)
    return result


def attribute(beir_dataset, folder_dataset, config: list[str], base: list[str], folder: Path, questions: Path,
              paths: dict[str, str], folder_ndcg: float) -> dict:
    """Where a difference comes from: the folder path run again with one format's documents given back their BEIR
    title and text (everything else as imported); the nDCG@10 change that undoing each format brings. "all" gives
    every document back its BEIR title and text: what still differs then comes from the documents' order alone
    (the folder corpus is sorted by path), which decides which passages share an encoding batch."""
    beir_row = beir_dataset.corpus.index_of()
    corpus = folder_dataset.corpus
    gain = {}
    for fmt in (*FORMATS, "all"):
        titles, texts = list(corpus.titles), list(corpus.texts)
        for i, path in enumerate(corpus.ids):
            if fmt in ("all", path.split("/")[0]):
                row = beir_row[doc_id_of(path)]
                titles[i], texts[i] = beir_dataset.corpus.titles[row], beir_dataset.corpus.texts[row]
        undone = replace(folder_dataset, corpus=Corpus(corpus.ids, titles, texts, corpus.metadata))
        outcome = run_experiment(compose_config([*folder_overrides(base, folder, questions), *config]), dataset=undone)
        gain[fmt] = outcome.evaluation.means["ndcg_at_10"] - folder_ndcg
    return gain
