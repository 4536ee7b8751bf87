"""Cross-encoder score cache: one SQLite file per model identity, keyed by a hash of (query text, passage text).

Keyed on text, not ids or ranks, so a score computed once is reused by every first stage, fusion setting, depth and
sweep job that puts the same pair in front of the same model. SQLite serializes concurrent writers (joblib jobs).
"""
from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path
from typing import Callable

import numpy as np

from retrieval_lab.cache import content_key

CHUNK = 900  # SQLite's default limit on bound parameters is 999


def pair_key(query: str, passage: str) -> bytes:
    return hashlib.sha256(query.encode("utf-8") + b"\x00" + passage.encode("utf-8")).digest()[:20]


class ScoreStore:
    def __init__(self, root: str | Path, identity: dict, enabled: bool = True):
        self.enabled = enabled
        self.key = content_key("rerank_scores", identity)
        self.path = Path(root) / "rerank_scores" / f"{self.key[:32]}.sqlite"
        self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=120)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS scores (pair BLOB PRIMARY KEY, score REAL NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value REAL NOT NULL)")
            self._db.commit()
        return self._db

    def get(self, keys: list[bytes]) -> dict[bytes, float]:
        if not self.enabled or not keys:
            return {}
        out: dict[bytes, float] = {}
        db = self._conn()
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), CHUNK):
            part = unique[start:start + CHUNK]
            rows = db.execute(f"SELECT pair, score FROM scores WHERE pair IN ({','.join('?' * len(part))})", part)
            out.update({bytes(k): float(v) for k, v in rows})
        return out

    def put(self, scores: dict[bytes, float]) -> None:
        if not self.enabled or not scores:
            return
        db = self._conn()
        db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?)", list(scores.items()))
        db.commit()

    def get_meta(self, key: str) -> float | None:
        if not self.enabled:
            return None
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else float(row[0])

    def put_meta(self, key: str, value: float) -> None:
        if self.enabled:
            self._conn().execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
            self._conn().commit()

    def __len__(self) -> int:
        if not self.enabled or not self.path.exists():
            return 0
        return int(self._conn().execute("SELECT COUNT(*) FROM scores").fetchone()[0])

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def cached_scores(store: "ScoreStore", pairs: list[tuple[str, str]],
                  predict: Callable[[list[tuple[str, str]]], np.ndarray]) -> tuple[np.ndarray, dict[str, float]]:
    """Scores of (query, passage) pairs from `store` where present, else from `predict` (each distinct pair once, then
    stored), with what it cost: pairs, pairs computed, compute seconds and seconds per pair (the last measured one
    when everything came from the store)."""
    keys = [pair_key(q, p) for q, p in pairs]
    cached = store.get(keys)
    first: dict[bytes, int] = {}
    for i, key in enumerate(keys):
        if key not in cached:
            first.setdefault(key, i)
    seconds = 0.0
    if first:
        t0 = time.perf_counter()
        fresh = predict([pairs[i] for i in first.values()])
        seconds = time.perf_counter() - t0
        computed = dict(zip(first, fresh.tolist()))
        store.put(computed)
        cached.update(computed)
        per_pair = seconds / len(first)
        store.put_meta("seconds_per_pair", per_pair)
    else:
        per_pair = store.get_meta("seconds_per_pair") or 0.0
    stats = {"pairs": float(len(pairs)), "pairs_computed": float(len(first)), "compute_seconds": seconds,
             "seconds_per_pair": per_pair}
    return np.array([cached[k] for k in keys], dtype=np.float32), stats
