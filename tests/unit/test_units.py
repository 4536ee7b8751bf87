"""Returned units (small-to-big): known spans per unit kind, one unit per several chunks, config errors by key."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval_lab.chunking import build_passages
from retrieval_lab.chunking.units import UnitConfig, parse_unit_id, unit_id, unit_spans
from retrieval_lab.config import compose_config
from retrieval_lab.errors import ConfigError
from retrieval_lab.pipeline import read_config
from retrieval_lab.pipeline.steps import UnitsStep
from retrieval_lab.types import Corpus, Run

# doc a: three sections by heading; doc b: no sections
A = "# One\nalpha beta gamma delta\n# Two\nepsilon zeta eta theta\n# Three\niota kappa lambda mu"
B = "nu xi omicron pi rho sigma tau upsilon"
SECTIONS = [[0, A.index("# Two"), "One"], [A.index("# Two"), A.index("# Three"), "Two"], [A.index("# Three"), len(A), "Three"]]
CORPUS = Corpus(["a", "b"], ["", ""], [A, B], [{"sections": SECTIONS}, {}])


@pytest.fixture(scope="module")
def passages():
    return build_passages({"name": "fixed_tokens", "size": 4, "overlap": 0, "tokenizer": "whitespace",
                           "title": False}, CORPUS)


def spans(passages, name, **kw):
    starts, ends = unit_spans(passages, CORPUS, UnitConfig(name=name, **kw))
    return [(d, int(s), int(e)) for d, s, e in zip(passages.doc_ids, starts, ends)]


def test_chunk_units_are_the_chunks(passages):
    assert spans(passages, "chunk") == [(d, int(s), int(e)) for d, s, e in
                                        zip(passages.doc_ids, passages.starts, passages.ends)]


def test_window_units_join_neighbours_within_one_document(passages):
    rows_a = [i for i, d in enumerate(passages.doc_ids) if d == "a"]
    got = spans(passages, "window", window=1)
    first, second, last = rows_a[0], rows_a[1], rows_a[-1]
    assert got[first] == ("a", int(passages.starts[first]), int(passages.ends[second]))  # no chunk before the first
    assert got[second] == ("a", int(passages.starts[first]), int(passages.ends[rows_a[2]]))
    assert got[last][2] == len(A)  # never crosses into document b
    assert spans(passages, "window", window=0) == spans(passages, "chunk")


def test_section_units_follow_headings_and_fall_back_to_the_document(passages):
    got = spans(passages, "section")
    for row, (doc, start, end) in enumerate(got):
        chunk_start = int(passages.starts[row])
        if doc == "a":
            section = next(s for s in SECTIONS if s[0] <= chunk_start < s[1])
            assert (start, end) == (section[0], section[1])
        else:
            assert (start, end) == (0, len(B))  # no sections: the whole document
    assert {(s, e) for d, s, e in got if d == "a"} == {(s[0], s[1]) for s in SECTIONS}


def test_document_units(passages):
    assert set(spans(passages, "document")) == {("a", 0, len(A)), ("b", 0, len(B))}


def test_units_step_returns_each_unit_once_at_its_best_rank(passages):
    starts, ends = unit_spans(passages, CORPUS, UnitConfig(name="document"))
    step = UnitsStep(UnitConfig(name="document"), passages, starts, ends, ("passages", "documents"))
    run = Run({"q": [(pid, 10.0 - i) for i, pid in enumerate(reversed(passages.ids))]})
    units = step.of(run, Run(), passages, 10)["q"]
    assert [parse_unit_id(u) for u, _ in units] == [("b", 0, len(B)), ("a", 0, len(A))]
    assert [s for _, s in units] == [10.0, 10.0 - sum(d == "b" for d in passages.doc_ids)]
    assert parse_unit_id(unit_id("x@y", 3, 9)) == ("x@y", 3, 9)  # doc ids may hold '@'


def test_every_returned_document_keeps_a_unit_when_one_document_fills_the_depth(passages):
    """Chunk units at depth 2: the top passages are all of `b`, yet `a` is a top-2 document, so its best unit comes
    after the first 2 units (search shows each returned document's unit; it raised KeyError before)."""
    step = UnitsStep(UnitConfig(name="chunk"), passages, *unit_spans(passages, CORPUS, UnitConfig(name="chunk")),
                     ("passages", "documents"))
    ranked = [pid for d, pid in zip(passages.doc_ids, passages.ids) if d == "b"] + \
             [pid for d, pid in zip(passages.doc_ids, passages.ids) if d == "a"]
    assert sum(d == "b" for d in passages.doc_ids) > 2  # the fixture: b alone fills the depth
    run = Run({"q": [(pid, 10.0 - i) for i, pid in enumerate(ranked)]})
    documents = Run({"q": [("b", 10.0), ("a", 10.0 - sum(d == "b" for d in passages.doc_ids))]})
    units = step.of(run, documents, passages, 2)["q"]
    assert [parse_unit_id(u)[0] for u, _ in units] == ["b", "b", "a"]  # the first 2 as before, then a's best
    assert [parse_unit_id(u)[0] for u, _ in step.of(run, Run(), passages, 2)["q"]] == ["b", "b"]


def test_unit_config_errors_name_the_key():
    assert read_config(compose_config(["unit=window", "unit.window=2"])).unit == UnitConfig("window", 2)
    with pytest.raises(ConfigError) as err:
        read_config(compose_config(["unit.name=paragraph"]))
    assert err.value.key == "unit.name"
    with pytest.raises(ConfigError) as err:
        read_config(compose_config(["unit=window", "unit.window=-1"]))
    assert err.value.key == "unit.window"
    assert np.all(np.asarray(unit_spans(build_passages({"name": "none"}, CORPUS), CORPUS, UnitConfig())[1])
                  == [len(A), len(B)])
