"""Pooled judging on hand-made data: pool order, the judgement store (resume, a partial last line, a corrupt line),
the judging API (409 for a pair not in the pool, 400 for bad grades and spans, loopback Host only) and the judged
set read back as a questions file (grades, exact evidence spans, pool depth, judged_at_10)."""
from __future__ import annotations

import http.client
import json
import threading

import pytest

from retrieval_lab.data.questions import load_questions
from retrieval_lab.evaluate.judged import judged_at_k, pool_metrics
from retrieval_lab.errors import DataError, LabError
from retrieval_lab.judging.pool import Configuration, Pool, PoolItem, judging_questions, open_pool, pool_items
from retrieval_lab.judging.server import JudgingApp, JudgingError, make_server, question_terms, term_spans
from retrieval_lab.judging.store import Judgement, JudgementStore
from retrieval_lab.types import Corpus, Qrels, Queries, Run

CORPUS = Corpus(["a", "b", "c"], ["Volumes", "RAID", "Notes"],
                ["Logical volumes can be resized while mounted.", "Mirroring keeps two copies of every block.",
                 "Release notes: resizing works online."])


def unit_run(hits: dict[str, list[str]]) -> Run:
    return Run({q: [(uid, 1.0 - i / 10) for i, uid in enumerate(uids)] for q, uids in hits.items()})


def test_pool_holds_unique_pairs_most_often_retrieved_first_then_best_rank():
    runs = [unit_run({"q1": ["a@0-10", "b@0-9"], "q2": ["c@0-5", "a@0-10"]}),
            unit_run({"q1": ["b@0-9", "c@0-5"], "q2": ["a@0-10"]}),
            unit_run({"q1": ["b@0-9", "a@0-10", "c@0-5"], "q2": ["b@0-9"]})]
    items = pool_items(runs, ["q1", "q2"], depth=2)
    keys = [(i.query_id, i.doc) for i in items]
    assert len(keys) == len(set(keys)) == 6
    assert keys[0] == ("q1", "b") and items[0].count == 3 and items[0].best_rank == 1  # all three configurations
    # two configurations each, best rank 1 each: question order breaks the tie
    assert keys[1:3] == [("q1", "a"), ("q2", "a")] and items[1].count == items[2].count == 2
    # once each: at rank 1 (then document order) before rank 2, whatever the question
    assert keys[3:] == [("q2", "b"), ("q2", "c"), ("q1", "c")] and [i.best_rank for i in items[3:]] == [1, 1, 2]
    assert [c for c, _ in items[0].hits] == [0, 1, 2]
    # depth cuts each run: run 2's c at rank 3 for q1 is outside the pool at depth 2
    assert next(i for i in items if i.key[:2] == ("q1", "c")).hits == [(1, 2)]


def small_pool(depth: int = 10) -> Pool:
    questions = Queries(["q1", "q2"], ["Can a mounted volume be resized?", "How many copies does mirroring keep?"])
    items = [PoolItem("q1", "a", 0, 46, [(0, 1)]), PoolItem("q1", "c", 0, 37, [(0, 2)]),
             PoolItem("q2", "b", 0, 42, [(0, 1)])]
    return Pool("exp", None, depth, "q.jsonl", "sha", questions, [{"run_id": "r1", "name": "bm25", "study": ""}],
                {"name": "x"}, CORPUS.fingerprint, items)


def test_store_keeps_the_last_judgement_and_drops_a_partial_last_line(tmp_path, caplog):
    store = JudgementStore(tmp_path)
    store.record(Judgement("q1", "Q one", "a", 0, 46, 0))
    store.record(Judgement("q1", "Q one", "a", 0, 46, 2, ((0, 15, "Logical volumes"),)))
    store.record(Judgement("q2", "Q two", "b", 0, 42, 1))
    with open(store.path, "ab") as fh:  # a kill in the middle of the next write
        fh.write(b'{"query_id": "q1", "question": "Q one", "doc": "c", "sta')
    again = JudgementStore(tmp_path)
    assert again.dropped_partial_line and "partial last line" in caplog.text
    assert [(j.key, j.grade) for j in again.latest.values()] == [(("q1", "a", 0, 46), 2), (("q2", "b", 0, 42), 1)]
    assert again.latest[("q1", "a", 0, 46)].evidence == ((0, 15, "Logical volumes"),)
    again.record(Judgement("q1", "Q one", "c", 0, 37, 0))  # appended on a line of its own
    assert len(JudgementStore(tmp_path).latest) == 3
    assert store.path.read_text().count("\n") == 4


def test_a_corrupt_complete_line_is_an_error_naming_it(tmp_path):
    (tmp_path / "judgements.jsonl").write_text('{"query_id": "q1"}\n')
    with pytest.raises(DataError, match=r"judgements.jsonl:1: not a judgement"):
        JudgementStore(tmp_path)


