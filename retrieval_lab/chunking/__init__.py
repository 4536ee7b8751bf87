"""Chunking: documents -> passages, the units every first stage indexes.

A passage keeps its document id, its chunk index and the character span it covers in the document text
(`doc_text[start:end]` is the chunk's own text; the title, when configured, is prepended only to the indexed
text), so document-level and span-level evaluation both work whatever the chunker. Chunkers are selected by name
from `CHUNKERS` (one file each); `build_passages` is the cached stage.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from retrieval_lab.chunking.base import Chunker, ChunkerConfig, Span
from retrieval_lab.chunking.fixed_tokens import FixedTokensChunker, FixedTokensConfig
from retrieval_lab.chunking.recursive import RecursiveChunker, RecursiveConfig
from retrieval_lab.chunking.semantic import SemanticChunker, SemanticConfig, load_encoder
from retrieval_lab.chunking.sentences import SentencesChunker, SentencesConfig, sentence_spans
from retrieval_lab.chunking.tokens import TokenCounter, load_tokenizer
from retrieval_lab.config import check_choice, to_container, typed
from retrieval_lab.errors import LabError
from retrieval_lab.types import Corpus, _digest

log = logging.getLogger(__name__)

SINGLE_CHUNK_WARNING = 0.9  # share of documents in one chunk above which chunkers all look alike
SPECIAL_TOKENS = 2  # [CLS] and [SEP] (or <s> and </s>) that an encoder adds to every passage
TOKEN_SIZED = ("fixed_tokens", "recursive")  # chunkers whose size is in tokens: it counts the whole indexed text
INDEXED_BUDGET = 1  # version of how a token size is shared between title, special tokens and text (cache key)
CHUNK_BATCH = 4096  # documents chunked and token-counted at a time


class PassageTexts(Sequence):
    """What each passage indexes, made when read from the corpus it points into: its span of the document text,
    the title prepended when configured. Passages never hold a second copy of the corpus (a million SciFact-sized
    documents are 1.5 GB of text)."""

    def __init__(self, corpus: Corpus, rows: np.ndarray, starts: np.ndarray, ends: np.ndarray, title: bool):
        self._titles, self._texts, self._title = corpus.titles, corpus.texts, title
        self._rows, self._starts, self._ends = rows, starts, ends

    def __len__(self) -> int:
        return len(self._rows)

    def _make(self, row: int, start: int, end: int) -> str:
        text = self._texts[row]
        own = text if start == 0 and end == len(text) else text[start:end]
        return with_title(self._titles[row], own) if self._title else own

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self._make(int(self._rows[i]), int(self._starts[i]), int(self._ends[i]))

    def __iter__(self):
        for start in range(0, len(self), 4096):  # plain ints, a block at a time
            stop = start + 4096
            yield from map(self._make, self._rows[start:stop].tolist(), self._starts[start:stop].tolist(),
                           self._ends[start:stop].tolist())

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and len(other) == len(self) and all(a == b for a, b in zip(self, other))

    __hash__ = None


@dataclass(frozen=True)
class Passages:
    ids: list[str]  # passage id: the doc id for whole documents, "<doc id>#<index>" for chunks
    doc_ids: list[str]
    texts: Sequence[str]  # what gets indexed (the title prepended when configured): a PassageTexts view or a list
    starts: np.ndarray  # character span in the document text: doc_text[start:end] is the chunk's own text
    ends: np.ndarray
    chunk_index: np.ndarray | None = None  # position of the chunk within its document (0 = first)
    n_tokens: np.ndarray | None = None  # tokens of the span text under the chunker's tokenizer
    meta: dict = field(default_factory=dict)  # chunker name, timings

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def fingerprint(self) -> str:
        """Content hash of ids and indexed texts (computed once per Passages object)."""
        digest = self.__dict__.get("_fingerprint")
        if digest is None:
            digest = _digest(x for pair in zip(self.ids, self.texts) for x in pair)
            object.__setattr__(self, "_fingerprint", digest)
        return digest

    @property
    def is_whole_documents(self) -> bool:
        return self.ids == self.doc_ids

    def row_of(self) -> dict[str, int]:
        """passage id -> row (built once per Passages object)."""
        rows = self.__dict__.get("_row_of")
        if rows is None:
            rows = {pid: i for i, pid in enumerate(self.ids)}
            object.__setattr__(self, "_row_of", rows)
        return rows

    def doc_id_array(self) -> np.ndarray:
        """`doc_ids` as a numpy array (built once per Passages object: a million ids take 0.1 s, per query)."""
        array = self.__dict__.get("_doc_id_array")
        if array is None:
            array = np.asarray(self.doc_ids)
            object.__setattr__(self, "_doc_id_array", array)
        return array

    def first_chunk(self, row: int) -> bool:
        return self.chunk_index is None or int(self.chunk_index[row]) == 0


def with_title(title: str, text: str) -> str:
    return f"{title} {text}".strip() if title else text


def whole_documents(corpus: Corpus, title: bool = True) -> Passages:
    """One passage per document (chunker `none`): title and text indexed together by default."""
    n = len(corpus)
    ends = np.fromiter(map(len, corpus.texts), dtype=np.int64, count=n)
    return Passages(ids=list(corpus.ids), doc_ids=list(corpus.ids),
                    texts=PassageTexts(corpus, np.arange(n, dtype=np.int64), np.zeros(n, dtype=np.int64), ends, title),
                    starts=np.zeros(n, dtype=np.int64), ends=ends,
                    chunk_index=np.zeros(n, dtype=np.int64), meta={"chunker": "none"})


@dataclass
class NoneConfig(ChunkerConfig):
    pass


class WholeDocument:
    def __init__(self, config, tokens=None, encoder=None):
        pass

    def chunk(self, text: str) -> list[Span]:
        return [(0, len(text))]


# name -> (typed config, chunker class(config, token counter, encoder))
CHUNKERS: dict[str, tuple[type[ChunkerConfig], type]] = {
    "none": (NoneConfig, WholeDocument),
    "fixed_tokens": (FixedTokensConfig, FixedTokensChunker),
    "sentences": (SentencesConfig, SentencesChunker),
    "recursive": (RecursiveConfig, RecursiveChunker),
    "semantic": (SemanticConfig, SemanticChunker),
}


def chunker_config(node: Any, prefix: str = "chunker") -> tuple[str, ChunkerConfig]:
    """(name, validated typed config) of the `chunker` node: every error names its key, before any work."""
    data = to_container(node) or {}
    name = data.get("name", "none")
    check_choice(f"{prefix}.name", name, CHUNKERS)
    config = typed(CHUNKERS[name][0], data, prefix, ignore=("name",))
    config.validate(prefix)
    return name, config


def chunk_spans(name: str, config: ChunkerConfig, texts: list[str], tokens: TokenCounter,
                encoder=None, titles: list[str] | None = None) -> list[list[Span]]:
    """Spans per document (no caching): the chunker applied to each text. A chunker sized in tokens (TOKEN_SIZED)
    given `titles` sizes each document's chunks so the indexed text fits `size` (`indexed_budget`)."""
    if name not in TOKEN_SIZED or titles is None:
        chunker: Chunker = CHUNKERS[name][1](config, tokens, encoder)
        return [chunker.chunk(text) if text.strip() else [] for text in texts]
    reserves = tokens.count_batch([t or "" for t in titles]) if config.title else [0] * len(texts)
    by_size: dict[int, Chunker] = {}
    out = []
    for text, title_tokens in zip(texts, reserves):
        size = indexed_budget(config, int(title_tokens))
        if size not in by_size:
            fitted = replace(config, size=size, **({"overlap": min(config.overlap, size // 8)}
                                                   if hasattr(config, "overlap") and config.overlap >= size else {}))
            by_size[size] = CHUNKERS[name][1](fitted, tokens, encoder)
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


def aggregate_documents(hits: list[tuple[str, float]], passages: Passages, k: int,
                        mode: str = "max") -> list[tuple[str, float]]:
    """One query's ranked passages -> at most k (doc id, score), each document once (see pipeline.chain.DocumentsStep).

    `sum` adds the scores of the passages in `hits` only (those retrieved within the stage's depth): a document's
    passages below that depth add nothing, so sums compare documents by their retrieved evidence."""
    rows = passages.row_of()
    if mode == "sum":
        totals: dict[str, float] = {}
        for pid, score in hits:
            doc = passages.doc_ids[rows[pid]]
            totals[doc] = totals.get(doc, 0.0) + score
        order = {doc: i for i, doc in enumerate(totals)}  # ties keep first-appearance order
        return sorted(totals.items(), key=lambda item: (-item[1], order[item[0]]))[:k]
    if mode not in ("max", "first"):
        raise ValueError(f"unknown aggregation {mode!r}")
    seen, docs = set(), []
    for pid, score in hits:
        row = rows[pid]
        if mode == "first" and not passages.first_chunk(row):
            continue
        doc = passages.doc_ids[row]
        if doc not in seen:
            seen.add(doc)
            docs.append((doc, score))
            if len(docs) == k:
                break
    return docs


def unfilled_rows(indices: np.ndarray, passages: Passages, k: int, mode: str = "max") -> list[int]:
    """Rows (queries) whose passages yield fewer than k distinct documents for `mode` although the stage returned
    a full list (a list cut short means the stage ran out of matches: more depth adds nothing)."""
    if passages.is_whole_documents:  # every row its own document: a full list always fills k
        return []
    depth = indices.shape[1] if indices.ndim == 2 else 0
    doc_ids = passages.doc_id_array()
    out = []
    for i, row in enumerate(indices):
        valid = row[row >= 0]
        if len(valid) < depth:
            continue
        if mode == "first":
            valid = valid[np.array([passages.first_chunk(int(r)) for r in valid], dtype=bool)]
        if len(set(doc_ids[valid].tolist())) < k:
            out.append(i)
    return out


def passage_depth(passages: Passages, n_docs: int, k: int) -> int:
    """First guess of how many passages fill k documents: k times twice the mean chunks per document."""
    if passages.is_whole_documents:
        return k
    per_doc = len(passages) / max(n_docs, 1)
    return int(min(len(passages), max(k, np.ceil(k * per_doc * 2))))


def chunk_stats(passages: Passages, n_docs: int) -> dict[str, float]:
    """Number of chunks, mean / p95 tokens, share of documents in one chunk; warns when chunkers would look alike."""
    stats = {"chunks": float(len(passages))}
    if passages.n_tokens is not None and len(passages.n_tokens):
        stats["chunk_tokens_mean"] = float(np.mean(passages.n_tokens))
        stats["chunk_tokens_p95"] = float(np.percentile(passages.n_tokens, 95))
    per_doc = np.unique(np.asarray(passages.doc_ids), return_counts=True)[1]
    single = float((per_doc == 1).sum()) / max(n_docs, 1)
    stats["docs_single_chunk_share"] = single
    stats["chunks_per_doc_max"] = float(per_doc.max()) if len(per_doc) else 0.0
    if "chunk_seconds" in passages.meta:  # the time it took when computed (a cache hit replays it)
        stats["chunk_seconds"] = float(passages.meta["chunk_seconds"])
        stats["chunk_cache_hit"] = float(bool(passages.meta.get("cache_hit")))
    if passages.meta.get("chunker", "none") != "none" and single >= SINGLE_CHUNK_WARNING:
        log.warning("%.0f%% of documents fit in one chunk with chunker %s: chunkers will all look alike on this "
                    "corpus; use smaller chunks to compare them", 100 * single, passages.meta.get("chunker"))
    return stats


def truncated_chunks(passages: Passages, tokens: TokenCounter, max_tokens: int,
                     special_tokens: int = SPECIAL_TOKENS) -> int:
    """How many indexed texts exceed an embedder's `max_tokens` (they are truncated when encoded); warns if any,
    with the fix that fits the chunker in use (`truncation_fix`)."""
    texts = passages.texts
    counts = np.array([c for first in range(0, len(texts), CHUNK_BATCH)
                       for c in tokens.count_batch(texts[first:first + CHUNK_BATCH])]) + special_tokens
    n = int((counts > max_tokens).sum())
    if n:
        log.warning("%d of %d passages (%.1f%%) exceed the embedder's %d tokens (title and %d special tokens "
                    "included) and will be truncated: %s", n, len(passages), 100 * n / len(passages), max_tokens,
                    special_tokens, truncation_fix(passages.meta, max_tokens))
    return n


def truncation_fix(meta: dict, max_tokens: int) -> str:
    """What to change so passages fit an embedder of `max_tokens`, for the chunker that made them (never the advice
    to use the chunker already in use)."""
    name, size = meta.get("chunker", "none"), meta.get("size")
    if name == "none":
        return (f"whole documents are indexed (chunker=none); chunk them to fit, e.g. chunker=fixed_tokens "
                f"chunker.size={max_tokens}")
    if name in TOKEN_SIZED and size is not None and size > max_tokens:
        return (f"chunker.size={size} is above what the embedder reads; set chunker.size={max_tokens} (a {name} size "
                "counts the title and special tokens too)")
    if name in TOKEN_SIZED:
        return (f"chunker.size={size} fits, so the rest is long titles (at most half of a chunk is kept for the "
                f"title) or {meta.get('tokenizer', 'chunker')} tokens that differ from the embedder's; set "
                "chunker.tokenizer=embedder, or chunker.title=false")
    return (f"chunker={name} sizes chunks in {'sentences' if name == 'sentences' else 'similar sentences'}"
            + (f" (chunker.size={size})" if size is not None else "")
            + f", so long ones overflow; lower chunker.size, or cut by tokens: chunker=fixed_tokens "
            f"chunker.size={max_tokens}")


__all__ = ["Passages", "with_title", "whole_documents", "CHUNKERS", "chunker_config", "chunk_spans",
           "build_passages", "chunk_stats", "aggregate_documents", "unfilled_rows", "chunk_corpus", "passage_depth", "truncated_chunks", "truncation_fix", "indexed_budget",
           "sentence_spans", "load_tokenizer"]
