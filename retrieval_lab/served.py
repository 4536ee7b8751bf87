"""Models served over HTTP (an embedding API, a /rerank API): one JSON POST with the key from an environment
variable, a request timeout, and retries with exponential backoff on 429, 5xx, timeouts and refused connections.

Anything else the server answers (400, 401, 404, a body that is not JSON) is a `ServedModelError` at once, naming
the URL, the status, what the server said and the fix. Used by `dense.backends.openai` and `rerank.http`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from retrieval_lab.errors import ConfigError, LabError

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
MAX_BACKOFF_S = 30.0
BODY_SHOWN = 300  # characters of an error body quoted in messages


class ServedModelError(LabError):
    """A served model's API refused, failed or answered something unusable."""


@dataclass(frozen=True)
class Endpoint:
    """Where a served model lives and how patiently to call it."""

    url: str                      # full URL of the route (base_url + /embeddings or /rerank)
    key: str                      # config key prefix the settings came from (for messages)
    api_key_env: str | None       # environment variable holding the key (sent as a Bearer token); None: no key
    timeout_s: float = 60.0
    max_retries: int = 5
    retry_backoff_s: float = 1.0  # first wait; doubled per retry (with jitter), capped at MAX_BACKOFF_S

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key_env:
            value = os.environ.get(self.api_key_env)
            if not value:
                raise ConfigError(f"{self.key}.api_key_env", f"the environment variable {self.api_key_env} is not "
                                  "set", f"export {self.api_key_env}=<your key>, or set {self.key}.api_key_env=null "
                                  "for a server that takes no key")
            headers["Authorization"] = f"Bearer {value}"
        return headers


_SESSIONS = threading.local()


def _session():
    import requests

    if getattr(_SESSIONS, "session", None) is None:
        _SESSIONS.session = requests.Session()
    return _SESSIONS.session


def _wait(endpoint: Endpoint, attempt: int, retry_after: str | None) -> float:
    if retry_after:
        try:
            return min(float(retry_after), MAX_BACKOFF_S)
        except ValueError:
            pass
    base = endpoint.retry_backoff_s * 2 ** attempt
    return min(base + random.uniform(0, base / 2), MAX_BACKOFF_S)


def _fix_for(status: int, endpoint: Endpoint) -> str:
    if status in (401, 403):
        return (f"check the key in ${endpoint.api_key_env}" if endpoint.api_key_env else
                f"this server needs a key: set {endpoint.key}.api_key_env=<environment variable holding it>")
    if status == 404:
        return f"check {endpoint.key}.base_url (OpenAI-style servers usually end in /v1) and {endpoint.key}.model"
    return f"check {endpoint.key}.model and the other {endpoint.key}.* settings against the server's documentation"


def post_json(endpoint: Endpoint, payload: dict, counters: "Counters | None" = None) -> Any:
    """POST `payload` and return the decoded JSON answer, retrying what a retry can fix."""
    import requests

    headers = endpoint.headers()
    last = ""
    for attempt in range(endpoint.max_retries + 1):
        retry_after = None
        try:
            response = _session().post(endpoint.url, json=payload, headers=headers, timeout=endpoint.timeout_s)
        except requests.Timeout:
            last = f"no answer within {endpoint.timeout_s:g} s ({endpoint.key}.timeout_s)"
        except requests.ConnectionError as exc:
            last = f"cannot connect ({type(exc).__name__})"
        else:
            if response.status_code < 300:
                try:
                    return response.json()
                except ValueError:
                    raise ServedModelError(f"{endpoint.url} answered {response.status_code} with a body that is not "
                                           f"JSON: {response.text[:BODY_SHOWN]!r}\n  fix: check {endpoint.key}."
                                           "base_url points at the API, not at a web page") from None
            body = response.text[:BODY_SHOWN]
            if response.status_code not in RETRY_STATUS:
                raise ServedModelError(f"{endpoint.url} refused the request: HTTP {response.status_code}: {body}\n"
                                       f"  fix: {_fix_for(response.status_code, endpoint)}")
            last = f"HTTP {response.status_code}: {body}"
            retry_after = response.headers.get("Retry-After")
        if attempt == endpoint.max_retries:
            break
        if counters is not None:
            counters.add(retries=1)
        delay = _wait(endpoint, attempt, retry_after)
        log.warning("%s: %s; retry %d of %d in %.1f s", endpoint.url, last, attempt + 1, endpoint.max_retries, delay)
        time.sleep(delay)
    raise ServedModelError(f"{endpoint.url} failed {endpoint.max_retries + 1} times; last: {last}\n  fix: check the "
                           f"server is up at {endpoint.key}.base_url, or allow more with {endpoint.key}.max_retries, "
                           f"{endpoint.key}.timeout_s (a busy server) or fewer {endpoint.key}.concurrency")


class Counters:
    """What a served model's calls cost, counted across threads: requests, retries, billed tokens."""

    def __init__(self):
        self._lock = threading.Lock()
        self.values = {"requests": 0, "retries": 0, "tokens": 0}

    def add(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                self.values[name] += int(amount)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.values)

    def since(self, before: dict[str, int]) -> dict[str, int]:
        now = self.snapshot()
        return {name: now[name] - before.get(name, 0) for name in now}


def usage_tokens(answer: Any) -> int:
    """Tokens the answer says were billed: OpenAI/Jina/infinity `usage`, or Cohere's `meta.billed_units`."""
    if not isinstance(answer, dict):
        return 0
    usage = answer.get("usage") or {}
    if isinstance(usage, dict):
        for key in ("total_tokens", "prompt_tokens"):
            if isinstance(usage.get(key), (int, float)):
                return int(usage[key])
    billed = (answer.get("meta") or {}).get("billed_units") or {}
    if isinstance(billed, dict):
        return int(billed.get("input_tokens") or 0) + int(billed.get("output_tokens") or 0)
    return 0


def cost(tokens: float, price_per_1m_tokens: float | None) -> float:
    return float(tokens) * float(price_per_1m_tokens or 0.0) / 1e6


# Fixed probe texts: what a served model does with them identifies it (its files cannot be hashed). Short, varied.
PROBE_TEXTS = ("The mitochondrion is the powerhouse of the cell.",
               "How do vaccines train the immune system?",
               "Stock prices fell sharply after the announcement.")
PROBE_QUERY = "What produces energy in cells?"
FINGERPRINT_DIMS = 32       # leading components of each probe vector hashed: enough to tell models apart ...
FINGERPRINT_DECIMALS = 2    # ... and coarse enough that float noise between runs of one model rarely flips a digit


def fingerprint(values: np.ndarray, decimals: int = FINGERPRINT_DECIMALS) -> str:
    """sha256 (16 hex digits) of the values rounded to `decimals` (-0.0 folded into 0.0)."""
    rounded = np.round(np.asarray(values, dtype=np.float64), decimals) + 0.0
    text = json.dumps([float(f"{v:.{decimals}f}") for v in rounded.ravel().tolist()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_served_settings(config, prefix: str) -> None:
    """The request settings a served embedder and a served reranker share: retries, timeout, backoff and price."""
    if config.max_retries < 0:
        raise ConfigError(f"{prefix}.max_retries", f"must be >= 0, got {config.max_retries}")
    for key in ("timeout_s", "retry_backoff_s"):
        if not getattr(config, key) > 0:
            raise ConfigError(f"{prefix}.{key}", f"must be positive, got {getattr(config, key)}")
    if config.price_per_1m_tokens is not None and config.price_per_1m_tokens < 0:
        raise ConfigError(f"{prefix}.price_per_1m_tokens", f"must be >= 0, got {config.price_per_1m_tokens}")