def test_judging_api_saves_and_refuses_pairs_outside_the_pool(tmp_path):
    app = JudgingApp(tmp_path, small_pool(), JudgementStore(tmp_path), CORPUS)
    assert app.state()["judged"] == 0 and app.state()["resume"] == 0
    with pytest.raises(JudgingError, match="not in the pool") as err:
        app.judge({"query_id": "q1", "doc": "b", "start": 0, "end": 42, "grade": 2})
    assert err.value.status == 409
    with pytest.raises(JudgingError, match="grade 3") as err:
        app.judge({"query_id": "q1", "doc": "a", "start": 0, "end": 46, "grade": 3})
    assert err.value.status == 400
    with pytest.raises(JudgingError, match="not inside the passage"):
        app.judge({"query_id": "q1", "doc": "a", "start": 0, "end": 46, "grade": 2, "evidence": [[40, 50]]})
    with pytest.raises(JudgingError, match="judged not relevant holds no evidence"):
        app.judge({"query_id": "q1", "doc": "a", "start": 0, "end": 46, "grade": 0, "evidence": [[0, 7]]})
    assert not (tmp_path / "judgements.jsonl").exists()  # nothing refused was written
    state = app.judge({"query_id": "q1", "doc": "a", "start": 0, "end": 46, "grade": 2, "evidence": [[0, 15]]})
    assert state["judged"] == 1 and state["resume"] == 1
    app.judge({"query_id": "q1", "doc": "c", "start": 0, "end": 37, "grade": 0})
    item = app.item(0)
    assert item["judgement"] == {"grade": 2, "at": item["judgement"]["at"], "assessor": "", "evidence": [[0, 15]]}
    assert [item["text"][s:e] for s, e in item["terms"]] == ["volumes", "resized", "mounted"]
    # a restart resumes after the last judged item
    restarted = JudgingApp(tmp_path, small_pool(), JudgementStore(tmp_path), CORPUS)
    assert restarted.state()["judged"] == 2 and restarted.state()["resume"] == 2


def test_judged_set_reads_back_as_questions_with_grades_spans_and_pool_depth(tmp_path):
    app = JudgingApp(tmp_path, small_pool(depth=5), JudgementStore(tmp_path), CORPUS)
    app.judge({"query_id": "q1", "doc": "a", "start": 0, "end": 46, "grade": 1, "evidence": [[0, 15], [29, 45]]})
    app.judge({"query_id": "q1", "doc": "c", "start": 0, "end": 37, "grade": 0})
    app.judge({"query_id": "q2", "doc": "b", "start": 0, "end": 42, "grade": 0})
    questions = load_questions(tmp_path / "judged.jsonl", CORPUS)
    assert questions.queries.ids == ["q1", "q2"]  # every pool question, in order: the pool's cached runs replay
    assert questions.queries.metadata == [{"pool_depth": 5}, {"pool_depth": 5}]
    assert questions.qrels == {"q1": {"a": 1, "c": 0}}  # q2 has no relevant passage: a query, not averaged
    assert questions.evidence == {"q1": [("a", 0, 15), ("a", 29, 45)]}
    assert (tmp_path / "qrels.tsv").read_text().splitlines() == [
        "query-id\tcorpus-id\tscore", "q1\ta\t1", "q1\tc\t0", "q2\tb\t0"]
    run = Run({"q1": [("a", 1.0), ("b", 0.5)], "q2": [("b", 1.0)]})
    assert pool_metrics(run, questions.queries, questions.qrels) == {"judged_at_10": 0.5, "pool_depth": 5.0}


def test_an_evidence_span_that_no_longer_reads_as_its_quote_names_the_line(tmp_path):
    path = tmp_path / "judged.jsonl"
    path.write_text(json.dumps({"id": "q1", "question": "resize?", "grades": {"a": 2},
                                "evidence": [{"doc": "a", "start": 0, "end": 15, "quote": "Physical volumes"}]}) + "\n")
    with pytest.raises(DataError, match=r"judged.jsonl:1: evidence span 0-15 of a reads 'Logical volumes', not"):
        load_questions(path, CORPUS)


def test_questions_to_judge_need_no_gold_but_an_empty_question_names_file_and_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "Can a mounted volume be resized?"}\n{"question": "  "}\n')
    with pytest.raises(DataError, match=r"q.jsonl:2: missing or empty 'question'"):
        judging_questions(path)
    path.write_text('{"question": "Can a mounted volume be resized?"}\n{"id": "x", "question": "Mirrors?"}\n')
    queries, _ = judging_questions(path)
    assert queries.ids == ["q1", "x"]


