"""The committed questions of the second real document set against PostgreSQL's HTML manual (Debian
postgresql-doc-15, `make docs-data`): every quote resolves once, and what the import keeps of the pages (heading
paths, anchors, lines) points at the right place."""
from __future__ import annotations

from pathlib import Path

import pytest

from retrieval_lab.config import compose_config
from retrieval_lab.data import load_dataset
from retrieval_lab.data.formats import SECTION_MAX_CHARS
from retrieval_lab.data.places import source_location


def test_every_question_resolves_in_the_imported_pages(tmp_path):
    cfg = compose_config(["dataset=postgresql_docs", f"cache.dir={tmp_path / 'cache'}"])
    if not (Path(cfg.dataset.path) / "app-psql.html").exists():
        pytest.skip(f"PostgreSQL manual not installed in {cfg.dataset.path}: run `make docs-data` (postgresql-doc-15)")
    dataset = load_dataset(cfg.dataset, cache_root=cfg.cache.dir)
    assert len(dataset.corpus) == 68 and len(dataset.queries) == 52 and len(dataset.evidence) == 52
    row = dataset.corpus.index_of()
    raw = {}
    for spans in dataset.evidence.values():
        (doc, start, end), = spans
        metadata = dataset.corpus.metadata[row[doc]]
        where = source_location(metadata, start)
        if doc not in raw:
            raw[doc] = (Path(cfg.dataset.path) / doc).read_text(encoding="utf-8")
        assert raw[doc][where["offset"]] == dataset.corpus.texts[row[doc]][start]  # the map points at the quote
        assert where["line"] == raw[doc].count("\n", 0, where["offset"]) + 1
        assert where["heading_path"] and where["anchor"] and where["link"].startswith(doc + "#")
        assert all(e - s <= SECTION_MAX_CHARS for s, e, *_ in metadata["sections"])
    q = next(q for q, spans in dataset.evidence.items() if "schema), not data" in
             dataset.corpus.texts[row[spans[0][0]]][spans[0][1]:spans[0][2]])
    (doc, start, _), = dataset.evidence[q]
    where = source_location(dataset.corpus.metadata[row[doc]], start)
    assert where["heading_path"][-1] == "Options" and where["link"] == "app-pgdump.html#PG-DUMP-OPTIONS"
