"""A real collection cut down for a test: some of its queries over a sample of its documents that holds every
document judged for them, so that a cold cache encodes hundreds of documents instead of thousands."""
from __future__ import annotations

import random
from dataclasses import replace

from retrieval_lab.data.beir import Dataset
from retrieval_lab.types import Corpus, Qrels


def corpus_rows(corpus: Corpus, rows: list[int]) -> Corpus:
    """The documents at `rows`, in that order."""
    return Corpus([corpus.ids[i] for i in rows], [corpus.titles[i] for i in rows], [corpus.texts[i] for i in rows])


def judged_sample(full: Dataset, queries: int, docs: int, seed: int = 0) -> Dataset:
    """`queries` queries drawn with `seed`, their judged documents and random others up to `docs` documents (the
    corpus order kept)."""
    chosen = set(random.Random(seed).sample(sorted(full.queries.ids), queries))
    qrels = Qrels({q: judged for q, judged in full.qrels.items() if q in chosen})
    judged = {d for relevant in qrels.values() for d in relevant}
    if len(judged) > docs:
        raise ValueError(f"{len(judged)} documents are judged for the {queries} queries: more than docs={docs}")
    others = [d for d in full.corpus.ids if d not in judged]
    keep = judged | set(random.Random(seed).sample(others, docs - len(judged)))
    corpus = corpus_rows(full.corpus, [i for i, d in enumerate(full.corpus.ids) if d in keep])
    return replace(full, corpus=corpus, queries=full.queries.subset(chosen), qrels=qrels)
