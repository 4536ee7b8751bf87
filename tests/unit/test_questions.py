"""Questions files (JSONL and CSV): quotes located whatever their case, spacing, line breaks and hyphenation; `doc`
narrows the search; unfound and ambiguous quotes are errors naming the line and the closest match."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval_lab.config import compose_config
from retrieval_lab.data import load_dataset
from retrieval_lab.data.questions import load_questions
from retrieval_lab.data.quotes import normalize
from retrieval_lab.errors import ConfigError, DataError
from retrieval_lab.types import Corpus

LVM = ("Logical volumes\n\nA logical volume can be resi-\nzed while it is mounted: lvresize grows or shrinks it,\n"
       "and  the file system on it\nmust be grown separately.  Snapshots are read-only by default.")
RAID = "RAID levels\n\nMirroring (RAID 1) keeps two copies.\nSnapshots are read-only by default."
NOTES = "Release notes: the ﬁrst “stable” release supports online resizing."
CORPUS = Corpus(["guide/lvm.md", "guide/raid.md", "notes.txt"], ["Logical volumes", "RAID levels", "notes"],
                [LVM, RAID, NOTES])


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def located(questions, qid):
    return [CORPUS.texts[CORPUS.ids.index(d)][s:e] for d, s, e in questions.evidence[qid]]


def test_quotes_are_found_ignoring_case_whitespace_line_breaks_and_hyphenation(tmp_path):
    path = write_jsonl(tmp_path / "q.jsonl", [
        {"question": "Can I resize a mounted volume?",
         "evidence": ["A LOGICAL VOLUME CAN BE RESIZED WHILE IT IS MOUNTED", "and the file system on it must be"]},
        {"question": "Which release resizes online?", "evidence": "the first \"stable\" release"},
    ])
    questions = load_questions(path, CORPUS)
    assert questions.queries.ids == ["q1", "q2"]
    assert questions.queries.texts == ["Can I resize a mounted volume?", "Which release resizes online?"]
    assert located(questions, "q1") == ["A logical volume can be resi-\nzed while it is mounted",
                                        "and  the file system on it\nmust be"]
    assert located(questions, "q2") == ["the ﬁrst “stable” release"]  # ligature and typographic quotes folded
    assert questions.qrels == {"q1": {"guide/lvm.md": 1}, "q2": {"notes.txt": 1}}


def test_normalized_text_maps_back_to_the_original():
    text = "Well-\n  known  CASE, word-split and Straße"
    norm = normalize(text)
    assert norm.text == "wellknown case, wordsplit and strasse"
    start = norm.text.index("known case")
    assert text[slice(*norm.original_span(start, start + len("known case")))] == "known  CASE"
    start = norm.text.index("strasse")
    assert text[slice(*norm.original_span(start, start + len("strasse")))] == "Straße"


def test_doc_narrows_an_ambiguous_quote_and_without_it_the_error_names_both(tmp_path):
    quote = "Snapshots are read-only by default."
    path = write_jsonl(tmp_path / "q.jsonl", [{"question": "Are snapshots writable?", "evidence": [quote],
                                               "doc": "guide/raid.md", "id": "snap"}])
    questions = load_questions(path, CORPUS)
    assert questions.evidence["snap"] == [("guide/raid.md", RAID.index(quote), RAID.index(quote) + len(quote))]
    assert questions.qrels == {"snap": {"guide/raid.md": 1}}
    path = write_jsonl(tmp_path / "q2.jsonl", ["", {"question": "Are snapshots writable?", "evidence": [quote]}])
    with pytest.raises(DataError) as err:
        load_questions(path, CORPUS)
    message = str(err.value)
    assert f"{path}:2:" in message and quote in message
    assert "2 documents (guide/lvm.md, guide/raid.md)" in message and "`doc`" in message


def test_unresolvable_quote_names_the_line_the_quote_and_the_closest_match(tmp_path):
    path = write_jsonl(tmp_path / "q.jsonl", [
        {"question": "ok", "evidence": ["Mirroring (RAID 1) keeps two copies"]},
        {"question": "typo", "evidence": ["lvresize grows or shrinks the volume"]},
    ])
    with pytest.raises(DataError) as err:
        load_questions(path, CORPUS)
    message = str(err.value)
    assert f"{path}:2:" in message and "'lvresize grows or shrinks the volume' is not found in any document" in message
    assert "closest match" in message and "in guide/lvm.md: 'lvresize grows or shrinks it" in message
    # with a doc, the search and the closest match stay inside it
    path = write_jsonl(tmp_path / "q2.jsonl", [{"question": "q", "evidence": ["keeps three copies"],
                                                "doc": "guide/raid.md"}])
    with pytest.raises(DataError, match=r"not found in guide/raid.md; closest match .* in guide/raid.md: 'keeps two"):
        load_questions(path, CORPUS)


def test_every_unresolved_quote_is_reported_at_once(tmp_path):
    path = write_jsonl(tmp_path / "q.jsonl", [{"question": "a", "evidence": ["no such words anywhere xyzzy"]},
                                              {"question": "b", "evidence": ["mirroring keeps three copies"]}])
    with pytest.raises(DataError) as err:
        load_questions(path, CORPUS)
    assert f"{path}:1:" in str(err.value) and "line 2: evidence quote 'mirroring keeps three copies'" in str(err.value)
    assert "(2 problems in all)" in str(err.value)


def test_doc_only_questions_give_document_gold_without_spans(tmp_path):
    path = write_jsonl(tmp_path / "q.jsonl", [{"question": "RAID?", "doc": ["guide/raid.md", "./guide/lvm.md"]},
                                              {"question": "resizing?", "doc": "notes.txt",
                                               "evidence": ["supports online resizing"]}])
    questions = load_questions(path, CORPUS)
    assert questions.qrels == {"q1": {"guide/raid.md": 1, "guide/lvm.md": 1}, "q2": {"notes.txt": 1}}
    assert list(questions.evidence) == ["q2"]


def test_csv_with_several_quotes_and_docs_per_cell(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('\ufeffquestion,evidence,doc,id\n'
                    '"Resize, mounted?",lvresize grows || MUST BE GROWN separately,guide/lvm.md,r1\n'
                    '"Which ""levels""\nexist?",,guide/raid.md || notes.txt,\n'
                    'Snapshots?,read-only by default,guide/raid.md,\n', encoding="utf-8")
    questions = load_questions(path, CORPUS)
    assert questions.queries.ids == ["r1", "q3", "q5"]  # ids from the column, else the record's first line
    assert questions.queries.texts[1] == 'Which "levels"\nexist?'
    assert located(questions, "r1") == ["lvresize grows", "must be grown separately"]
    assert questions.qrels["q3"] == {"guide/raid.md": 1, "notes.txt": 1} and "q3" not in questions.evidence
    bad = tmp_path / "bad.csv"
    bad.write_text('question,evidence\n"multi\nline",lvresize grows\nq,mirroring keeps three copies\n')
    with pytest.raises(DataError, match=rf"{bad}:4: evidence quote 'mirroring keeps three copies' is not found"):
        load_questions(bad, CORPUS)


@pytest.mark.parametrize("content, line, text", [
    ('{"question": "q"}', 1, "needs evidence quotes, a doc, or both"),
    ('{"evidence": ["lvresize"]}', 1, "missing or empty 'question'"),
    ('\n{"question": "q", "doc": "guide/lvm"}', 2, "doc 'guide/lvm' is not in the corpus (closest ids: guide/lvm.md"),
    ('{"question": "q", "doc": 3}', 1, "'doc' must be a string or a list of strings"),
    ('{"question": "a", "doc": "notes.txt", "id": "x"}\n{"question": "b", "doc": "notes.txt", "id": "x"}', 2,
     "duplicate id 'x' (first on line 1)"),
    ('{"question": "q", "doc": "notes.txt"', 1, "malformed JSON"),
])
def test_malformed_question_files_name_the_line(tmp_path, content, line, text):
    path = tmp_path / "q.jsonl"
    path.write_text(content + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_questions(path, CORPUS)
    assert f"{path}:{line}:" in str(err.value) and text in str(err.value)


def test_unreadable_question_files(tmp_path):
    latin = tmp_path / "q.jsonl"
    latin.write_bytes(b'{"question": "a", "doc": "notes.txt"}\n{"question": "caf\xe9", "doc": "notes.txt"}\n')
    with pytest.raises(DataError, match=rf"{latin}:2: invalid UTF-8"):
        load_questions(latin, CORPUS)
    with pytest.raises(DataError, match="unknown questions format '.txt'"):
        load_questions(write_jsonl(tmp_path / "q.txt", [{"question": "a", "doc": "notes.txt"}]), CORPUS)
    with pytest.raises(DataError, match="no 'question' column"):
        (tmp_path / "h.csv").write_text("query,evidence\nx,y\n")
        load_questions(tmp_path / "h.csv", CORPUS)
    with pytest.raises(DataError, match="no questions"):
        load_questions(write_jsonl(tmp_path / "empty.jsonl", [""]), CORPUS)


def document_folder(folder: Path) -> Path:
    """A BEIR folder with a corpus only, as an imported document folder is."""
    folder.mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n"
                                                 for i, t, x in zip(CORPUS.ids, CORPUS.titles, CORPUS.texts)))
    return folder


def test_dataset_questions_config_key_for_a_folder_without_queries(tmp_path):
    folder = document_folder(tmp_path / "docs")
    path = write_jsonl(tmp_path / "q.jsonl", [{"question": "Mirroring?", "evidence": ["keeps two copies"]}])
    cfg = compose_config([f"dataset.path={folder}", f"dataset.questions={path}"])
    ds = load_dataset(cfg.dataset)
    assert ds.name == "docs" and ds.queries.ids == ["q1"] and ds.qrels == {"q1": {"guide/raid.md": 1}}
    assert ds.evidence == {"q1": [("guide/raid.md", RAID.index("keeps"), RAID.index("copies") + len("copies"))]}
    before = ds.fingerprint
    write_jsonl(path, [{"question": "Mirroring?", "evidence": ["two copies"]}])  # same qrels, other span gold
    assert load_dataset(cfg.dataset).fingerprint != before
    with pytest.raises(DataError, match="no queries.jsonl and no qrels/.*\n  fix: set dataset.questions"):
        load_dataset(folder)
    with pytest.raises(ConfigError, match="dataset.questions"):
        load_dataset(compose_config([f"dataset.path={folder}",
                                            f"dataset.questions={tmp_path / 'missing.jsonl'}"]).dataset)


def test_a_quote_twice_in_one_document_names_both_places_and_a_longer_quote_fixes_it(tmp_path):
    from retrieval_lab.data.beir import load_corpus
    from retrieval_lab.data.folder import import_folder

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "reset.html").write_text(
        "<html><body>\n<h1>git-reset</h1>\n<h2>OPTIONS</h2>\n<p>--soft leaves the index untouched.</p>\n"
        "<h2>EXAMPLES</h2>\n<p>Undo a commit:\n--hard resets the index and the working tree.</p>\n"
        "<p>Keep changes: the index untouched, as before.</p>\n</body></html>\n", encoding="utf-8")
    import_folder(docs, tmp_path / "out")
    corpus = load_corpus(tmp_path / "out" / "corpus.jsonl")
    path = write_jsonl(tmp_path / "q.jsonl", [{"question": "Does --soft touch the index?",
                                               "evidence": ["the index untouched"], "doc": "reset.html"}])
    with pytest.raises(DataError) as err:
        load_questions(path, corpus)
    message = str(err.value)
    assert f"{path}:1: evidence quote 'the index untouched' occurs 2 times" in message
    assert "reset.html line 4 (git-reset > OPTIONS): '...git-reset OPTIONS --soft leaves [the index untouched]." \
           in message
    assert "reset.html line 8 (git-reset > EXAMPLES): '...ex and the working tree. Keep changes: [the index " \
           "untouched], as before...." in message
    assert "lengthen a quote found twice in one document" in message
    for quote, doc in (("the index untouched", None), ("the index untouched", ["reset.html", "reset.html"])):
        record = {"question": "q", "evidence": [quote], **({"doc": doc} if doc else {})}
        with pytest.raises(DataError, match="occurs 2 times"):  # without `doc`, and with it named twice
            load_questions(write_jsonl(tmp_path / "q2.jsonl", [record]), corpus)
    # the fix the error gives: a longer quote, with the words of the right place
    fixed = write_jsonl(tmp_path / "q3.jsonl", [{"question": "Does --soft touch the index?", "id": "soft",
                                                 "evidence": ["soft leaves the index untouched"]}])
    (doc, start, end), = load_questions(fixed, corpus).evidence["soft"]
    text = corpus.texts[0]
    assert text[start:end] == "soft leaves the index untouched" and start < text.index("EXAMPLES")
