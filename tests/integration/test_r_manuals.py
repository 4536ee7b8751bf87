"""The committed own-documents questions against the real R manuals (Debian r-doc-html, `make docs-data`)."""
from __future__ import annotations

from pathlib import Path

import pytest

from retrieval_lab.config import compose_config
from retrieval_lab.data import load_dataset


def test_every_question_resolves_in_the_imported_manuals(tmp_path):
    cfg = compose_config(["dataset=r_manuals", f"cache.dir={tmp_path / 'cache'}"])
    if not (Path(cfg.dataset.path) / "R-intro.html").exists():
        pytest.skip(f"R manuals not installed in {cfg.dataset.path}: run `make docs-data` (Debian r-doc-html)")
    dataset = load_dataset(cfg.dataset, cache_root=cfg.cache.dir)
    assert len(dataset.corpus) == 7 and all(doc.endswith(".html") for doc in dataset.corpus.ids)
    assert len(dataset.queries) == 88
    spans = [span for spans in dataset.evidence.values() for span in spans]
    assert len(spans) == 96 and len(dataset.evidence) == 88
    texts = dict(zip(dataset.corpus.ids, dataset.corpus.texts))
    for doc, start, end in spans:
        assert 40 <= end - start <= 400 and "¶" not in texts[doc][start:end]
    assert all(any(s.isupper() for s in title) for title in dataset.corpus.titles)


def test_search_shows_heading_paths_and_links_into_the_manuals(tmp_path, capsys):
    from omegaconf import OmegaConf

    from retrieval_lab.cli import main as cli_main

    cfg = compose_config(["dataset=r_manuals", f"cache.dir={tmp_path / 'cache'}", "retriever=bm25",
                          "chunker=fixed_tokens", "chunker.size=128", "unit=chunk"])
    if not (Path(cfg.dataset.path) / "R-intro.html").exists():
        pytest.skip(f"R manuals not installed in {cfg.dataset.path}: run `make docs-data` (Debian r-doc-html)")
    config = tmp_path / "config.yaml"
    config.write_text(OmegaConf.to_yaml(cfg, resolve=True))
    assert cli_main(["search", "--config", str(config), "-k", "1", "--passages", "2",
                     "tapply ragged arrays factor"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("  1. R-intro.html")
    assert lines[1].startswith("   a) An Introduction to R > 4 Ordered and unordered factors > 4.")  # 4.1 or 4.2
    manual = (Path(cfg.dataset.path) / "R-intro.html").resolve().as_uri()
    assert lines[2].strip().startswith(f"{manual}#") and "(offset " in lines[2]
    assert any(line.startswith("   b) ") for line in lines)  # a second passage of the same manual