def test_judged_at_k_counts_judged_documents_of_each_top_k():
    qrels = Qrels({"q1": {"a": 1, "b": 0}, "q2": {"c": 2}})
    run = Run({"q1": [("a", 3.0), ("b", 2.0), ("c", 1.0), ("d", 0.5)], "q2": [("c", 1.0)]})
    assert judged_at_k(run, qrels, ["q1", "q2"], k=2) == 1.0
    assert judged_at_k(run, qrels, ["q1", "q2"], k=4) == pytest.approx((2 / 4 + 1) / 2)
    assert pool_metrics(run, Queries(["q1", "q2"], ["x", "y"]), qrels) == {}  # not a judged set


def test_question_terms_are_stemmed_without_stopwords():
    terms = question_terms("How are the mounted Volumes resized?")
    assert terms == {"mount", "volum", "resiz"}
    assert term_spans("A volume, once mounted", terms) == [[2, 8], [15, 22]]


def test_http_server_answers_409_as_json_and_only_to_a_loopback_host(tmp_path):
    app = JudgingApp(tmp_path, small_pool(), JudgementStore(tmp_path), CORPUS)
    server = make_server(app, 0)
    port = server.server_address[1]
    assert server.server_address[0] == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        body = json.dumps({"query_id": "q9", "doc": "a", "start": 0, "end": 46, "grade": 2})
        conn.request("POST", "/api/judge", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 409 and "not in the pool" in json.loads(response.read())["error"]
        conn.request("GET", "/api/state", headers={"Host": f"evil.example:{port}"})
        response = conn.getresponse()
        assert response.status == 403 and b"127.0.0.1" in response.read()
        conn.request("POST", "/api/judge", "grade=2", {"Content-Type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        assert response.status == 415 and response.read()
        conn.request("GET", "/")
        response = conn.getresponse()
        page = response.read().decode()
        assert response.status == 200 and "retrieval-lab judge" in page and "http" not in page.split("<script>")[1]
    finally:
        server.shutdown()
        server.server_close()


def beir_folder(root):
    """CORPUS as a BEIR folder named `tiny` under `root`."""
    folder = root / "tiny"
    folder.mkdir()
    rows = [{"_id": d, "title": t, "text": x} for d, t, x in zip(CORPUS.ids, CORPUS.titles, CORPUS.texts)]
    folder.joinpath("corpus.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return {"name": "tiny", "root": str(root)}


def test_a_pool_is_made_from_plain_configurations_and_names_the_one_that_fails(tmp_path):
    dataset = beir_folder(tmp_path)
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "q1", "question": "Resize a volume?"}\n{"id": "q2", "question": "Mirrors?"}\n')
    asked = []

    def returning(hits):
        def retrieve(corpus, queries):
            asked.append((corpus.ids, queries.ids))
            return unit_run(hits)
        return retrieve

    configurations = [
        Configuration("r1", "bm25", "s", 10, dataset, None, returning({"q1": ["a@0-46", "c@0-37"], "q2": ["b@0-42"]})),
        Configuration("r2", "dense", "s", 10, dataset, None, returning({"q1": ["c@0-37", "b@0-42", "a@0-46"]}))]
    pool, corpus, resumed = open_pool(tmp_path / "judged", configurations, questions, 2, "exp")
    assert not resumed and corpus.ids == CORPUS.ids and asked == [(CORPUS.ids, ["q1", "q2"])] * 2
    assert [(i.key, i.hits) for i in pool.items] == [
        (("q1", "c", 0, 37), [(0, 2), (1, 1)]), (("q1", "a", 0, 46), [(0, 1)]), (("q2", "b", 0, 42), [(0, 1)]),
        (("q1", "b", 0, 42), [(1, 2)])]
    assert open_pool(tmp_path / "judged", configurations, questions, 2, "exp")[2]  # resumed: nothing retrieved
    assert len(asked) == 2

    with pytest.raises(LabError, match=r"--depth 20 is deeper than configuration bm25 \(run r1\) retrieves "
                                       r"\(eval\.depth 10\): use --depth 10 or less"):
        open_pool(tmp_path / "deeper", configurations, questions, 20, "exp")

    def failing(corpus, queries):
        raise LabError("dense.model: not found")

    broken = [configurations[0], Configuration("r3", "broken", "s", 10, dataset, None, failing)]
    with pytest.raises(LabError, match=r"^configuration broken \(run r3\): dense.model: not found$"):
        open_pool(tmp_path / "broken", broken, questions, 2, "exp")


def test_the_judging_package_imports_nothing_above_the_stages():
    """The judge command composes the pool with the pipeline; the package itself stays a stage (no upward import)."""
    import ast
    from pathlib import Path

    import retrieval_lab.judging

    upward = []
    for path in Path(retrieval_lab.judging.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            upward += [f"{path.name}: {n}" for n in names
                       if n.split(".")[:2] in (["retrieval_lab", "pipeline"], ["retrieval_lab", "sweep"],
                                               ["retrieval_lab", "commands"], ["retrieval_lab", "cli"])]
    assert upward == []
