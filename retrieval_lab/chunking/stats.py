"""What the passages look like (chunk counts and token sizes, logged per run) and whether they fit an embedder,
with the fix that fits the chunker in use."""
from __future__ import annotations

import logging

import numpy as np

from retrieval_lab.chunking.build import CHUNK_BATCH, SPECIAL_TOKENS
from retrieval_lab.chunking.passages import Passages
from retrieval_lab.chunking.registry import TOKEN_SIZED
from retrieval_lab.chunking.tokens import TokenCounter

log = logging.getLogger("retrieval_lab.chunking")  # the name its warnings have always printed under

SINGLE_CHUNK_WARNING = 0.9  # share of documents in one chunk above which chunkers all look alike


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
