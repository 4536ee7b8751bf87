"""What every generator shares: the question record, sentence-window passages sampled from the corpus, and the
error for asking more questions than a corpus can give."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np

from retrieval_lab.chunking.sentences import sentence_spans
from retrieval_lab.errors import LabError
from retrieval_lab.types import Corpus

WORD = re.compile(r"[^\W\d_][\w'-]*[^\W_]|[^\W\d_]")


class SynthError(LabError):
    """A synthesis request that cannot be met (too many questions, an endpoint that fails, a bad option)."""

    def __init__(self, message: str, fix: str | None = None):
        super().__init__(message + (f"\n  fix: {fix}" if fix else ""))


@dataclass
class Passage:
    """doc text[start:end]: a window of whole sentences of one document; `source` is the sentence it centres on."""

    doc: str
    row: int
    start: int
    end: int
    text: str
    source: str


@dataclass
class SynthQuestion:
    question: str
    doc: str
    evidence: str  # verbatim from the document text: the questions loader locates it
    source: str  # the passage's source sentence, verbatim: the copy-the-sentence baseline of the lexical check
    meta: dict = field(default_factory=dict)


def words(text: str) -> list[str]:
    return WORD.findall(text)


class WordForms:
    """Other surface forms of a word found in the corpus: the words sharing its Snowball stem, most frequent first.

    A searcher rarely types the document's exact word forms ("heated wings" for "heating of a wing"); a question
    that does rewards matching surface forms (BM25 without stemming) more than real questions do (calibration:
    BENCHMARKS.md)."""

    def __init__(self, corpus: Corpus):
        import Stemmer

        stem = Stemmer.Stemmer("english").stemWord
        counts: dict[str, int] = {}
        for title, text in zip(corpus.titles, corpus.texts):
            for word in words(f"{title} {text}"):
                key = word.lower()
                counts[key] = counts.get(key, 0) + 1
        self.stem = stem
        self.forms: dict[str, list[str]] = {}
        for word, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            self.forms.setdefault(stem(word), []).append(word)

    def vary(self, question: str, rng: np.random.Generator, share: float) -> str:
        """Each word, with probability `share`, replaced by the corpus's most frequent other form of its stem (kept
        when it has none)."""
        if share <= 0:
            return question

        def other(match: re.Match) -> str:
            word = match.group(0)
            forms = [f for f in self.forms.get(self.stem(word.lower()), []) if f != word.lower()]
            return forms[0] if forms and rng.random() < share else word

        return WORD.sub(other, question)


def sentence_windows(text: str, window: int, min_words: int) -> list[tuple[int, int, int]]:
    """(start, end, centre sentence index) of consecutive, non-overlapping windows of `window` sentences whose text
    has at least `min_words` words."""
    spans = sentence_spans(text)
    out = []
    for first in range(0, len(spans), window):
        block = spans[first:first + window]
        start, end = block[0][0], block[-1][1]
        if len(words(text[start:end])) >= min_words:
            out.append((start, end, first + len(block) // 2))
    return out


def sample_passages(corpus: Corpus, rng: np.random.Generator, window: int = 2,
                    min_words: int = 8) -> Iterator[Passage]:
    """Every sentence window of the corpus once, spread over documents: round r yields the r-th (randomly chosen)
    window of each document, documents in a random order, so N questions come from N documents when there are."""
    per_doc = []
    for row in rng.permutation(len(corpus)):
        text = corpus.texts[row]
        found = sentence_windows(text, window, min_words)
        if found:
            per_doc.append((int(row), [found[i] for i in rng.permutation(len(found))]))
    rounds = max((len(w) for _, w in per_doc), default=0)
    for r in range(rounds):
        for row, windows in per_doc:
            if r < len(windows):
                start, end, centre = windows[r]
                text = corpus.texts[row]
                s, e = sentence_spans(text)[centre]
                yield Passage(corpus.ids[row], row, start, end, text[start:end], text[s:e])


def take(passages: Iterable[Passage], n: int, ask: Callable[[list[Passage]], list[str | None]],
         batch: int, what: str, other: str = "another generator") -> list[SynthQuestion]:
    """Questions for the first passages that get one: `ask` turns a batch of passages into questions (None or empty:
    no question from that passage), until `n` are made; fewer than `n` possible is a SynthError."""
    out: list[SynthQuestion] = []
    pending: list[Passage] = []
    seen = 0

    def flush():
        for passage, question in zip(pending, ask(pending)):
            question = (question or "").strip()
            if question and len(out) < n:
                out.append(SynthQuestion(question, passage.doc, passage.text, passage.source))

    for passage in passages:
        seen += 1
        pending.append(passage)
        if len(pending) >= min(batch, n - len(out)):
            flush()
            pending = []
            if len(out) >= n:
                return out
    if pending:
        flush()
    if len(out) < n:
        raise too_many(n, len(out), what + f" ({seen} passages tried)", other)
    return out


class TooFewQuestions(SynthError):
    """The corpus (or the generator's answers) gave fewer questions than asked for."""


def too_many(asked: int, possible: int, what: str, other: str = "another generator") -> SynthError:
    """`other`: what else would make questions from this corpus (the generator's own setting, when it has one)."""
    fewer = f"ask for at most {possible} (--queries {possible}), or " if possible else ""  # --queries 0 is refused
    error = TooFewQuestions(f"--queries {asked}: only {possible} questions can be made from {what}",
                            f"{fewer}use a larger corpus or {other}")
    error.possible = possible  # `init` asks for as many as the corpus gives
    return error
