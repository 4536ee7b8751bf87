"""Consistency of the own-documents path with the BEIR path, on SciFact.

SciFact's corpus is written out as a folder of documents in four formats (Markdown, HTML, plain text, PDF; assigned
in turn by corpus order, so about 1,300 of each), and its test claims as a questions JSONL (question = the claim,
`doc` = the relevant documents' relative paths, `evidence` = the rationale sentences where the query metadata has
them, `id` = the BEIR query id). Each configuration is then evaluated twice with `run_experiment`: over the BEIR
folder (`dataset=scifact`) and over the folder of documents (`dataset.path=<folder> dataset.questions=<jsonl>`,
imported on the fly). Both should give the same qrels and, up to what extraction changes, the same metrics.

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

Per format, the share of documents whose imported title or text differs from the BEIR one, and how (whitespace
only, line breaks, end-of-line hyphenation, or other characters: `difference`), and whether the evidence quotes were
located at the same sentences. Where a configuration's nDCG@10 differs (`--attribute`), the folder path is run again
with one format at a time given back its BEIR titles and texts, then all of them (`attribute`).

    nice -n 10 .venv/bin/python benchmarks/folder_consistency.py [--configs bm25 wordllama minilm_l6_int8] \
        [--attribute wordllama] [--folder DIR] [--out benchmarks/results/folder_consistency.json]

The folder defaults to `<cache>/folder-consistency/scifact-documents` (the cache root: $RETRIEVAL_LAB_CACHE, else
~/.cache/retrieval-lab); it is written once per corpus and layout (a hidden stamp file records which).
"""
from __future__ import annotations

import argparse
import hashlib
import html
import io
import json
import os
import re
import string
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CI", "1")  # no progress bars in the log

FORMATS = ("markdown", "html", "text", "pdf")
LAYOUT_VERSION = 1  # bump when the way documents are written changes: the folder is then written again
STAMP = ".written.json"  # hidden: the importer does not look at it
TITLE_BYTES = 240  # file names are limited to 255 bytes; room for ".txt"
PDF_LINE_CHARS = 90
PDF_PAGE_LINES = 50
CONFIGS = {
    "bm25": ["retriever=bm25"],
    "wordllama": ["retriever=dense", "embedder=wordllama"],
    "minilm_l6_int8": ["retriever=dense", "embedder=minilm_l6", "embedder.backend=onnx_int8"],
}
METRICS = ("ndcg_at_10", "recall_at_100")
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
    """The SciFact id a relative path was written for (the inverse of `relative_path`)."""
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
        raise SystemExit(f"{folder} holds files this script did not write: give another --folder")
    import shutil

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


# --- evaluating ------------------------------------------------------------------------------------------------------
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


def compare_runs(beir_dataset, folder_dataset, config: list[str], base: list[str], folder: Path,
                 questions: Path, paths: dict[str, str]) -> dict:
    """Both paths' metrics for one retriever configuration, their differences, and where the per-query nDCG@10
    differs: counts of those queries by the formats of their relevant documents."""
    from retrieval_lab.config import compose_config
    from retrieval_lab.pipeline import run_experiment

    result = {}
    per_query = {}
    for label, overrides, dataset in (("beir", base, beir_dataset),
                                      ("folder", folder_overrides(base, folder, questions), folder_dataset)):
        start = time.perf_counter()
        outcome = run_experiment(compose_config([*overrides, *config]), dataset=dataset)
        means = outcome.evaluation.means
        result[label] = {"queries": len(outcome.evaluation.query_ids), "seconds": time.perf_counter() - start,
                         **{m: means[m] for m in METRICS}}
        per_query[label] = dict(zip(outcome.evaluation.query_ids, outcome.evaluation.per_query["ndcg_at_10"]))
    result["difference"] = {m: result["folder"][m] - result["beir"][m] for m in METRICS}
    changed = [q for q in per_query["beir"] if abs(per_query["beir"][q] - per_query["folder"].get(q, 0.0)) > 1e-9]
    formats: Counter = Counter()
    for q in changed:
        formats.update(sorted({paths[d].split("/")[0] for d in beir_dataset.qrels[q] if d in paths}))
    result["queries_ndcg_changed"] = len(changed)
    result["changed_by_relevant_format"] = dict(formats)
    return result


