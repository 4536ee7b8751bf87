"""Synthetic questions: `retrieval-lab data synth` writes a dataset whose questions are generated from its corpus.

Generators, by name (one module each; a model or endpoint is reached only when one generates):
- `title`: a document's title or a section's heading asks for the text under it (offline);
- `extract`: key terms of a passage with term dropout, the source sentence's own words left out (offline);
- `llm`: an OpenAI-compatible chat endpoint writes a question per passage;
- `doc2query`: a seq2seq query-generation model writes a question per passage.

Each question's gold is its source passage, quoted verbatim as evidence in the own-documents questions format
(data/questions.py), so rank metrics and span metrics both work. The dataset's `synth.json` records the generator,
its settings, the seed and the source corpus's hash; runs on it are tagged `eval_set=synthetic` (pipeline.tracked) and
`retrieval-lab best` warns under their leaderboard, because synthetic questions rank configurations with a bias.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from retrieval_lab.data.synth.base import SynthError, SynthQuestion
from retrieval_lab.data.synth.doc2query import Doc2QueryGenerator
from retrieval_lab.data.synth.extract import ExtractGenerator
from retrieval_lab.data.synth.llm import LlmGenerator
from retrieval_lab.data.synth.title import TitleGenerator

# name -> generator class (a dataclass of its settings with `generate(corpus, ...)`)
GENERATORS: dict[str, type] = {
    "title": TitleGenerator,
    "extract": ExtractGenerator,
    "llm": LlmGenerator,
    "doc2query": Doc2QueryGenerator,
}
SYNTH_FILE = "synth.json"

__all__ = ["GENERATORS", "SYNTH_FILE", "SynthError", "SynthQuestion", "generator_options", "make_generator",
           "synthetic_info"]


def generator_class(name: str):
    if name not in GENERATORS:
        raise SynthError(f"--generator {name}: unknown generator", f"use one of {', '.join(GENERATORS)}")
    return GENERATORS[name]


def generator_options(name: str) -> list[str]:
    """The settings generator `name` takes (its dataclass fields)."""
    return [f.name for f in dataclasses.fields(generator_class(name))]


def make_generator(name: str, **options):
    """The generator registered under `name`, with the options it takes (None values and options it does not take
    are left out, so one CLI namespace serves every generator)."""
    cls = generator_class(name)
    fields = set(generator_options(name))
    return cls(**{k: v for k, v in options.items() if k in fields and v is not None})


def synthetic_info(dataset) -> dict | None:
    """The synth.json of a loaded dataset's folder when the dataset's queries are the generated ones (a real
    questions file over the same corpus folder is not synthetic), else None."""
    path = Path(dataset.path) / SYNTH_FILE
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("queries_hash") != dataset.queries.fingerprint:
        return None
    return info
