"""The `passages` stage: a corpus chunked by the configured chunker, cached on corpus content, chunker config and
tokenizer identity; token-sized chunks sized so that their indexed text fits `size`."""
from __future__ import annotations

import time
from dataclasses import asdict, replace
from typing import Any

import numpy as np

from retrieval_lab.chunking.base import Chunker, ChunkerConfig, Span
from retrieval_lab.chunking.passages import Passages, PassageTexts, whole_documents
from retrieval_lab.chunking.registry import CHUNKERS, TOKEN_SIZED, chunker_config
from retrieval_lab.chunking.semantic import load_encoder
from retrieval_lab.chunking.tokens import TokenCounter, load_tokenizer
from retrieval_lab.errors import LabError
from retrieval_lab.types import Corpus

SPECIAL_TOKENS = 2  # [CLS] and [SEP] (or <s> and </s>) that an encoder adds to every passage
INDEXED_BUDGET = 1  # version of how a token size is shared between title, special tokens and text (cache key)
CHUNK_BATCH = 4096  # documents chunked and token-counted at a time


def chunk_spans(name: str, config: ChunkerConfig, texts: list[str], tokens: TokenCounter,
                encoder=None, titles: list[str] | None = None) -> list[list[Span]]:
    """Spans per document (no caching): the chunker applied to each text. A chunker sized in tokens (TOKEN_SIZED)
    given `titles` sizes each document's chunks so the indexed text fits `size` (`indexed_budget`)."""
    if name not in TOKEN_SIZED or titles is None:
        chunker: Chunker = CHUNKERS[name](config, tokens, encoder)
        return [chunker.chunk(text) if text.strip() else [] for text in texts]
    reserves = tokens.count_batch([t or "" for t in titles]) if config.title else [0] * len(texts)
    by_size: dict[int, Chunker] = {}
    out = []
    for text, title_tokens in zip(texts, reserves):
        size = indexed_budget(config, int(title_tokens))
        if size not in by_size:
            fitted = replace(config, size=size, **({"overlap": min(config.overlap, size // 8)}
                                                   if hasattr(config, "overlap") and config.overlap >= size else {}))
            by_size[size] = CHUNKERS[name](fitted, tokens, encoder)
        out.append(by_size[size].chunk(text) if text.strip() else [])
    return out


def indexed_budget(config: ChunkerConfig, title_tokens: int) -> int:
    """Tokens of a document's own text per chunk, so that its indexed text (the title when `title` is on, the chunk,
    and an encoder's SPECIAL_TOKENS) holds at most `size` tokens: a chunk of size 128 then fits a 128-token encoder
    such as MiniLM-L3, where 128 tokens of text plus the title overflowed 98% of the passages. The reserve is at
    most half the size (a longer title overflows, and the truncation check says so)."""
    reserve = SPECIAL_TOKENS + (title_tokens if config.title else 0)
    return max(config.size - min(reserve, config.size // 2), 1)


def build_passages(node: Any, corpus: Corpus, cache=None, tokens: TokenCounter | None = None) -> Passages:
    """`chunk_corpus` for a `chunker` config node."""
    return chunk_corpus(*chunker_config(node), corpus, cache, tokens)


def chunk_corpus(name: str, config: ChunkerConfig, corpus: Corpus, cache=None,
                 tokens: TokenCounter | None = None) -> Passages:
    """The `passages` stage: chunk the corpus (cached on corpus content, chunker config and tokenizer identity).

    `tokens` overrides the configured tokenizer (the pipeline passes the embedder's for `tokenizer: embedder`).
    A document whose text is empty keeps one empty passage (its title is still indexed), so no document vanishes.
    """
    if name == "none" and tokens is None and cache is None:
        return whole_documents(corpus, title=config.title)
    tokens = tokens or load_tokenizer(config.tokenizer)
    shape = {k: v for k, v in asdict(config).items() if k not in ("title", "tokenizer")}
    encoder = None
    inputs = {"corpus": corpus.fingerprint, "chunker": name, "config": shape, "tokenizer": tokens.identity}
    if name in TOKEN_SIZED:  # the title's length shapes the chunks
        inputs.update(title=config.title, budget=INDEXED_BUDGET)
    if name == "semantic":
        encoder = load_encoder(config.encoder)
        inputs["encoder"] = encoder.identity

    def compute():
        seconds = 0.0
        rows, starts, ends, index, n_tokens = [], [], [], [], []
        for first in range(0, len(corpus), CHUNK_BATCH):  # a batch at a time: token offsets of a whole corpus
            texts = corpus.texts[first:first + CHUNK_BATCH]  # would not fit in memory at a million documents
            t0 = time.perf_counter()
            spans = chunk_spans(name, config, texts, tokens, encoder, corpus.titles[first:first + CHUNK_BATCH])
            seconds += time.perf_counter() - t0
            batch_rows = []
            for row, doc_spans in enumerate(spans, start=first):
                for i, (s, e) in enumerate(doc_spans or [(0, 0)]):
                    batch_rows.append(row)
                    starts.append(s)
                    ends.append(e)
                    index.append(i)
            done = len(rows)
            n_tokens.extend(tokens.count_batch([corpus.texts[r][s:e] for r, s, e in
                                                zip(batch_rows, starts[done:], ends[done:])]))
            rows.extend(batch_rows)
        arrays = {"doc_rows": np.array(rows, dtype=np.int64), "starts": np.array(starts, dtype=np.int64),
                  "ends": np.array(ends, dtype=np.int64), "chunk_index": np.array(index, dtype=np.int64),
                  "n_tokens": np.array(n_tokens, dtype=np.int64)}
        return arrays, None, {"chunk_seconds": seconds}

    if cache is None:
        arrays, _, meta = compute()
        hit = False
    else:
        entry = cache.get_or_compute("passages", inputs, compute)
        arrays, meta, hit = entry.arrays, entry.meta, entry.hit
    rows = np.asarray(arrays["doc_rows"])
    starts, ends = np.asarray(arrays["starts"]), np.asarray(arrays["ends"])
    chunk_index = np.asarray(arrays["chunk_index"])
    if len(rows) == 0:
        raise LabError(f"chunker {name} produced no passages for {len(corpus)} documents")
    doc_ids = [corpus.ids[r] for r in rows.tolist()]
    texts = PassageTexts(corpus, rows, starts, ends, config.title)
    ids = list(doc_ids) if name == "none" else [f"{d}#{i}" for d, i in zip(doc_ids, chunk_index.tolist())]
    return Passages(ids=ids, doc_ids=doc_ids, texts=texts, starts=starts, ends=ends, chunk_index=chunk_index,
                    n_tokens=np.asarray(arrays["n_tokens"]),
                    meta={"chunker": name, "tokenizer": tokens.name, "chunk_seconds": meta.get("chunk_seconds", 0.0),
                          "cache_hit": hit, "size": getattr(config, "size", None), "title": config.title})
