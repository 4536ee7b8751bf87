"""`llm`: a question per passage from any OpenAI-compatible chat endpoint (vLLM, llama.cpp, Ollama, a hosted API).

POST `<base_url>/chat/completions` with the prompt as one user message. Requests run in `concurrency` threads; a
429, a 5xx, a timeout or a refused connection is retried up to `retries` times with exponential backoff (`backoff`
seconds doubled each time, or the server's Retry-After when it sends one); anything else (another 4xx, a body that
is not a chat completion) fails at once. Each answer is cached by (model, prompt, passage, temperature) in the lab's
cache (stage `synth_llm`), so a re-run costs nothing; an empty answer is never cached (it is asked again next time).
Clear the cached answers of earlier runs with `retrieval-lab cache prune --stage synth_llm` (`--dir` for the cache root
given as --cache-dir). Each retry is logged as it happens, with its wait. The token counts of the requests made are
summed and priced.
Standard library only.
"""
from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from retrieval_lab.data.synth.base import (Passage, SynthError, SynthQuestion, TooFewQuestions, sample_passages,
                                          take)
from retrieval_lab.types import Corpus

log = logging.getLogger(__name__)

CACHE_STAGE = "synth_llm"
PROMPT = ("Write one question that the passage below answers. Ask it the way a person searching for this "
          "information would, in your own words rather than the passage's. Reply with the question only, on one "
          "line.\n\nPassage:\n{passage}\n\nQuestion:")
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0


@dataclass
class Usage:
    requests: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    answered: int = 0  # answers holding a question (cached or not)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, prompt: int, completion: int) -> None:
        with self.lock:
            self.requests += 1
            self.prompt_tokens += prompt
            self.completion_tokens += completion


