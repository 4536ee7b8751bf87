"""A BEIR corpus written out as a folder of documents (Markdown, HTML, plain text, PDF) plus a questions JSONL, and
what the own-documents importer reads back compared with the original: the round trip that checks the folder path
against the BEIR path (benchmarks/folder_consistency.py on SciFact; tests/integration/test_folder_consistency.py).

Formats are assigned in turn by corpus order. The questions JSONL has question = the query, `doc` = the relevant
documents' relative paths, `evidence` = the evidence quotes where the dataset has them, `id` = the BEIR query id.

How each document is written, so that what the importer reads back is the BEIR title and text:
- `markdown/<id>.md`: the title as YAML front matter, the text as one paragraph with every ASCII punctuation mark
  backslash-escaped (CommonMark allows escaping any of them), so no character of an abstract turns into markup;
- `html/<id>.html`: the title as `<title>`, the text HTML-escaped in one `<p>`;
- `text/<id>/<title>.txt`: a text file's title is its file name, so the file is named by the title, in a folder
  named by the id; a `/` becomes `∕` (U+2215) and a title longer than 240 bytes is cut, which changes those titles;
- `pdf/<id>.pdf`: the title as metadata, the text wrapped at spaces into lines of at most 90 characters, 50 lines a
  page, shown in a Type0 font with Identity-H encoding and a ToUnicode map (as word processors and LaTeX write
  PDFs), so every character survives; the font program is not embedded (a viewer substitutes glyphs; text
  extraction reads only the ToUnicode map). Lines are never hyphenated.

`compare_corpora` counts, per format, the documents whose imported title or text differs from the original and how
(`difference`: whitespace only, line breaks, end-of-line hyphenation, other characters); `same_evidence` and
`mapped_qrels` compare the gold. Running one pipeline over both datasets: `retrieval_lab.pipeline.roundtrip`.
"""
from __future__ import annotations

import hashlib
import html
import io
import json
import re
import shutil
import string
from collections import Counter
from pathlib import Path

from retrieval_lab.errors import DataError

FORMATS = ("markdown", "html", "text", "pdf")
LAYOUT_VERSION = 1  # bump when the way documents are written changes: the folder is then written again
STAMP = ".written.json"  # hidden: the importer does not look at it
TITLE_BYTES = 240  # file names are limited to 255 bytes; room for ".txt"
PDF_LINE_CHARS = 90
PDF_PAGE_LINES = 50
_MARKDOWN_ESCAPED = re.compile("([" + re.escape(string.punctuation) + "])")


# --- writing the documents ---------------------------------------------------------------------------------------
def format_of(position: int) -> str:
    return FORMATS[position % len(FORMATS)]


def text_file_title(title: str) -> str:
    """The file name (without .txt) that gives a text document this title, as close as a file name allows."""
    name = title.replace("/", "\u2215").replace("\x00", "").strip() or "untitled"
    if name.startswith("."):
        name = "\u2024" + name[1:]  # a leading dot would hide the file from the importer
    cut = name.encode("utf-8")[:TITLE_BYTES].decode("utf-8", errors="ignore")
    return cut.rstrip()


def relative_path(doc_id: str, title: str, fmt: str) -> str:
    if fmt == "text":
        return f"text/{doc_id}/{text_file_title(title)}.txt"
    suffix = {"markdown": "md", "html": "html", "pdf": "pdf"}[fmt]
    return f"{fmt}/{doc_id}.{suffix}"


def doc_id_of(path: str) -> str:
    """The BEIR document id a relative path was written for (the inverse of `relative_path`)."""
    parts = path.split("/")
    return parts[1] if parts[0] == "text" else parts[1].rsplit(".", 1)[0]


def markdown_document(title: str, text: str) -> str:
    import yaml

    front = yaml.safe_dump({"title": title}, allow_unicode=True, width=1 << 20).strip()
    body = _MARKDOWN_ESCAPED.sub(r"\\\1", text)
    return f"---\n{front}\n---\n\n{body}\n"


def html_document(title: str, text: str) -> str:
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>\n'
            f"<body>\n<p>{html.escape(text)}</p>\n</body></html>\n")


def wrap(text: str, width: int = PDF_LINE_CHARS) -> list[str]:
    """Lines of at most `width` characters (a longer word has a line of its own), broken at single spaces; the
    spaces of a run of several stay on the line before the break."""
    lines, line = [], ""
    for word in re.split(r"(?<=\S) (?=\S)", text):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return lines


