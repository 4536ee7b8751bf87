"""Cross-encoder scoring with sentence-transformers' `CrossEncoder`: a Hugging Face name, a local folder, or a name
registered by `retrieval-lab train-reranker`. Loading is lazy (factories stay cheap); pairs are scored in batches of
similar length, and only pairs missing from the score cache are computed."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from retrieval_lab.dense.embedders import resolve_model
from retrieval_lab.errors import ModelNotFoundError
from retrieval_lab.paths import cache_root as resolve_cache_root
from retrieval_lab.rerank.scores import ScoreStore, pair_key

log = logging.getLogger(__name__)


class CrossEncoderScorer:
    def __init__(self, model: str, batch_size: int = 32, max_length: int | None = None, threads: int | None = None,
                 cache_root: str | Path | None = None, cache_enabled: bool = True):

        root = resolve_cache_root(cache_root)  # the run's cache.dir: its registered models and its score store
        self.spec = resolve_model(model, root)  # files found and hashed, nothing loaded
        self.batch_size = batch_size
        self.max_length = max_length
        self.threads = threads
        self.identity = {"model": self.spec.identity(), "max_length": max_length}
        self.store = ScoreStore(root, self.identity, enabled=cache_enabled)
        self._model = None
        self.last_stats: dict[str, float] = {}

    @property
    def model(self):
        if self._model is None:
            from sentence_transformers import CrossEncoder

            if self.threads:
                import torch

                torch.set_num_threads(self.threads)
            self._model = CrossEncoder(str(self.spec.path), device="cpu", max_length=self.max_length)
            if self._model.num_labels != 1:
                raise ModelNotFoundError(f"{self.spec.ref} has {self._model.num_labels} output labels; a reranker "
                                         "needs one relevance logit (a CrossEncoder trained with num_labels=1)")
        return self._model

    def predict(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """Raw model scores, batched by length (no cache)."""
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        order = np.argsort([len(q) + len(p) for q, p in pairs], kind="stable")
        scores = self.model.predict([pairs[i] for i in order], batch_size=self.batch_size,
                                    show_progress_bar=False, convert_to_numpy=True)
        out = np.empty(len(pairs), dtype=np.float32)
        out[order] = np.asarray(scores, dtype=np.float32).reshape(-1)
        return out

    def score(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """Scores of (query, passage) pairs, from the cache where present; records what it cost in `last_stats`."""
        keys = [pair_key(q, p) for q, p in pairs]
        cached = self.store.get(keys)
        missing = [i for i, k in enumerate(keys) if k not in cached]
        todo = list(dict.fromkeys(keys[i] for i in missing))
        seconds = 0.0
        if todo:
            first = {}
            for i in missing:
                first.setdefault(keys[i], i)
            t0 = time.perf_counter()
            fresh = self.predict([pairs[first[k]] for k in todo])
            seconds = time.perf_counter() - t0
            computed = dict(zip(todo, fresh.tolist()))
            self.store.put(computed)
            cached.update(computed)
            per_pair = seconds / len(todo)
            self.store.put_meta("seconds_per_pair", per_pair)
        else:
            per_pair = self.store.get_meta("seconds_per_pair") or 0.0
        self.last_stats = {"pairs": float(len(pairs)), "pairs_computed": float(len(todo)),
                           "compute_seconds": seconds, "seconds_per_pair": per_pair}
        return np.array([cached[k] for k in keys], dtype=np.float32)