def attribute(beir_dataset, folder_dataset, config: list[str], base: list[str], folder: Path, questions: Path,
              paths: dict[str, str], folder_ndcg: float) -> dict:
    """Where a difference comes from: the folder path run again with one format's documents given back their BEIR
    title and text (everything else as imported); the nDCG@10 change that undoing each format brings. "all" gives
    every document back its BEIR title and text: what still differs then comes from the documents' order alone
    (the folder corpus is sorted by path), which decides which passages share an encoding batch."""
    from dataclasses import replace

    from retrieval_lab.config import compose_config
    from retrieval_lab.pipeline import run_experiment
    from retrieval_lab.types import Corpus

    beir_row = beir_dataset.corpus.index_of()
    corpus = folder_dataset.corpus
    gain = {}
    for fmt in (*FORMATS, "all"):
        titles, texts = list(corpus.titles), list(corpus.texts)
        for i, path in enumerate(corpus.ids):
            if fmt in ("all", path.split("/")[0]):
                row = beir_row[doc_id_of(path)]
                titles[i], texts[i] = beir_dataset.corpus.titles[row], beir_dataset.corpus.texts[row]
        undone = replace(folder_dataset, corpus=Corpus(corpus.ids, titles, texts, corpus.metadata))
        outcome = run_experiment(compose_config([*folder_overrides(base, folder, questions), *config]), dataset=undone)
        gain[fmt] = outcome.evaluation.means["ndcg_at_10"] - folder_ndcg
    return gain


def main() -> None:
    from retrieval_lab.cache import default_cache_dir
    from retrieval_lab.config import compose_config
    from retrieval_lab.data import load_dataset

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["bm25", "wordllama"], choices=sorted(CONFIGS))
    parser.add_argument("--attribute", nargs="*", default=["wordllama"], choices=sorted(CONFIGS),
                        help="configurations whose difference is attributed to formats (four more runs each, every "
                             "one embedding the whole corpus again for a dense retriever)")
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/folder_consistency.json"))
    args = parser.parse_args()
    folder = (args.folder or default_cache_dir() / "folder-consistency" / "scifact-documents").expanduser().resolve()
    base = ["dataset=scifact"]
    beir = load_dataset(compose_config(base).dataset)
    start = time.perf_counter()
    paths = write_documents(beir.corpus, folder)
    questions = folder.parent / "scifact-test-questions.jsonl"
    quotes = write_questions(beir, paths, questions)
    written = time.perf_counter() - start
    start = time.perf_counter()
    _, own = load_both(base, folder, questions)
    loaded = time.perf_counter() - start
    report = {
        "documents": len(beir.corpus), "imported": len(own.corpus), "queries": len(beir.queries),
        "evidence_quotes": quotes, "write_seconds": written, "import_and_resolve_seconds": loaded,
        "qrels_equal": mapped_qrels(own.qrels) == {q: dict(d) for q, d in beir.qrels.items()},
        "evidence_queries": {"beir": len(beir.evidence), "folder": len(own.evidence)},
        "evidence_equal": same_evidence(beir, own),
        "formats": compare_corpora(beir.corpus, own.corpus, paths),
        "runs": {},
        "load": os.getloadavg()[0],
    }
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=1, ensure_ascii=False), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name in args.configs:
        run = compare_runs(beir, own, CONFIGS[name], base, folder, questions, paths)
        if name in args.attribute and run["queries_ndcg_changed"]:
            run["ndcg_gain_undoing_format"] = attribute(beir, own, CONFIGS[name], base, folder, questions, paths,
                                                        run["folder"]["ndcg_at_10"])
        report["runs"][name] = run
        print(name, json.dumps(report["runs"][name]), flush=True)
        args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print()
    print("| retriever | path | queries | nDCG@10 | recall@100 |")
    print("|---|---|---:|---:|---:|")
    for name, run in report["runs"].items():
        for label in ("beir", "folder"):
            r = run[label]
            print(f"| {name} | {label} | {r['queries']} | {r['ndcg_at_10']:.4f} | {r['recall_at_100']:.4f} |")
        d = run["difference"]
        print(f"| {name} | folder − BEIR | | {d['ndcg_at_10']:+.4f} | {d['recall_at_100']:+.4f} |")


if __name__ == "__main__":
    main()
