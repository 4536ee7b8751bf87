"""`extract`: key terms of a sampled passage, made less lexical than a copied sentence.

A question copied from its passage makes BM25 look perfect. This generator keeps what a searcher would plausibly
type, the passage's rarest terms, and takes away what makes the copy trivial:
- candidates are the content words of the passage, one sentence either side and the document's title; those that
  occur in a single document (identifiers, typos: a free exact match) are left out (`min_df`);
- the source sentence's own words are removed when the rest of that context still gives `terms` candidates, so the
  question points at the passage through its surroundings;
- the `terms` rarest candidates by corpus IDF are kept after term dropout: each of the `2 * terms` rarest is dropped
  with probability `dropout` (a searcher does not know every word), never below two terms;
- the kept terms are written in the order they appear in the document;
- each is then written in another form of its stem found in the corpus (`inflect`, the share of terms changed:
  "wings heated" for "wing heating"), as searchers rarely type a document's exact word forms; of the variants
  measured by `retrieval-lab calibrate` this raised Kendall tau with real rankings on all three datasets
  (BENCHMARKS.md, "Synthetic questions: calibration").
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from retrieval_lab.chunking.sentences import sentence_spans
from retrieval_lab.data.synth.base import Passage, SynthQuestion, WordForms, sample_passages, take, words
from retrieval_lab.types import Corpus

MIN_TERMS = 2


def stopwords() -> frozenset[str]:
    from bm25s import stopwords as lists

    return frozenset(lists.STOPWORDS_EN_PLUS)


@dataclass
class ExtractGenerator:
    terms: int = 5  # key terms per question
    dropout: float = 0.3  # chance that each of the rarest candidate terms is dropped
    window: int = 2  # sentences per passage (the evidence)
    min_df: int = 2  # a term must occur in this many documents to be asked for
    keep_source_words: bool = False  # true: candidates include the source sentence's own words always
    inflect: float = 1.0  # share of the terms written in another form of their stem found in the corpus

    name = "extract"

    def settings(self) -> dict:
        return {"terms": self.terms, "dropout": self.dropout, "window": self.window, "min_df": self.min_df,
                "keep_source_words": self.keep_source_words, "inflect": self.inflect}

    def generate(self, corpus: Corpus, n: int, rng: np.random.Generator) -> list[SynthQuestion]:
        stop = stopwords()
        df: Counter[str] = Counter()
        for title, text in zip(corpus.titles, corpus.texts):
            df.update({w.lower() for w in words(f"{title} {text}")})
        idf = {w: math.log(len(corpus) / c) for w, c in df.items()}
        forms = WordForms(corpus) if self.inflect > 0 else None
        forms_rng = rng.spawn(1)[0]  # its own stream: the terms chosen do not depend on `inflect`

        def ask(passages: list[Passage]) -> list[str | None]:
            questions = [self.question(corpus, p, idf, stop, rng) for p in passages]
            return [forms.vary(q, forms_rng, self.inflect) if q and forms else q for q in questions]

        return take(sample_passages(corpus, rng, self.window), n, ask, batch=256,
                    what=f"{len(corpus)} documents (sentence windows with at least {self.terms} key terms, each "
                         f"in {self.min_df}+ documents)",
                    other="another generator (--generator title asks from the documents' headings)")

    def question(self, corpus: Corpus, passage: Passage, idf: dict[str, float], stop: frozenset[str],
                 rng: np.random.Generator) -> str | None:
        text = corpus.texts[passage.row]
        spans = sentence_spans(text)
        inside = [i for i, (s, e) in enumerate(spans) if s >= passage.start and e <= passage.end]
        lo, hi = spans[max(inside[0] - 1, 0)][0], spans[min(inside[-1] + 1, len(spans) - 1)][1]
        context = f"{corpus.titles[passage.row]} {text[lo:hi]}"

        def candidates(exclude: set[str]) -> dict[str, int]:
            found: dict[str, int] = {}
            for position, word in enumerate(words(context)):
                key = word.lower()
                if (len(key) > 2 and key not in stop and key not in exclude and key in idf
                        and idf[key] <= math.log(len(corpus) / self.min_df) and key not in found):
                    found[key] = position
            return found

        found = candidates(set())
        if not self.keep_source_words:
            without = candidates({w.lower() for w in words(passage.source)})
            if len(without) >= self.terms:
                found = without
        if len(found) < min(self.terms, MIN_TERMS + 1):
            return None
        tiebreak = dict(zip(found, rng.permutation(len(found))))  # equally rare terms: no bias to the title
        rarest = sorted(found, key=lambda w: (-idf[w], tiebreak[w]))[:2 * self.terms]
        kept = [w for w in rarest if rng.random() >= self.dropout]
        if len(kept) < MIN_TERMS:
            kept += [w for w in rarest if w not in kept][:MIN_TERMS - len(kept)]
        kept = kept[:self.terms]
        return " ".join(sorted(kept, key=found.get))
