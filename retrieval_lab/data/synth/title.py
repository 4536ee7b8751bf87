"""`title`: a document's title, or a section's heading, asks for the text under it.

Short and abstractive (a heading names a topic in other words than its text), and offline. The evidence is the
opening of the text the heading stands over (up to `window` sentences, not the heading itself). A heading is usable
when it holds a content word that is not a generic heading ("Introduction", "References"); a title that is only the
document's file name (an imported document without a title of its own) is not. A one-word section heading is asked
with its document's title in front; a question that several units would ask (two "Installation" sections) is
dropped, as its gold would be ambiguous.

Two options make it less of a copy (both off by default): `dropout`, each content word of the chosen heading is
dropped with this probability (stopwords always; at least two content words stay), and `inflect`, the share of the
words written in another form of their stem found in the corpus. The title is indexed with its document, so as is it
is matched word for word; with dropout 0.5 and inflect 1 its rankings agreed better with real ones on Cranfield and
NFCorpus, the same on SciFact (BENCHMARKS.md, "Synthetic questions: calibration").
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from retrieval_lab.chunking.sentences import sentence_spans
from retrieval_lab.data.formats import whole_sections
from retrieval_lab.data.synth.base import SynthQuestion, WordForms, too_many, words
from retrieval_lab.data.synth.extract import stopwords
from retrieval_lab.types import Corpus

GENERIC = frozenset("""abstract acknowledgements acknowledgments appendix background bibliography chapter conclusion
conclusions contents discussion example examples foreword glossary index introduction notes overview preface
references results section see also summary table of the and a an in on for to""".split())
NUMBERING = re.compile(r"^\s*(?:(?:chapter|section|part|appendix)\s+)?(?:\d+(?:\.\d+)*\.?|[ivxlc]+[.)]|[a-z][.)])"
                       r"\s*[:.)-]?\s+", re.IGNORECASE)


def clean_heading(heading: str) -> str:
    """The heading without its numbering ("2.3 Loops" -> "Loops") and trailing punctuation."""
    text = " ".join(heading.split())
    stripped = NUMBERING.sub("", text, count=1)
    return (stripped if words(stripped) else text).strip(" :;.-\u00b6")


def content_words(heading: str) -> list[str]:
    return [w for w in words(heading) if len(w) >= 3 and w.lower() not in GENERIC]


@dataclass
class TitleGenerator:
    window: int = 2  # sentences of evidence under the heading
    sections: bool = True  # headings of imported documents' sections too, not only document titles
    dropout: float = 0.0  # chance that each content word of a heading is left out of its question
    inflect: float = 0.0  # share of the question's words written in another form of their stem in the corpus

    name = "title"

    def settings(self) -> dict:
        return {"window": self.window, "sections": self.sections, "dropout": self.dropout, "inflect": self.inflect}

    def generate(self, corpus: Corpus, n: int, rng: np.random.Generator) -> list[SynthQuestion]:
        candidates: dict[str, list[SynthQuestion]] = {}
        for row, doc in enumerate(corpus.ids):
            text = corpus.texts[row]
            title = clean_heading(corpus.titles[row] or "")
            usable_title = bool(content_words(title)) and title not in (PurePosixPath(doc).name,
                                                                         PurePosixPath(doc).stem)
            if usable_title:
                self._add(candidates, title, doc, text, 0, len(text), title)
            sections = (corpus.metadata[row] or {}).get("sections") if corpus.metadata and self.sections else None
            for section in whole_sections(sections or []):
                start, end, heading = section
                heading = clean_heading(str(heading or ""))
                found = content_words(heading)
                if not found or heading.casefold() == title.casefold():
                    continue
                question = f"{title} {heading}" if len(found) == 1 and usable_title else heading
                self._add(candidates, question, doc, text, int(start), int(end), heading)
        unique = [qs[0] for qs in candidates.values() if len(qs) == 1 and qs[0].evidence]
        if n > len(unique):
            raise too_many(n, len(unique), f"the corpus's titles and headings ({len(unique)} usable, unambiguous "
                                           "and with text under them)")
        chosen = [unique[i] for i in sorted(rng.choice(len(unique), size=n, replace=False))]
        if self.dropout > 0 or self.inflect > 0:
            forms, own = WordForms(corpus), rng.spawn(1)[0]
            stop = stopwords()
            for q in chosen:
                q.question = forms.vary(self.drop_words(q.question, stop, own), own, self.inflect)
        return chosen

    def drop_words(self, heading: str, stop: frozenset[str], rng: np.random.Generator) -> str:
        if self.dropout <= 0:
            return heading
        content = [w for w in words(heading) if w.lower() not in stop]
        kept = [w for w in content if rng.random() >= self.dropout]
        return " ".join(kept if len(kept) >= 2 else content[:2]) or heading

    def _add(self, candidates, question, doc, text, start, end, heading):
        """The unit's opening sentences after its heading line, as evidence."""
        spans = [(start + s, start + e) for s, e in sentence_spans(text[start:end])]
        spans = [(s, e) for s, e in spans if clean_heading(text[s:e]).casefold() != heading.casefold()]
        evidence = text[spans[0][0]:spans[:self.window][-1][1]] if spans else ""
        if not words(evidence):
            evidence = ""
        source = text[spans[0][0]:spans[0][1]] if spans else ""
        candidates.setdefault(question.casefold(), []).append(SynthQuestion(question, doc, evidence, source,
                                                                            {"heading": heading}))
