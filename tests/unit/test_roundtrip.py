"""A BEIR corpus written out as a folder of documents and imported back (retrieval_lab/data/roundtrip.py), on a
hand-made four-document corpus: one document per format, titles and texts with markup characters, a `/` in a title,
non-ASCII text; the writer's stamp, and a folder it did not write."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval_lab.config import compose_config
from retrieval_lab.data import load_dataset, roundtrip
from retrieval_lab.errors import DataError
from retrieval_lab.types import Corpus

CORPUS = Corpus(
    ["d1", "d2", "d3", "d4"],
    ["Markup: *stars*, _underscores_ & <tags>", "HTML <b>escaped</b> & kept", "A title / with a slash",
     "Ωmega in a PDF"],
    ["Text with [a link](x), `code`, # hash and \\ backslash.", "Less < greater > ampersand & quote \" end.",
     "Plain text file body.", "ç 日本語 Ωmega " * 20 + "end."])
QUESTIONS = {"q1": ("which one has markup?", {"d1": 1}), "q2": ("pdf omega", {"d4": 2, "d3": 0})}


def write_beir(dest: Path) -> None:
    (dest / "qrels").mkdir(parents=True)
    with open(dest / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for doc, title, text in zip(CORPUS.ids, CORPUS.titles, CORPUS.texts):
            fh.write(json.dumps({"_id": doc, "title": title, "text": text}, ensure_ascii=False) + "\n")
    with open(dest / "queries.jsonl", "w", encoding="utf-8") as fh:
        for qid, (text, _) in QUESTIONS.items():
            fh.write(json.dumps({"_id": qid, "text": text}) + "\n")
    with open(dest / "qrels" / "test.tsv", "w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for qid, (_, judged) in QUESTIONS.items():
            fh.writelines(f"{qid}\t{doc}\t{grade}\n" for doc, grade in judged.items())


def test_one_document_per_format_with_paths_that_map_back_to_ids(tmp_path):
    paths = roundtrip.write_documents(CORPUS, tmp_path / "docs")
    assert paths == {"d1": "markdown/d1.md", "d2": "html/d2.html", "d3": "text/d3/A title \u2215 with a slash.txt",
                     "d4": "pdf/d4.pdf"}
    assert all((tmp_path / "docs" / p).is_file() for p in paths.values())
    assert {roundtrip.doc_id_of(p) for p in paths.values()} == set(CORPUS.ids)
    assert (tmp_path / "docs" / "pdf" / "d4.pdf").read_bytes().startswith(b"%PDF")


def test_the_stamp_skips_a_second_write_and_a_foreign_folder_is_refused(tmp_path):
    folder = tmp_path / "docs"
    roundtrip.write_documents(CORPUS, folder)
    marker = folder / "html" / "d2.html"
    marker.write_text("changed", encoding="utf-8")
    roundtrip.write_documents(CORPUS, folder)  # same corpus, same layout: nothing written again
    assert marker.read_text(encoding="utf-8") == "changed"

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.md").write_text("keep me", encoding="utf-8")
    with pytest.raises(DataError, match="did not write") as error:
        roundtrip.write_documents(CORPUS, foreign)
    assert (foreign / "notes.md").read_text(encoding="utf-8") == "keep me"
    assert "fix: give an empty or new folder" in str(error.value)
    assert roundtrip.write_documents(CORPUS, tmp_path / "new")  # following the fix


def test_the_imported_folder_has_the_original_texts_and_qrels(tmp_path):
    write_beir(tmp_path / "beir")
    cache = str(tmp_path / "cache")
    base = ["dataset=scifact", f"dataset.path={tmp_path / 'beir'}", f"cache.dir={cache}"]
    beir = load_dataset(compose_config(base).dataset, cache_root=cache)
    paths = roundtrip.write_documents(beir.corpus, tmp_path / "docs")
    questions = tmp_path / "questions.jsonl"
    assert roundtrip.write_questions(beir, paths, questions) == 0  # no evidence in this corpus
    rows = [json.loads(line) for line in questions.read_text(encoding="utf-8").splitlines()]
    assert rows[1] == {"id": "q2", "question": "pdf omega", "doc": ["pdf/d4.pdf"]}  # grade 0 is not relevant

    beir, own = roundtrip.load_both(base, tmp_path / "docs", questions, cache)
    assert sorted(roundtrip.doc_id_of(d) for d in own.corpus.ids) == sorted(CORPUS.ids)
    assert roundtrip.mapped_qrels(own.qrels) == {"q1": {"d1": 1}, "q2": {"d4": 1}}
    stats = roundtrip.compare_corpora(beir.corpus, own.corpus, paths)
    assert {fmt: entry["imported"] for fmt, entry in stats.items()} == dict.fromkeys(roundtrip.FORMATS, 1)
    assert stats["markdown"]["text"] == stats["html"]["text"] == stats["text"]["text"] == {"same": 1}
    assert stats["pdf"]["text"] == {"line breaks": 1}  # wrapped at 90 characters, no character lost
    assert stats["text"]["title"] == {"characters": 1}  # the `/` a file name cannot hold
    assert stats["markdown"]["title"] == stats["html"]["title"] == stats["pdf"]["title"] == {"same": 1}


@pytest.mark.parametrize("imported, kind", [("a b  c", "same"), ("a  b \t c", "whitespace"),
                                            ("a b\n c", "line breaks"), ("a b-\nc", "hyphenation"),
                                            ("a b  C", "characters")])
def test_difference_names_how_an_imported_text_changed(imported, kind):
    original = "a b  c" if kind != "hyphenation" else "a bc"
    assert roundtrip.difference(original, imported) == kind
