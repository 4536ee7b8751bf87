"""What an imported folder indexes: boilerplate repeated across the folder is cut with the source map kept exact,
line endings are normalized, sections follow every heading level (with their heading path and anchor) up to a size
cap. Every file is written by the test."""
from __future__ import annotations

import json
from pathlib import Path

from retrieval_lab.data.folder import EXTRACTED, MANIFEST, import_folder
from retrieval_lab.data.formats import SECTION_MAX_CHARS, reader, whole_sections
from retrieval_lab.data.places import source_location
from retrieval_lab.data.questions import load_questions
from retrieval_lab.data.beir import load_corpus

FOOTER = ('<div id="footer"><p>Part of the tool(1) suite</p>\n'
          '<div id="footer-text">Last updated 2024-05-{day:02d} 00:35:55 UTC</div></div>')


def man_page(name: str, day: int, body: str) -> str:
    """An asciidoc-style man page: NAME and GIT sections on every page, a footer with the page's own date."""
    return (f'<html><head><title>{name}(1)</title></head><body><div id="content">'
            f'<div class="sect1"><h2 id="_name">NAME</h2><p>{name} - {body.split(".")[0]}</p></div>\n'
            f'<div class="sect1"><h2 id="_description">DESCRIPTION</h2><p>{body}</p></div>\n'
            '<div class="sect1"><h2 id="_git">GIT</h2><p>Part of the tool(1) suite</p></div></div>\n'
            + FOOTER.format(day=day) + "</body></html>")


def write_pages(folder: Path, n: int = 8) -> dict[str, str]:
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
    bodies = {f"tool-{w}.html": f"Command {w} frobs the {w} widget. It never frobs twice on Sundays."
              for w in words[:n]}
    folder.mkdir(parents=True, exist_ok=True)
    for i, (name, body) in enumerate(bodies.items()):
        (folder / name).write_text(man_page(name[:-5], i + 1, body), encoding="utf-8")
    return bodies


def corpus_of(dest: Path) -> dict[str, dict]:
    return {r["_id"]: r for r in map(json.loads, (dest / "corpus.jsonl").read_text(encoding="utf-8").splitlines())}


def test_boilerplate_repeated_across_the_folder_is_cut_and_the_source_map_stays_exact(tmp_path):
    bodies = write_pages(tmp_path / "docs")
    (tmp_path / "docs" / "odd.html").write_text("<html><body><h1>Odd one</h1><p>Part of the tool(1) suite, but "
                                                "inside a sentence of content.</p></body></html>", encoding="utf-8")
    report = import_folder(tmp_path / "docs", tmp_path / "out")
    corpus = corpus_of(tmp_path / "out")
    for name, body in bodies.items():
        record = corpus[name]
        text, raw = record["text"], (tmp_path / "docs" / name).read_text(encoding="utf-8")
        assert "Last updated" not in text and "Part of the tool" not in text and "GIT" not in text
        assert body in text and text.startswith("NAME") and text.endswith(body)
        for offset in range(len(text)):  # every kept character maps to itself in the file
            if not text[offset].isspace():
                assert raw[source_location(record["metadata"], offset)["offset"]] == text[offset]
        assert [s[2] for s in record["metadata"]["sections"]] == ["NAME", "DESCRIPTION"]
        assert record["metadata"]["boilerplate"]["lines"] == 4  # GIT, the suite line twice, Last updated
        assert all(text[o:].startswith(("NAME", "Command", "DESCRIPTION", name[:-5]))
                   for o, _ in record["metadata"]["anchors"])
    assert "inside a sentence" in corpus["odd.html"]["text"]  # a line that only holds the footer's words stays
    assert report.boilerplate.lines == 8 * 4 and report.boilerplate.threshold == 6  # 60% of 9 documents
    line = "\n".join(report.lines())
    assert "boilerplate: dropped 32 lines" in line and "'Part of the tool(1) suite' (8 docs)" in line
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert manifest["boilerplate"]["lines"] == 32 and manifest["boilerplate"]["chars"] > 0
    # the text as read stays beside the corpus, so a re-import cuts again from it rather than from cut text
    extracted = [json.loads(x) for x in (tmp_path / "out" / EXTRACTED).read_text().splitlines()]
    assert all("Last updated" in r["text"] for r in extracted if r["_id"] != "odd.html")
    again = import_folder(tmp_path / "docs", tmp_path / "out")
    assert again.reused == 9 and corpus_of(tmp_path / "out") == corpus