def _to_unicode_cmap() -> bytes:
    """A ToUnicode CMap mapping every 2-byte code to the BMP code point of the same value."""
    ranges = "\n".join(f"<{hi:02X}00> <{hi:02X}FF> <{hi:02X}00>" for hi in range(256) if hi not in range(0xD8, 0xE0))
    return ("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
            "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
            "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
            f"248 beginbfrange\n{ranges}\nendbfrange\n"
            "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n").encode("ascii")


def pdf_document(title: str, text: str) -> bytes:
    from pypdf import PdfWriter
    from pypdf.generic import (ArrayObject, ContentStream, DecodedStreamObject, DictionaryObject, NameObject,
                               NumberObject, TextStringObject)

    if any(ord(c) > 0xFFFF for c in text):
        raise ValueError("characters beyond the Basic Multilingual Plane need surrogate codes in the ToUnicode map")
    writer = PdfWriter()  # `_add_object` below: pypdf has no public way to add an indirect object
    cmap = DecodedStreamObject()
    cmap.set_data(_to_unicode_cmap())
    descriptor = DictionaryObject({
        NameObject("/Type"): NameObject("/FontDescriptor"), NameObject("/FontName"): NameObject("/DejaVuSans"),
        NameObject("/Flags"): NumberObject(32), NameObject("/ItalicAngle"): NumberObject(0),
        NameObject("/Ascent"): NumberObject(928), NameObject("/Descent"): NumberObject(-236),
        NameObject("/CapHeight"): NumberObject(729), NameObject("/StemV"): NumberObject(80),
        NameObject("/FontBBox"): ArrayObject([NumberObject(v) for v in (-1021, -463, 1793, 1232)])})
    cid_font = DictionaryObject({
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/CIDFontType2"),
        NameObject("/BaseFont"): NameObject("/DejaVuSans"), NameObject("/DW"): NumberObject(600),
        NameObject("/CIDSystemInfo"): DictionaryObject({
            NameObject("/Registry"): TextStringObject("Adobe"), NameObject("/Ordering"): TextStringObject("Identity"),
            NameObject("/Supplement"): NumberObject(0)}),
        NameObject("/FontDescriptor"): writer._add_object(descriptor),
        NameObject("/CIDToGIDMap"): NameObject("/Identity")})
    font = writer._add_object(DictionaryObject({
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type0"),
        NameObject("/BaseFont"): NameObject("/DejaVuSans"), NameObject("/Encoding"): NameObject("/Identity-H"),
        NameObject("/DescendantFonts"): ArrayObject([writer._add_object(cid_font)]),
        NameObject("/ToUnicode"): writer._add_object(cmap)}))
    lines = wrap(text)
    for first in range(0, max(len(lines), 1), PDF_PAGE_LINES):
        page = writer.add_blank_page(612, 792)
        shown = [f"<{line.encode('utf-16-be').hex().upper()}> Tj T*" for line in lines[first:first + PDF_PAGE_LINES]]
        stream = DecodedStreamObject()
        stream.set_data("\n".join(["BT", "/F1 8 Tf", "13 TL", "36 756 Td", *shown, "ET"]).encode("ascii"))
        page.replace_contents(ContentStream(stream, writer))
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject(
            {NameObject("/F1"): font})})
    writer.add_metadata({"/Title": title})
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def document_bytes(title: str, text: str, fmt: str) -> bytes:
    if fmt == "markdown":
        return markdown_document(title, text).encode("utf-8")
    if fmt == "html":
        return html_document(title, text).encode("utf-8")
    if fmt == "text":
        return text.encode("utf-8")
    return pdf_document(title, text)


def write_documents(corpus, folder: Path) -> dict[str, str]:
    """Write every document of `corpus` under `folder` in its format; returns doc id -> relative path. Skipped when
    the folder's stamp says it holds this corpus in this layout already."""
    paths = {doc: relative_path(doc, title, format_of(i))
             for i, (doc, title) in enumerate(zip(corpus.ids, corpus.titles))}
    key = hashlib.sha256(json.dumps([LAYOUT_VERSION, corpus.fingerprint]).encode()).hexdigest()
    stamp = folder / STAMP
    if stamp.exists() and json.loads(stamp.read_text(encoding="utf-8")).get("key") == key:
        return paths
    if folder.exists() and any(folder.iterdir()) and not stamp.exists():
        raise DataError(folder, f"holds files that write_documents did not write (no {STAMP} stamp); writing the "
                        "documents there would delete them", fix="give an empty or new folder")
    shutil.rmtree(folder, ignore_errors=True)
    for i, (doc, title, text) in enumerate(zip(corpus.ids, corpus.titles, corpus.texts)):
        path = folder / paths[doc]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(document_bytes(title, text, format_of(i)))
    stamp.write_text(json.dumps({"key": key, "documents": len(paths)}) + "\n", encoding="utf-8")
    return paths


