"""One tokenizer for every BM25 backend, so backends differ only in scoring."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from retrieval_lab.config import check_choice
from retrieval_lab.errors import ConfigError

STOPWORD_LISTS = ("en", "en_plus")


@dataclass(frozen=True)
class TokenizerConfig:
    lowercase: bool = True
    stopwords: str | None = "en"  # bm25s lists: "en" (Lucene's 33 English words), "en_plus"; null = keep all
    stemmer: str | None = "english"  # any PyStemmer algorithm (english = Snowball, porter, ...); null = none
    pattern: str = r"(?u)\b\w\w+\b"

    def validate(self, prefix: str) -> None:
        check_choice(f"{prefix}.stopwords", self.stopwords, STOPWORD_LISTS, nullable=True)
        if self.stemmer is not None:
            import Stemmer

            check_choice(f"{prefix}.stemmer", self.stemmer, Stemmer.algorithms(), nullable=True)
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise ConfigError(f"{prefix}.pattern", f"invalid regular expression: {exc}") from None


class Tokenizer:
    def __init__(self, config: TokenizerConfig):
        self.config = config
        self._regex = re.compile(config.pattern)

    @cached_property
    def _stopwords(self) -> frozenset[str]:
        if self.config.stopwords is None:
            return frozenset()
        from bm25s import stopwords

        return frozenset(getattr(stopwords, f"STOPWORDS_{self.config.stopwords.upper()}"))

    @cached_property
    def _stem(self):
        if self.config.stemmer is None:
            return None
        import Stemmer

        return Stemmer.Stemmer(self.config.stemmer).stemWords

    def __call__(self, texts: list[str]) -> list[list[str]]:
        out = []
        stop, stem = self._stopwords, self._stem
        for text in texts:
            if self.config.lowercase:
                text = text.lower()
            tokens = [t for t in self._regex.findall(text) if t not in stop]
            out.append(stem(tokens) if stem else tokens)
        return out

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, token) of each token of `text`, at its place in `text` as written: the pattern runs over the
        text itself and each match is lowercased alone, since lowercasing the whole text can move characters."""
        stop, stem = self._stopwords, self._stem
        found = [(m.start(), m.end(), m.group().lower() if self.config.lowercase else m.group())
                 for m in self._regex.finditer(text)]
        found = [(start, end, word) for start, end, word in found if word not in stop]
        tokens = stem([word for _, _, word in found]) if stem else [word for _, _, word in found]
        return [(start, end, token) for (start, end, _), token in zip(found, tokens)]