def test_evidence_quotes_still_resolve_after_boilerplate_is_cut(tmp_path):
    write_pages(tmp_path / "docs")
    import_folder(tmp_path / "docs", tmp_path / "out")
    corpus = load_corpus(tmp_path / "out" / "corpus.jsonl")
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "how often on Sundays?", "evidence": ["never frobs twice on "
                                     "Sundays"], "doc": "tool-delta.html"}) + "\n")
    gold = load_questions(questions, corpus)
    (doc, start, end), = gold.evidence["q1"]
    assert corpus.texts[corpus.index_of()[doc]][start:end] == "never frobs twice on Sundays"


def test_a_small_folder_keeps_its_shared_lines(tmp_path):
    write_pages(tmp_path / "docs", n=3)  # 3 documents: too few to tell a footer from shared content
    report = import_folder(tmp_path / "docs", tmp_path / "out")
    assert report.boilerplate.lines == 0 and "nothing dropped" in report.boilerplate.line()
    assert all("Last updated" in r["text"] for r in corpus_of(tmp_path / "out").values())


def test_crlf_line_endings_become_lf_with_the_map_exact(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "code.html").write_bytes(b"<html><body><h1>Build</h1>\r\n<pre>\r\nmake all\r\nmake check</pre>"
                                       b"\r\n<p>Then\r\ninstall.</p></body></html>")
    (folder / "notes.txt").write_bytes(b"first line\r\nsecond line\rthird line\r\n")
    (folder / "guide.md").write_bytes(b"# Guide\r\n\r\n```\r\nmake all\r\nmake check\r\n```\r\n")
    import_folder(folder, tmp_path / "out")
    corpus = corpus_of(tmp_path / "out")
    assert corpus["code.html"]["text"] == "Build\n\nmake all\nmake check\n\nThen install."
    assert corpus["notes.txt"]["text"] == "first line\nsecond line\nthird line\n"
    assert corpus["guide.md"]["text"] == "Guide\n\nmake all\nmake check"
    for name, record in corpus.items():
        raw = (folder / name).read_bytes().decode("utf-8")
        for offset, char in enumerate(record["text"]):
            at = source_location(record["metadata"], offset)
            if not char.isspace():
                assert raw[at["offset"]] == char
            elif char == "\n" and name != "code.html":
                assert raw[at["offset"]] in "\r\n"
    lines = {"code.html": ("make check", 4), "notes.txt": ("third", 3), "guide.md": ("make check", 5)}
    for name, (words, line) in lines.items():
        assert source_location(corpus[name]["metadata"], corpus[name]["text"].index(words))["line"] == line


def test_sections_follow_every_heading_level_with_paths_and_anchors():
    html = ('<html><body><h1 id="top">Manual</h1><p>Intro.</p><div class="sect1" id="cfg"><h2>Configuration</h2>'
            '<p>About settings.</p><h3 id="vars">Variables</h3><p>Set them.</p><h4>core.editor</h4><p>An editor.'
            '</p></div><h2 id="faq">FAQ</h2><p>Questions.</p></body></html>').encode()
    extracted = reader("html")(html)
    by_heading = {s[2]: s for s in extracted.sections}
    assert by_heading["Variables"][3] == ["Manual", "Configuration", "Variables"]
    assert by_heading["core.editor"][3] == ["Manual", "Configuration", "Variables", "core.editor"]
    assert by_heading["FAQ"][3] == ["Manual", "FAQ"]
    assert (by_heading["Configuration"][4], by_heading["Variables"][4], by_heading["core.editor"][4],
            by_heading["FAQ"][4]) == ("cfg", "vars", "vars", "faq")
    markdown = b"# Guide\n\n## Set up\n\ntext\n\n### Proxy: HTTP(S)\n\nmore\n\n## Set up\n\nagain\n"
    sections = reader("markdown")(markdown).sections
    assert [(s[3], s[4]) for s in sections] == [
        (["Guide"], "guide"), (["Guide", "Set up"], "set-up"), (["Guide", "Set up", "Proxy: HTTP(S)"], "proxy-https"),
        (["Guide", "Set up"], "set-up-1")]


