"""Importing a folder of documents: titles, texts, sections, source maps, the report, skip or fail, re-import.

Every file is written by the test, the PDFs with pypdf (a content stream in the standard Helvetica font, so the text
layer is real), plus a damaged and an encrypted PDF, a Shift-JIS file, a Windows-1252 file and an empty file.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from pypdf import PdfWriter
from pypdf.generic import ContentStream, DecodedStreamObject, DictionaryObject, NameObject

from retrieval_lab.cli import main as cli_main
from retrieval_lab.data import dataset_folder
from retrieval_lab.data.beir import load_corpus
from retrieval_lab.data.folder import MANIFEST, import_folder
from retrieval_lab.data.import_cache import import_into_cache
from retrieval_lab.data.places import source_location
from retrieval_lab.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[2]

MARKDOWN = """---
layout: page
---
# Install guide

Read **all** of this first: it takes `five` minutes.

## Requirements

- a C compiler
- GNU make

## Building

Run the [configure](configure.html) script, then:

```
make && make check
```
"""

HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Release notes</title>
<style>body { color: red }</style><script>var skipMe = "script text";</script></head>
<body>
<header><a href="/">Site logo</a> Home of the project</header>
<nav><ul><li><a href="/a">Docs</a></li><li><a href="/b">Blog</a></li></ul></nav>
<div class="header"><p>Next: <a href="#x">Chapter 2</a>, Up: <a href="#top">Top</a></p></div>
<h1>Version 2.0</h1>
<p>Faster   imports &amp; smaller
   indexes.</p>
<ul class="toc"><li><a href="#one">Part one</a></li></ul>
<ul><li><a href="#p1">Changes</a></li><li><a href="#p2">Fixes</a></li><li><a href="#p3">Thanks</a></li></ul>
<h2>Fixes<a class="headerlink" href="#fixes">¶</a></h2>
<p>The parser no longer drops tables.</p>
<pre>
  keep   this   spacing
</pre>
<aside>Related posts you may like</aside>
<footer>Copyright the footer people</footer>
</body></html>
"""


