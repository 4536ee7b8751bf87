"""Where a passage sits in its source file: the heading path above it and a link (HTML id, Markdown slug, PDF page)."""
from __future__ import annotations

import json

from retrieval_lab.commands.export import hit_lines
from retrieval_lab.data.folder import import_folder
from retrieval_lab.data.places import place_of
from tests.unit.test_folder_import import make_docs

PAGE = """<html><head><title>Manual</title></head><body>
<h1 id="top">The manual</h1>
<div class="chapter" id="Install"><h2>1 Installing</h2>
<p>Start here.</p>
<h3 id="_options">1.1 Options<a class="headerlink" href="#_options">¶</a></h3>
<p>Use <code>--soft</code> to keep the index.</p>
<span id="index-hard"></span><p>Use --hard to reset it all.</p>
</div>
<h2 id="Usage">2 Usage</h2><p>Run it.</p>
</body></html>
"""

MARKDOWN = """# Guide

## Build & install

```
# not a heading
```

Text under build.

Options
-------

### The `--soft` flag {#soft-flag}

Keep the index.

## Build & install

Again.
"""


def _placed(tmp_path, name: str, text: str):
    """place(quote) of the imported `name` (the importer records headings and anchors; places turns them into links)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / name).write_text(text, encoding="utf-8")
    import_folder(docs, tmp_path / "out")
    record = json.loads((tmp_path / "out" / "corpus.jsonl").read_text().splitlines()[0])
    return lambda quote: place_of(record["metadata"], record["text"].index(quote), docs)


def test_html_heading_path_and_nearest_anchor(tmp_path):
    place = _placed(tmp_path, "manual.html", PAGE)
    at = place("Use --soft")
    assert (at.headings, at.anchor) == (["The manual", "1 Installing", "1.1 Options"], "_options")
    at = place("Use --hard")
    assert (at.headings, at.anchor) == (["The manual", "1 Installing", "1.1 Options"], "index-hard")
    at = place("Start here")
    assert (at.headings, at.anchor) == (["The manual", "1 Installing"], "Install")
    at = place("Run it")
    assert (at.headings, at.anchor) == (["The manual", "2 Usage"], "Usage")  # h3 closed by h2


def test_markdown_heading_path_and_github_slugs(tmp_path):
    place = _placed(tmp_path, "guide.md", MARKDOWN)
    at = place("Text under")
    assert (at.headings, at.anchor) == (["Guide", "Build & install"], "build--install")
    at = place("Keep the")
    assert (at.headings, at.anchor) == (["Guide", "Options", "The --soft flag"], "soft-flag")  # setext h2
    at = place("Again")
    assert (at.headings, at.anchor) == (["Guide", "Build & install"], "build--install-1")


def test_places_of_imported_documents_and_printed_hits(tmp_path):
    docs = make_docs(tmp_path / "docs")
    (docs / "manual.html").write_text(PAGE, encoding="utf-8")
    import_folder(docs, tmp_path / "out")
    records = {r["_id"]: r for r in map(json.loads, (tmp_path / "out" / "corpus.jsonl").read_text().splitlines())}

    def place(doc: str, quote: str):
        record = records[doc]
        return place_of(record["metadata"], record["text"].index(quote), docs)

    html = place("manual.html", "Use --hard")
    assert html.headings == ["The manual", "1 Installing", "1.1 Options"]
    assert html.link == f"{(docs / 'manual.html').resolve().as_uri()}#index-hard"
    md = place("guide/install.md", "GNU make")
    assert md.headings == ["Install guide", "Requirements"] and md.link.endswith("install.md#requirements")
    pdf = place("manual.pdf", "Dogs bark")
    assert pdf.page == 2 and pdf.headings == ["Advanced use"] and pdf.link.endswith("manual.pdf#page=2")

    (docs / "manual.html").write_text(PAGE.replace("Start here", "Begin here"), encoding="utf-8")
    moved = place("manual.html", "Use --hard")  # the file changed since the import: no link into it
    assert moved.anchor is None and moved.source_file is None and moved.link == "manual.html"

    hits = [{"doc_id": "manual.html", "score": 1.5, "title": "Manual", "passages": [
        {"passage": "Use --hard to reset it all.", "headings": html.headings, "link": html.link,
         "source": {"file": "manual.html", "page": None, "offset": 300}},
        {"passage": "Start here.", "headings": ["The manual", "1 Installing"], "link": "manual.html#Install",
         "source": {"file": "manual.html", "page": None, "offset": 120}}]}]
    lines = hit_lines(hits)
    assert lines[0].startswith("  1. manual.html  score 1.5000  Manual")
    assert lines[1] == "   a) The manual > 1 Installing > 1.1 Options"
    assert lines[2].strip().endswith("#index-hard  (offset 300)")
    assert lines[4] == "   b) The manual > 1 Installing" and "manual.html#Install" in lines[5]