def test_a_long_section_is_cut_into_parts_that_keep_its_heading(tmp_path):
    entries = "".join(f"<dt>option.{i}</dt><dd><p>Option {i} changes how things are done, in detail.</p></dd>"
                      for i in range(800))
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "config.html").write_text(f'<html><body><h1>config</h1><h2 id="_variables">Variables</h2><dl>{entries}'
                                        '</dl><h2 id="_end">End</h2><p>Done.</p></body></html>', encoding="utf-8")
    import_folder(folder, tmp_path / "out")
    record = corpus_of(tmp_path / "out")["config.html"]
    text, sections = record["text"], record["metadata"]["sections"]
    variables = [s for s in sections if s[2] == "Variables"]
    assert len(text) > 40000 and len(variables) > 10
    assert all(e - s <= SECTION_MAX_CHARS for s, e, *_ in sections)
    assert all(s[3] == ["config", "Variables"] and s[4] == "_variables" for s in variables)
    assert all(text[e - 1] == "\n" or e == len(text) for _, e, *_ in variables[:-1])  # cut at line breaks
    assert all(a[1] == b[0] for a, b in zip(sections, sections[1:]))
    merged = whole_sections(sections)  # as one again, e.g. for questions made from headings
    assert [h for _, _, h in merged] == ["config", "Variables", "End"]
    where = source_location(record["metadata"], text.index("option.700"))
    assert where["heading_path"] == ["config", "Variables"] and where["link"] == "config.html#_variables"


def test_an_import_on_the_fly_says_on_the_console_what_it_cut(tmp_path, caplog):
    import logging

    from retrieval_lab.data.import_cache import import_into_cache

    write_pages(tmp_path / "docs")
    with caplog.at_level(logging.WARNING):
        import_into_cache(tmp_path / "docs", tmp_path / "cache")
    assert "boilerplate: dropped 32 lines" in caplog.text


def test_a_heading_inside_a_note_heads_only_the_note():
    """DocBook puts admonitions in their own block with a heading: `<div class="note"><h3>Note</h3>...</div>`. The
    options after the note belong to "Options" again, not to "Note"."""
    html = ('<html><body><h1>pg_dump</h1><div class="refsect1" id="opts"><h2>Options</h2><p>-a dumps data.</p>'
            '<div class="note"><h3 class="title">Note</h3><p>Beware of triggers.</p></div>'
            '<p>-s dumps only the schema.</p><div class="note"><h3>Note</h3><p>Second note.</p></div>'
            '<div class="note"><h3>Tip</h3><p>A tip.</p></div></div>'
            '<div class="refsect1" id="ex"><h2>Examples</h2><p>pg_dump mydb</p></div></body></html>').encode()
    extracted = reader("html")(html)
    text = extracted.text
    where = {text[s:e].strip().split("\n")[-1]: (p, a) for s, e, _, p, a in extracted.sections}
    assert where["Beware of triggers."] == (["pg_dump", "Options", "Note"], "opts")
    assert where["-s dumps only the schema."] == (["pg_dump", "Options"], "opts")  # Options again, not Note
    assert where["A tip."] == (["pg_dump", "Options", "Tip"], "opts")
    assert where["pg_dump mydb"] == (["pg_dump", "Examples"], "ex")
    assert [s[2] for s in extracted.sections] == ["pg_dump", "Options", "Note", "Options", "Note", "Tip", "Examples"]
    assert all(a[1] == b[0] for a, b in zip(extracted.sections, extracted.sections[1:]))