@dataclass
class LlmGenerator:
    model: str | None = None
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str = "OPENAI_API_KEY"
    prompt: str = PROMPT
    temperature: float = 0.7
    max_tokens: int = 64
    concurrency: int = 4
    timeout: float = 60.0  # seconds per request
    retries: int = 5  # further attempts after a retryable failure
    backoff: float = 1.0  # seconds before the first retry; doubled each time
    window: int = 2
    price_per_1k_tokens: float = 0.0
    cache_dir: str | None = None
    use_cache: bool = True

    name = "llm"

    def __post_init__(self):
        if not self.model:
            raise SynthError("--generator llm needs --model", "name the model the endpoint serves, e.g. "
                             "--model llama3.1:8b")
        if "{passage}" not in self.prompt:
            raise SynthError("the llm prompt has no {passage} placeholder", "put {passage} where the text goes")
        if self.concurrency < 1 or self.retries < 0 or self.timeout <= 0:
            raise SynthError(f"--concurrency {self.concurrency}, --retries {self.retries}, --timeout "
                             f"{self.timeout}: need concurrency >= 1, retries >= 0, timeout > 0")
        self.usage = Usage()
        self.url = self.base_url.rstrip("/") + "/chat/completions"

    def settings(self) -> dict:
        return {"model": self.model, "base_url": self.base_url, "prompt": self.prompt,
                "temperature": self.temperature, "max_tokens": self.max_tokens, "window": self.window}

    def report(self) -> dict:
        tokens = self.usage.prompt_tokens + self.usage.completion_tokens
        return {"requests": self.usage.requests, "cached": self.usage.cached,
                "prompt_tokens": self.usage.prompt_tokens, "completion_tokens": self.usage.completion_tokens,
                "cost": round(tokens / 1000 * self.price_per_1k_tokens, 6),
                "price_per_1k_tokens": self.price_per_1k_tokens}

    def generate(self, corpus: Corpus, n: int, rng: np.random.Generator) -> list[SynthQuestion]:
        from retrieval_lab.cache import Cache

        cache = Cache(self.cache_dir, enabled=self.use_cache)

        def ask(passages: list[Passage]) -> list[str | None]:
            with ThreadPoolExecutor(self.concurrency) as pool:
                return list(pool.map(lambda p: self.ask_cached(cache, p.text), passages))

        try:
            questions = take(sample_passages(corpus, rng, self.window), n, ask, batch=max(8, 4 * self.concurrency),
                             what=f"{len(corpus)} documents (the model gave empty answers for the rest)")
        except TooFewQuestions:
            if self.usage.answered == 0:  # not a small corpus: the endpoint answers, but never with text
                raise SynthError(f"LLM endpoint {self.url} answered every request with an empty message (model "
                                 f"{self.model}); empty answers are not cached", "check that --model names a chat "
                                 "model the server serves, and try the prompt by hand with curl; once it answers, "
                                 "the same command asks again") from None
            raise
        log.info("llm: %s", self.report())
        return questions

    def ask_cached(self, cache, passage: str) -> str:
        inputs = {"model": self.model, "prompt": self.prompt, "passage": passage, "temperature": self.temperature}
        # an empty answer is never cached: once the endpoint is fixed, the same command asks again
        entry = cache.get_or_compute(CACHE_STAGE, inputs, lambda: (None, self.ask(passage), {}),
                                     valid=lambda answer: bool(answer["question"].strip()))
        question = entry.payload["question"]
        with self.usage.lock:
            self.usage.cached += int(entry.hit)
            self.usage.answered += int(bool(question.strip()))
        return question

    def ask(self, passage: str) -> dict:
        """One chat completion: {"question", "prompt_tokens", "completion_tokens"}."""
        body = json.dumps({"model": self.model, "temperature": self.temperature, "max_tokens": self.max_tokens,
                           "messages": [{"role": "user", "content": self.prompt.format(passage=passage)}]})
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        last = ""
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.url, body.encode("utf-8"), headers, method="POST")
            wait = self.backoff * 2 ** attempt * (1 + 0.1 * random.random())  # jitter spreads the threads out
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
                return self.parse(raw)
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:200].decode("utf-8", "replace")
                last = f"HTTP {exc.code} {detail}".strip()
                if exc.code not in RETRY_STATUS:
                    raise SynthError(f"LLM endpoint {self.url}: {last}",
                                     "check --model, --base-url and the key in $" + self.api_key_env) from None
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                if retry_after and retry_after.replace(".", "", 1).isdigit():
                    wait = min(float(retry_after), MAX_RETRY_AFTER)
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                last = str(getattr(exc, "reason", exc) or type(exc).__name__)
            if attempt < self.retries:  # shown as it happens: a refused connection must not wait in silence
                log.warning("llm: %s from %s; retry %d of %d in %.1f s", last, self.url, attempt + 1, self.retries,
                            wait)
                time.sleep(wait)
        raise SynthError(f"LLM endpoint {self.url} failed {self.retries + 1} times; last: {last}",
                         "check that the server is running and reachable at --base-url (an OpenAI-compatible "
                         "/v1 root), or raise --retries / --timeout")

    def parse(self, raw: bytes) -> dict:
        try:
            reply = json.loads(raw)
            content = reply["choices"][0]["message"]["content"]
            if not isinstance(content, str):
                raise TypeError(f"content is {type(content).__name__}")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise SynthError(f"LLM endpoint {self.url} did not answer with a chat completion ({exc!r}): "
                             f"{raw[:200].decode('utf-8', 'replace')!r}",
                             "point --base-url at an OpenAI-compatible API root (ending in /v1)") from None
        usage = reply.get("usage") or {}
        prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        self.usage.add(prompt, completion)
        return {"question": first_line(content), "prompt_tokens": prompt, "completion_tokens": completion}


def first_line(content: str) -> str:
    """The question out of a chat answer: its first non-empty line, without a 'Question:' label or quotes."""
    for line in content.splitlines():
        line = line.strip().strip('"\u201c\u201d').strip()
        if line.lower().startswith("question:"):
            line = line[len("question:"):].strip()
        if line:
            return line
    return ""