def write_questions(dataset, paths: dict[str, str], out: Path) -> int:
    """The dataset's queries as a questions JSONL; returns the number of evidence quotes written."""
    row = dataset.corpus.index_of()
    quotes = 0
    with open(out, "w", encoding="utf-8") as fh:
        for qid, question in zip(dataset.queries.ids, dataset.queries.texts):
            record = {"id": qid, "question": question,
                      "doc": [paths[d] for d, grade in dataset.qrels[qid].items() if grade > 0 and d in paths]}
            evidence = [dataset.corpus.texts[row[d]][s:e] for d, s, e in dataset.evidence.get(qid, [])]
            if evidence:
                record["evidence"] = evidence
                quotes += len(evidence)
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return quotes


# --- comparing -----------------------------------------------------------------------------------------------------
def difference(beir: str, imported: str) -> str:
    """How an imported string differs from the BEIR one: same; whitespace (equal once whitespace runs are folded);
    line breaks (the same, with line breaks where BEIR has spaces); hyphenation (equal once words hyphenated at a
    line end are joined too); characters (anything else)."""
    if beir == imported:
        return "same"
    if beir.split() == imported.split():
        return "line breaks" if imported.count("\n") > beir.count("\n") else "whitespace"
    unhyphenated = re.sub(r"(?<=\w)-[ \t]*\n\s*(?=\w)", "", imported)
    if beir.split() == unhyphenated.split():
        return "hyphenation"
    return "characters"


def character_changes(beir: str, imported: str) -> Counter:
    """Characters of the BEIR text that the imported text lost or replaced (whitespace ignored)."""
    import difflib

    a, b = "".join(beir.split()), "".join(imported.split())
    lost: Counter = Counter()
    for op, i1, i2, _, _ in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op in ("delete", "replace"):
            lost.update(a[i1:i2])
    return lost


def compare_corpora(beir, folder_corpus, paths: dict[str, str]) -> dict:
    """Per format: documents, imported, and for titles and texts the count per kind of difference; plus examples
    of changed characters."""
    imported = {doc_id_of(p): i for i, p in enumerate(folder_corpus.ids)}
    stats: dict[str, dict] = {}
    lost: dict[str, Counter] = {}
    for i, doc in enumerate(beir.ids):
        fmt = paths[doc].split("/")[0]
        entry = stats.setdefault(fmt, {"documents": 0, "imported": 0, "title": Counter(), "text": Counter()})
        entry["documents"] += 1
        if doc not in imported:
            continue
        entry["imported"] += 1
        row = imported[doc]
        entry["title"][difference(beir.titles[i], folder_corpus.titles[row])] += 1
        kind = difference(beir.texts[i], folder_corpus.texts[row])
        entry["text"][kind] += 1
        if kind == "characters":
            lost.setdefault(fmt, Counter()).update(character_changes(beir.texts[i], folder_corpus.texts[row]))
    for fmt, entry in stats.items():
        entry["title"], entry["text"] = dict(entry["title"]), dict(entry["text"])
        entry["lost_characters"] = {c: n for c, n in lost.get(fmt, Counter()).most_common(10)}
    return stats


def same_evidence(beir, own) -> bool:
    """Whether every query's evidence spans cover the same text of the same documents on both paths (compared with
    whitespace folded, as a PDF's line breaks move no word)."""
    def quotes(dataset, to_doc_id):
        row = dataset.corpus.index_of()
        return {q: sorted((to_doc_id(d), " ".join(dataset.corpus.texts[row[d]][s:e].split())) for d, s, e in spans)
                for q, spans in dataset.evidence.items()}

    return quotes(beir, lambda d: d) == quotes(own, doc_id_of)


def mapped_qrels(qrels, to_doc_id=doc_id_of) -> dict[str, dict[str, int]]:
    return {q: {to_doc_id(d): g for d, g in docs.items()} for q, docs in qrels.items()}


# --- loading -------------------------------------------------------------------------------------------------------
def load_both(beir_overrides: list[str], folder: Path, questions: Path, cache_dir: str | None = None):
    """(BEIR dataset, folder dataset) as `run_experiment` would load them."""
    from retrieval_lab.config import compose_config
    from retrieval_lab.data import load_dataset

    beir = load_dataset(compose_config(beir_overrides).dataset, cache_root=cache_dir)
    own = load_dataset(compose_config(folder_overrides(beir_overrides, folder, questions)).dataset,
                       cache_root=cache_dir)
    return beir, own


def folder_overrides(beir_overrides: list[str], folder: Path, questions: Path) -> list[str]:
    kept = [o for o in beir_overrides if not o.startswith("dataset.path=")]
    return [*kept, f"dataset.path={folder}", f"dataset.questions={questions}"]