def write_pdf(path: Path, pages: list[list[str]], title: str | None = None, outline=(), password=None) -> Path:
    """A real PDF: one Helvetica text line per string, a metadata title, outline items (title, page index)."""
    writer = PdfWriter()
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica"),
                             NameObject("/Encoding"): NameObject("/WinAnsiEncoding")})
    for lines in pages:
        page = writer.add_blank_page(612, 792)
        ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td", *(f"({line}) Tj T*" for line in lines), "ET"]
        stream = DecodedStreamObject()
        stream.set_data("\n".join(ops).encode("latin-1"))
        page.replace_contents(ContentStream(stream, writer))
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
    if title:
        writer.add_metadata({"/Title": title})
    for heading, page_index in outline:
        writer.add_outline_item(title=heading, page_number=page_index)
    if password:
        writer.encrypt(user_password=password, owner_password="owner-secret", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return path


def make_docs(folder: Path) -> Path:
    (folder / "guide").mkdir(parents=True)
    (folder / "guide" / "install.md").write_text(MARKDOWN, encoding="utf-8")
    (folder / "notes.html").write_text(HTML, encoding="utf-8")
    (folder / "readme.txt").write_text("Plain text stays as it is.\n", encoding="utf-8")
    write_pdf(folder / "manual.pdf", [["Getting started", "Cats purr when content."],
                                      ["Advanced use", "Dogs bark at strangers."]],
              title="Pets Handbook", outline=[("Getting started", 0), ("Advanced use", 1)])
    return folder


def add_bad_files(folder: Path) -> None:
    good = write_pdf(folder / "tmp.pdf", [["whole"]]).read_bytes()
    (folder / "tmp.pdf").unlink()
    (folder / "broken.pdf").write_bytes(good[: len(good) // 2])  # truncated: no cross-reference table, no trailer
    write_pdf(folder / "locked.pdf", [["secret plans"]], password="hunter2")
    (folder / "japanese.txt").write_bytes("こんにちは、世界。".encode("shift_jis"))
    (folder / "legacy.txt").write_bytes("Café crème, naïve façade".encode("cp1252"))
    (folder / "empty.md").write_bytes(b"")
    (folder / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (folder / ".hidden.md").write_text("# not a document", encoding="utf-8")


def corpus_of(dest: Path) -> dict[str, dict]:
    lines = (dest / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    return {r["_id"]: r for r in map(json.loads, lines)}


def test_markdown_title_text_sections_and_source_map(tmp_path):
    src = make_docs(tmp_path / "docs")
    import_folder(src, tmp_path / "out")
    doc = corpus_of(tmp_path / "out")["guide/install.md"]
    text = doc["text"]
    assert doc["title"] == "Install guide"
    assert "**" not in text and "`" not in text and "layout" not in text  # markup and front matter are gone
    assert "Read all of this first: it takes five minutes." in text
    assert "make && make check" in text and "configure script" in text
    sections = doc["metadata"]["sections"]
    assert [s[2] for s in sections] == ["Install guide", "Requirements", "Building"]
    assert sections[0][0] == 0 and sections[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(sections, sections[1:]))  # contiguous: every offset has a section
    start, end = sections[1][:2]
    assert text[start:end].startswith("Requirements") and "GNU make" in text[start:end]
    source = doc["metadata"]["source"]
    assert source["format"] == "markdown" and source["path"] == "guide/install.md"
    assert source["bytes"] == len(MARKDOWN.encode()) and len(source["sha256"]) == 64
    for word in ("all", "five", "GNU make", "configure", "make && make check", "Building"):
        location = source_location(doc["metadata"], text.index(word))
        assert location["page"] is None
        assert MARKDOWN[location["offset"]:].startswith(word), word


def test_html_drops_navigation_and_maps_text_to_the_file(tmp_path):
    src = make_docs(tmp_path / "docs")
    import_folder(src, tmp_path / "out")
    doc = corpus_of(tmp_path / "out")["notes.html"]
    text = doc["text"]
    assert doc["title"] == "Release notes"
    for boilerplate in ("Site logo", "Docs", "Blog", "Next:", "Part one", "Changes", "Related posts", "footer",
                        "skipMe", "color: red", "¶"):
        assert boilerplate not in text, boilerplate
    assert "Faster imports & smaller indexes." in text  # whitespace collapsed, entity decoded
    assert "  keep   this   spacing" in text  # <pre> kept verbatim
    assert [s[2] for s in doc["metadata"]["sections"]] == ["Version 2.0", "Fixes"]
    for word in ("Faster", "smaller", "indexes", "parser", "keep   this", "Fixes"):
        location = source_location(doc["metadata"], text.index(word))
        assert HTML[location["offset"]:].startswith(word), word


def test_pdf_title_pages_and_outline(tmp_path):
    src = make_docs(tmp_path / "docs")
    import_folder(src, tmp_path / "out")
    doc = corpus_of(tmp_path / "out")["manual.pdf"]
    text = doc["text"]
    assert doc["title"] == "Pets Handbook"
    assert doc["metadata"]["source"]["pages"] == 2
    assert source_location(doc["metadata"], text.index("Cats purr"))["page"] == 1
    location = source_location(doc["metadata"], text.index("strangers"))
    assert location["page"] == 2 and location["offset"] == text.index("strangers") - text.index("Advanced use")
    sections = doc["metadata"]["sections"]
    assert [s[2] for s in sections] == ["Getting started", "Advanced use"]
    assert text[sections[1][0]:sections[1][1]].startswith("Advanced use")


def test_title_falls_back_to_the_file_name(tmp_path):
    src = make_docs(tmp_path / "docs")
    write_pdf(src / "untitled.pdf", [["No metadata here"]])
    import_folder(src, tmp_path / "out")
    corpus = corpus_of(tmp_path / "out")
    assert corpus["readme.txt"]["title"] == "readme" and corpus["untitled.pdf"]["title"] == "untitled"
    assert corpus["readme.txt"]["text"] == "Plain text stays as it is.\n"
    assert corpus["readme.txt"]["metadata"]["sections"] == []


def test_report_lists_every_skipped_file_with_its_reason(tmp_path):
    src = make_docs(tmp_path / "docs")
    add_bad_files(src)
    report = import_folder(src, tmp_path / "out")
    assert sorted(report.imported) == ["guide/install.md", "legacy.txt", "manual.pdf", "notes.html", "readme.txt"]
    reasons = dict(report.skipped)
    assert set(reasons) == {"broken.pdf", "locked.pdf", "japanese.txt", "empty.md"}
    assert reasons["broken.pdf"].startswith("corrupt PDF")
    assert reasons["locked.pdf"].startswith("encrypted PDF (needs a password)")
    assert reasons["japanese.txt"].startswith("undecodable bytes: not utf-8 (byte 0x82 at offset 0) nor cp1252")
    assert reasons["empty.md"] == "empty file"
    assert report.unsupported == ["logo.png"]  # and the hidden file is not looked at
    assert dict(report.notes)["legacy.txt"] == "not utf-8 (byte 0xe9 at offset 3): decoded as cp1252"
    assert corpus_of(tmp_path / "out")["legacy.txt"]["text"] == "Café crème, naïve façade"
    lines = "\n".join(report.lines())
    assert lines.startswith(f"imported 5 documents from {src.resolve()}") and "skipped 5" in lines
    assert "skipped locked.pdf: encrypted PDF" in lines and "skipped logo.png: unsupported format '.png'" in lines
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert manifest["files"]["empty.md"] == {"bytes": 0, "mtime_ns": (src / "empty.md").stat().st_mtime_ns,
                                             "format": "markdown", "sha256": manifest["files"]["empty.md"]["sha256"],
                                             "status": "skipped", "reason": "empty file"}
    assert manifest["files"]["logo.png"]["status"] == "unsupported"


@pytest.mark.parametrize("bad, reason", [("broken.pdf", "corrupt PDF"), ("locked.pdf", "encrypted PDF"),
                                         ("japanese.txt", "undecodable bytes"), ("empty.md", "empty file")])
def test_on_error_fail_names_the_file_and_writes_nothing(tmp_path, bad, reason):
    src = make_docs(tmp_path / "docs")
    add_bad_files(src)
    for other in {"broken.pdf", "locked.pdf", "japanese.txt", "empty.md"} - {bad}:
        (src / other).unlink()
    with pytest.raises(DataError) as caught:
        import_folder(src, tmp_path / "out", on_error="fail")
    assert str(caught.value).startswith(f"{src.resolve() / bad}: cannot import: {reason}")
    assert "--on-error skip" in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_reimport_reads_only_changed_files(tmp_path, monkeypatch):
    from retrieval_lab.data.formats import markdown, pdf, text

    src = make_docs(tmp_path / "docs")
    (src / "empty.md").write_bytes(b"")
    parsed: list[str] = []

    def counting(module):
        def read(raw):
            parsed.append(module.__name__)
            return original(raw)

        original = module.read
        return read

    for module in (markdown, pdf, text):
        monkeypatch.setattr(module, "read", counting(module))
    first = import_folder(src, tmp_path / "out")
    assert first.parsed == 5 and first.reused == 0 and len(parsed) == 3  # html is not counted; empty.md not parsed

    parsed.clear()
    (src / "guide" / "install.md").write_text(MARKDOWN.replace("five", "ten"), encoding="utf-8")  # changed
    os.utime(src / "readme.txt", ns=(1, 1))  # touched, same content
    (src / "new.txt").write_text("A new file.", encoding="utf-8")
    (src / "notes.html").unlink()
    second = import_folder(src, tmp_path / "out")
    assert (second.parsed, second.reused) == (2, 3)  # install.md and new.txt; readme, manual and empty.md reused
    assert sorted(parsed) == ["retrieval_lab.data.formats.markdown", "retrieval_lab.data.formats.text"]
    corpus = corpus_of(tmp_path / "out")
    assert sorted(corpus) == ["guide/install.md", "manual.pdf", "new.txt", "readme.txt"]
    assert "ten minutes" in corpus["guide/install.md"]["text"]
    assert corpus["readme.txt"]["metadata"]["source"]["mtime"].startswith("1970-01-01")
    assert dict(second.skipped) == {"empty.md": "empty file"}  # a reused skip is still reported

    parsed.clear()
    third = import_folder(src, tmp_path / "out")
    assert (third.parsed, third.reused, parsed) == (0, 5, [])


def test_cli_data_import_report_and_fail(tmp_path, capsys):
    src = make_docs(tmp_path / "docs")
    add_bad_files(src)
    assert cli_main(["data", "import", str(src), "--name", "mydocs", "--root", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert f"imported 5 documents from {src.resolve()} into {(tmp_path / 'data' / 'mydocs').resolve()}" in out
    assert "skipped broken.pdf: corrupt PDF" in out and "note legacy.txt: not utf-8" in out
    assert len(load_corpus(tmp_path / "data" / "mydocs" / "corpus.jsonl")) == 5

    code = cli_main(["data", "import", str(src), "--name", "strict", "--root", str(tmp_path / "data"),
                     "--on-error", "fail"])
    err = capsys.readouterr().err
    assert code == 2 and "broken.pdf: cannot import: corrupt PDF" in err and "Traceback" not in err


def test_corpus_metadata_loads_into_the_corpus(tmp_path):
    src = make_docs(tmp_path / "docs")
    import_folder(src, tmp_path / "out")
    corpus = load_corpus(tmp_path / "out" / "corpus.jsonl")
    row = corpus.ids.index("manual.pdf")
    assert corpus.metadata[row]["source"]["pages"] == 2
    assert corpus.metadata[row]["sections"][0][2] == "Getting started"
    before = corpus.fingerprint
    corpus.metadata[row]["source"]["mtime"] = "changed"
    assert corpus.fingerprint == before


def test_dataset_path_imports_a_folder_into_the_cache_by_content(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from retrieval_lab.data.formats import text

    src = make_docs(tmp_path / "docs")
    node = OmegaConf.create({"name": "ignored", "path": str(src), "split": "test"})
    name, folder = dataset_folder(node, tmp_path / "cache")
    assert name == "docs" and folder.parent == tmp_path / "cache" / "datasets"
    assert len(load_corpus(folder / "corpus.jsonl")) == 4
    assert dataset_folder(node, tmp_path / "cache") == (name, folder)  # same content: the same import

    calls = []
    original = text.read
    monkeypatch.setattr(text, "read", lambda raw: (calls.append(raw), original(raw))[1])
    (src / "readme.txt").write_text("Changed text.", encoding="utf-8")
    _, changed = dataset_folder(node, tmp_path / "cache")
    assert changed != folder and folder.exists()  # a new content key; the earlier import is left as it was
    assert calls == [b"Changed text."]  # only the changed file was read again
    assert corpus_of(changed)["readme.txt"]["text"] == "Changed text."

    (src / "empty.md").write_bytes(b"")
    dataset_folder(node, tmp_path / "cache")  # skipped by default
    strict = OmegaConf.create({"name": "ignored", "path": str(src), "split": "test", "on_error": "fail"})
    with pytest.raises(DataError, match="empty.md: cannot import: empty file"):
        dataset_folder(strict, tmp_path / "cache")  # the cached import's skip is refused too


def test_a_folder_without_documents_is_a_clear_error(tmp_path):
    from omegaconf import OmegaConf

    (tmp_path / "pictures").mkdir()
    (tmp_path / "pictures" / "cat.png").write_bytes(b"\x89PNG")
    with pytest.raises(DataError, match="neither a BEIR folder .* nor a folder of documents"):
        dataset_folder(OmegaConf.create({"name": "x", "path": str(tmp_path / "pictures")}), tmp_path / "cache")
    with pytest.raises(DataError, match="no readable documents"):
        import_into_cache(tmp_path / "pictures", tmp_path / "cache")


def test_html_main_element_and_article_headers(tmp_path):
    from retrieval_lab.data.formats import html

    page = ("<html><body><div>Site banner text</div><div role='main'><article><header><h1>Kept title</h1></header>"
            "<p>Body text.</p><footer>Article footnote</footer></article></div><p>After main</p></body></html>")
    extracted = html.read(page.encode())
    assert extracted.text == "Kept title\n\nBody text.\n\nArticle footnote"
    assert extracted.title == "Kept title" and extracted.sections == [[0, len(extracted.text), "Kept title", ["Kept title"], None]]
    assert html.read(b"<nav><a href='/'>home</a></nav>").text == ""
    latin = html.read("<meta charset='iso-8859-1'><p>Gr\u00fc\u00dfe</p>".encode("latin-1"))
    assert latin.text == "Gr\u00fc\u00dfe" and latin.details["encoding"] == "cp1252"


def test_html_texinfo_permalinks_footnote_markers_and_letter_bars():
    """The markup of Texinfo 6.8 manuals (as in Debian's R manuals): definition terms end in a permalink pilcrow,
    footnote references are superscripts inside in-page links, and each index opens with a "Jump to:" letter bar."""
    from retrieval_lab.data.formats import html

    page = """<html><head><title>Manual</title></head><body>
<dl><dt id='index-FLIBS'><span><code>FLIBS</code><a href='#index-FLIBS' class='copiable-anchor'> &para;</a></span></dt>
<dd><p>Fortran libraries.</p></dd>
<dt><span>qqnorm(x)<a href='#q'> &#182;</a></span></dt></dl>
<p>R is similar to the award-winning<a id="DOCF1" href="#FOOT1"><sup>1</sup></a> S system, x<sup>2</sup>
and <a href="https://example.org/"><sup>new</sup> site</a>.</p>
<h2 class="appendix">Concept index</h2>
<table summary=""><tr><th valign="top">Jump to: &nbsp; </th><td><a class="summary-letter" href="#cp-B"><b>B</b></a>
 &nbsp; <a class="summary-letter" href="#cp-C"><b>C</b></a>
 &nbsp; <a class="summary-letter" href="#cp-F"><b>F</b></a>
 &nbsp; </td></tr></table>
<table><tr><td>Name</td><td><a href="#a">alpha</a></td><td><a href="#b">beta</a></td><td><a href="#c">gamma</a></td>
<td>a table whose text is more than a label: kept</td></tr></table>
<div class="footnote"><h5><a id="FOOT1" href="#DOCF1">(1)</a></h5><p>Footnote text.</p></div>
</body></html>"""
    text = html.read(page.encode()).text
    assert "¶" not in text
    assert "FLIBS\n\nFortran libraries.\n\nqqnorm(x)\n\nR is" in text
    assert "award-winning S system, x2" in text  # the marker is gone; a plain superscript stays
    assert "new site" in text  # a superscript in a link to another page is not a footnote marker
    assert "Jump to" not in text and "Concept index\n\nName | alpha" in text
    assert "(1)\n\nFootnote text." in text


def test_include_patterns_narrow_the_import_and_key_the_cache(tmp_path, capsys):
    from omegaconf import OmegaConf

    src = make_docs(tmp_path / "docs")
    (src / "guide" / "install.html").write_text(HTML, encoding="utf-8")
    report = import_folder(src, tmp_path / "only_html", include=["*.html"])
    assert sorted(report.imported) == ["guide/install.html", "notes.html"]  # matched at any depth
    assert report.excluded == 3 and "left out 3 files not matching include *.html" in "\n".join(report.lines())
    assert sorted(corpus_of(tmp_path / "only_html")) == ["guide/install.html", "notes.html"]
    assert sorted(import_folder(src, tmp_path / "guide", include="guide/*").imported) == [
        "guide/install.html", "guide/install.md"]

    every = OmegaConf.create({"name": "x", "path": str(src), "split": "test", "include": None})
    html_only = OmegaConf.create({"name": "x", "path": str(src), "split": "test", "include": ["*.html"]})
    _, all_folder = dataset_folder(every, tmp_path / "cache")
    _, html_folder = dataset_folder(html_only, tmp_path / "cache")
    assert all_folder != html_folder and len(corpus_of(all_folder)) == 5 and len(corpus_of(html_folder)) == 2

    with pytest.raises(DataError, match=r"matching dataset.include=\['\*.rst'\]"):
        dataset_folder(OmegaConf.create({"name": "x", "path": str(src), "include": ["*.rst"]}), tmp_path / "cache")
    with pytest.raises(ConfigError, match="dataset.include"):
        import_folder(src, tmp_path / "bad", include=[3])

    assert cli_main(["data", "import", str(src), "--name", "pdfs", "--root", str(tmp_path / "data"),
                     "--include", "*.pdf", "--include", "*.txt"]) == 0
    assert "imported 2 documents" in capsys.readouterr().out
    assert sorted(corpus_of(tmp_path / "data" / "pdfs")) == ["manual.pdf", "readme.txt"]


def test_r_manuals_option_resolves_its_questions_from_any_directory(tmp_path, monkeypatch):
    from retrieval_lab.config import compose_config
    from retrieval_lab.data import dataset_name, questions_path
    from retrieval_lab.pipeline.tracked import experiment_name

    monkeypatch.chdir(tmp_path)  # not the checkout: the questions come from the project home
    cfg = compose_config(["dataset=r_manuals"])
    assert questions_path(cfg.dataset) == REPO / "experiments" / "own-docs" / "questions.jsonl"
    assert list(cfg.dataset.include) == ["*.html"] and cfg.dataset.on_error == "skip"
    assert dataset_name(cfg.dataset) == experiment_name(cfg) == "r_manuals"
    (tmp_path / "mine.jsonl").write_text('{"question": "q", "doc": "a.md"}\n', encoding="utf-8")
    assert questions_path(compose_config(["dataset.questions=mine.jsonl"]).dataset) == Path("mine.jsonl")
    with pytest.raises(ConfigError, match="dataset.questions"):
        questions_path(compose_config(["dataset.questions=nowhere.jsonl"]).dataset)


def test_a_reused_import_reports_what_it_left_out_from_its_manifest(tmp_path, caplog):
    """The second use of a cached import reads no file, yet says what the first import skipped and left out."""
    from retrieval_lab.data.folder import manifest_report, skipped_files

    src = make_docs(tmp_path / "docs")
    add_bad_files(src)
    first = import_into_cache(src, tmp_path / "cache", include=["*.pdf", "*.md"])
    caplog.clear()
    with caplog.at_level("WARNING", logger="retrieval_lab.data.folder"):
        assert import_into_cache(src, tmp_path / "cache", include=["*.pdf", "*.md"]) == first
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert f"2 documents from {src}, as imported before" in said and "skipped 3" in said, said
    assert "left out 5 files not matching include *.pdf, *.md" in said
    assert "skipped broken.pdf: " in said and "skipped locked.pdf: " in said and "skipped empty.md: empty file" in said
    assert sorted(skipped_files(first)) == ["broken.pdf", "empty.md", "locked.pdf"]
    assert skipped_files(src) == {} and manifest_report(first).cached
