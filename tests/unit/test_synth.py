"""`retrieval-lab data synth`: generated questions with their passages as gold, written as a dataset that runs."""
from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from retrieval_lab.cli import main
from retrieval_lab.commands.best import Candidate, format_ranking, ranking_from
from retrieval_lab.config import compose_config
from retrieval_lab.data import load_dataset
from retrieval_lab.data.beir import load_corpus
from retrieval_lab.data.synth import SynthError, make_generator, synthetic_info
from retrieval_lab.data.synth.base import WordForms, words
from retrieval_lab.data.synth.build import synthesize
from retrieval_lab.data.synth.extract import stopwords
from retrieval_lab.errors import DataError
from retrieval_lab.types import Corpus

TOPICS = [
    ("Glacier retreat in the Alps", ["Alpine glaciers lost a third of their volume since 1980.",
                                     "Meltwater feeds the Rhine and the Po in late summer.",
                                     "Moraines record the maximum extent of the ice.",
                                     "Surveys use drones and ground radar every autumn."]),
    ("Sourdough fermentation", ["Wild yeast and lactobacilli leaven the dough together.",
                                "Acetic acid gives the crumb its sour taste.",
                                "A starter is fed flour and water every day.",
                                "Long proofing in the fridge deepens the flavour."]),
    ("Tidal energy turbines", ["Turbines on the seabed turn with the ebb and flood.",
                               "Tides are predictable decades ahead, unlike wind.",
                               "Corrosion and biofouling raise maintenance costs.",
                               "Pilot arrays run in the Pentland Firth."]),
    ("Honeybee navigation", ["Foragers dance to tell nestmates where flowers are.",
                             "The waggle run angle encodes the direction of the sun.",
                             "Bees also learn landmarks along their flight path.",
                             "Polarized light guides them under clouds."]),
    ("Medieval bookbinding", ["Quires of parchment were sewn onto leather thongs.",
                              "Wooden boards covered in leather protected the pages.",
                              "Clasps kept the parchment flat against humidity.",
                              "Chained libraries attached books to lecterns."]),
    ("Volcanic soil fertility", ["Ash weathers into clays rich in potassium.",
                                 "Andisols hold water and phosphate tightly.",
                                 "Vineyards on Etna thrive on these slopes.",
                                 "Fresh tephra can bury crops for a season."]),
]


def make_source(folder: Path) -> Path:
    """A corpus with titles, one document titled only by its file name, and one imported document with sections."""
    folder.mkdir(parents=True)
    rows = [{"_id": f"d{i}", "title": title, "text": " ".join(sentences)}
            for i, (title, sentences) in enumerate(TOPICS)]
    rows.append({"_id": "notes/misc.md", "title": "misc.md", "text": " ".join(TOPICS[0][1][:2])})
    sections_text = ("Installing the toolkit\nDownload the archive and unpack it into a folder. Run the installer "
                     "script as an ordinary user.\nConfiguring proxies\nSet the proxy address in the settings "
                     "file. Restart the daemon after changing it.")
    first = sections_text.index("Configuring")
    rows.append({"_id": "guide/setup.md", "title": "Toolkit setup guide", "text": sections_text,
                 "metadata": {"sections": [[0, first, "1. Installing the toolkit"],
                                           [first, len(sections_text), "2. Configuring proxies"]]}})
    with open(folder / "corpus.jsonl", "w") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return folder


@pytest.fixture()
def source(tmp_path) -> Path:
    return make_source(tmp_path / "data" / "tiny")


def corpus_of(folder: Path) -> Corpus:
    return load_corpus(folder / "corpus.jsonl")


def test_title_questions_are_the_usable_headings_with_the_text_under_them(source):
    corpus = corpus_of(source)
    questions = make_generator("title").generate(corpus, 8, np.random.default_rng(0))
    asked = {q.question: q for q in questions}
    # six titled documents, the guide's title and its two sections; a file-name title is not usable
    assert len(questions) == 8 and "misc.md" not in asked
    assert asked["Installing the toolkit"].evidence.startswith("Download the archive")  # heading line skipped
    assert asked["Configuring proxies"].doc == "guide/setup.md"
    assert asked["Honeybee navigation"].evidence == " ".join(TOPICS[3][1][:2])
    with pytest.raises(SynthError, match=r"--queries 10: only 9 questions"):
        make_generator("title").generate(corpus, 10, np.random.default_rng(0))


def test_extract_leaves_the_source_sentence_out_and_is_reproducible(source):
    corpus = corpus_of(source)
    first = make_generator("extract", terms=3, min_df=1).generate(corpus, 6, np.random.default_rng(7))
    again = make_generator("extract", terms=3, min_df=1).generate(corpus, 6, np.random.default_rng(7))
    other = make_generator("extract", terms=3, min_df=1).generate(corpus, 6, np.random.default_rng(8))
    assert [q.question for q in first] == [q.question for q in again]
    assert [(q.doc, q.evidence) for q in first] != [(q.doc, q.evidence) for q in other]
    assert len({q.doc for q in first}) == 6  # spread over documents before a second passage of one
    for q in first:
        terms = q.question.split()
        assert 2 <= len(terms) <= 3
        text = corpus.texts[corpus.index_of()[q.doc]]
        assert q.evidence in text and q.source in q.evidence
        assert not {t.lower() for t in terms} & {w.lower() for w in words(q.source)}  # the context gave enough
    every = make_generator("extract", terms=50, min_df=1, keep_source_words=True, dropout=0.0).generate(
        corpus, 6, np.random.default_rng(7))  # every candidate kept: the source sentence's words are among them
    assert all({t for t in q.question.split()} & {w.lower() for w in words(q.source)} for q in every)


def test_synth_writes_a_dataset_that_loads_with_its_span_gold(source, tmp_path):
    root, cache = source.parent, tmp_path / "cache"
    result = synthesize("tiny", "tiny-extract", "extract", 5, seed=3, root=root, cache_dir=str(cache),
                        lexical_check=True, terms=3, min_df=1)
    folder = root / "tiny-extract"
    info = json.loads((folder / "synth.json").read_text())
    assert info["generator"] == "extract" and info["seed"] == 3 and info["settings"]["terms"] == 3
    assert info["source"]["corpus_hash"] == corpus_of(source).fingerprint
    assert set(info["lexical_check"]) >= {"generated", "copied"}
    assert (folder / "corpus.jsonl").read_bytes() == (source / "corpus.jsonl").read_bytes()

    cfg = compose_config(["dataset=tiny-extract", f"cache.dir={cache}"])
    ds = load_dataset(cfg.dataset)
    assert ds.name == "tiny-extract" and len(ds.queries) == 5
    assert ds.queries.texts == [q.question for q in result.questions]
    for qid, q in zip(ds.queries.ids, result.questions):  # each quote located where the passage is
        (doc, start, end), = ds.evidence[qid]
        assert doc == q.doc and ds.corpus.texts[ds.corpus.index_of()[doc]][start:end] == q.evidence
        assert ds.qrels[qid] == {q.doc: 1}
    assert synthetic_info(ds)["generator"] == "extract"
    beir = load_dataset(folder)  # the BEIR files alone: same queries and qrels, no span gold
    assert beir.queries.fingerprint == ds.queries.fingerprint and beir.qrels == ds.qrels
    real = load_dataset(folder, questions=write_real_question(tmp_path))  # other questions over the same corpus
    assert synthetic_info(real) is None

    again = synthesize("tiny", "tiny-extract-2", "extract", 5, seed=3, root=root, cache_dir=str(cache), terms=3,
                       min_df=1)
    assert [q.question for q in again.questions] == [q.question for q in result.questions]
    with pytest.raises(SynthError, match="already exists"):
        synthesize("tiny", "tiny-extract", "extract", 5, root=root, cache_dir=str(cache))


def write_real_question(tmp_path: Path) -> Path:
    path = tmp_path / "real.jsonl"
    path.write_text(json.dumps({"question": "how do bees find flowers", "evidence": ["waggle run angle"]}) + "\n")
    return path


def test_cli_title_then_errors(source, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RETRIEVAL_LAB_DATA", str(source.parent))
    cache = str(tmp_path / "cache")
    assert main(["data", "synth", "--dataset", "tiny", "--generator", "title", "--queries", "4", "--seed", "1",
                 "--out", "tiny-title", "--cache-dir", cache]) == 0
    assert "title: wrote 4 questions" in capsys.readouterr().out
    rows = [json.loads(line) for line in (source.parent / "tiny-title" / "questions.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(r["evidence"] and r["doc"] for r in rows)

    assert main(["data", "synth", "--dataset", "tiny", "--generator", "poetry", "--queries", "4",
                 "--out", "x", "--cache-dir", cache]) == 2
    assert "--generator poetry: unknown generator" in capsys.readouterr().err
    assert main(["data", "synth", "--dataset", "tiny", "--generator", "title", "--queries", "50",
                 "--out", "y", "--cache-dir", cache]) == 2
    err = capsys.readouterr().err
    assert "--queries 50: only 9 questions" in err and "fix: ask for at most 9" in err
    assert not (source.parent / "y").exists()
    assert main(["data", "synth", "--dataset", "nowhere", "--generator", "title", "--queries", "1",
                 "--out", "z", "--cache-dir", cache]) == 2
    assert "--dataset nowhere: no corpus.jsonl" in capsys.readouterr().err


# ---- llm: a stub OpenAI-compatible server on 127.0.0.1 ----

class StubServer:
    """Answers /v1/chat/completions; `failures` is a list of status codes to send before answering (per passage)."""

    def __init__(self, failures=(), always: int | None = None, garbage: bool = False, empty: bool = False):
        self.calls: list[dict] = []
        self.failures, self.always, self.garbage, self.empty = list(failures), always, garbage, empty
        self.seen: dict[str, int] = {}
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.calls.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                prompt = body["messages"][0]["content"]
                attempt = stub.seen[prompt] = stub.seen.get(prompt, 0) + 1
                status = stub.always or (stub.failures[attempt - 1] if attempt <= len(stub.failures) else 200)
                if status != 200:
                    self.send_response(status)
                    self.end_headers()
                    self.wfile.write(b'{"error": "busy"}')
                    return
                passage = prompt.split("Passage:\n")[1].split("\n\nQuestion:")[0]
                reply = b"<html>not an API</html>" if stub.garbage else json.dumps({
                    "choices": [{"message": {"role": "assistant",
                                             "content": " \n" if stub.empty else
                                             f"Question: what about {passage.split()[0]}?\n"}}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 10}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def stub():
    servers = []

    def start(**kwargs):
        servers.append(StubServer(**kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def llm(url, cache, **options):
    settings = {"model": "stub-model", "base_url": url, "backoff": 0.001, "timeout": 5, "cache_dir": str(cache),
                "price_per_1k_tokens": 0.5, "concurrency": 3}
    return make_generator("llm", **{**settings, **options})


def test_llm_questions_tokens_cost_and_cache(source, tmp_path, stub, monkeypatch):
    monkeypatch.setenv("STUB_KEY", "sekret")
    server = stub()
    corpus = corpus_of(source)
    gen = llm(server.url, tmp_path / "cache", api_key_env="STUB_KEY")
    questions = gen.generate(corpus, 5, np.random.default_rng(0))
    assert len(questions) == 5 and len(server.calls) == 5
    for q in questions:
        assert q.question == f"what about {q.evidence.split()[0]}?"
    assert server.calls[0]["path"] == "/v1/chat/completions" and server.calls[0]["auth"] == "Bearer sekret"
    assert server.calls[0]["body"]["model"] == "stub-model"
    assert gen.report() == {"requests": 5, "cached": 0, "prompt_tokens": 500, "completion_tokens": 50,
                            "cost": 0.275, "price_per_1k_tokens": 0.5}
    again = llm(server.url, tmp_path / "cache")
    assert [q.question for q in again.generate(corpus, 5, np.random.default_rng(0))] == [q.question for q in questions]
    assert len(server.calls) == 5 and again.report()["cached"] == 5 and again.report()["requests"] == 0


def test_cli_llm_prints_tokens_and_cost(source, tmp_path, stub, capsys, monkeypatch):
    monkeypatch.setenv("RETRIEVAL_LAB_DATA", str(source.parent))
    server = stub()
    args = ["data", "synth", "--dataset", "tiny", "--generator", "llm", "--queries", "4", "--out", "tiny-llm",
            "--model", "stub-model", "--base-url", server.url, "--price-per-1k-tokens", "2",
            "--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "llm: 4 requests (0 answers from the cache), 400 prompt + 40 completion tokens, cost 0.8800" in out
    info = json.loads((source.parent / "tiny-llm" / "synth.json").read_text())
    assert info["usage"]["cost"] == 0.88 and info["settings"]["model"] == "stub-model"
    assert main([*args[:9], "tiny-llm-2", *args[10:]]) == 0  # the same passages again: all from the cache
    assert "0 requests (4 answers from the cache), 0 prompt + 0 completion tokens" in capsys.readouterr().out
    assert len(server.calls) == 4

def test_llm_retries_429_then_500_then_succeeds(source, tmp_path, stub):
    server = stub(failures=[429, 500])
    gen = llm(server.url, tmp_path / "cache", retries=3)
    questions = gen.generate(corpus_of(source), 3, np.random.default_rng(0))
    assert len(questions) == 3 and len(server.calls) == 9 and set(server.seen.values()) == {3}
    assert gen.report()["requests"] == 3


def test_llm_endpoint_that_keeps_failing_or_answers_garbage(source, tmp_path, stub):
    down = stub(always=503)
    with pytest.raises(SynthError, match=rf"LLM endpoint {down.url}/chat/completions failed 3 times; last: HTTP 503"):
        llm(down.url, tmp_path / "c1", retries=2, concurrency=1).generate(corpus_of(source), 1,
                                                                           np.random.default_rng(0))
    assert len(down.calls) == 3
    garbage = stub(garbage=True)
    with pytest.raises(SynthError, match=rf"{garbage.url}/chat/completions did not answer with a chat completion"):
        llm(garbage.url, tmp_path / "c2").generate(corpus_of(source), 1, np.random.default_rng(0))
    closed = StubServer()
    closed.close()  # nothing listens there any more: connection refused, retried, then a clear error
    with pytest.raises(SynthError, match=rf"{closed.url}/chat/completions failed 2 times.*\n  fix: check that the "
                                         r"server is running"):
        llm(closed.url, tmp_path / "c3", retries=1, concurrency=1).generate(corpus_of(source), 1,
                                                                             np.random.default_rng(0))
    blank = stub(empty=True)  # chat completions, every one empty: the endpoint is named, not "--queries 0"
    with pytest.raises(SynthError, match=rf"LLM endpoint {blank.url}/chat/completions answered every request with "
                                         r"an empty message \(model stub-model\); empty answers are not cached\n"
                                         r"  fix: check that --model"):
        llm(blank.url, tmp_path / "c4").generate(corpus_of(source), 2, np.random.default_rng(0))
    with pytest.raises(SynthError, match="needs --model"):
        make_generator("llm")


def test_empty_answers_are_not_cached_so_the_fixed_endpoint_is_asked_again(source, tmp_path, stub, capsys,
                                                                            monkeypatch):
    """An endpoint answering 200 with empty messages, then fixed: the same command sends its requests again (it used
    to replay the cached empty answers, send 0 requests and fail the same way)."""
    monkeypatch.setenv("RETRIEVAL_LAB_DATA", str(source.parent))
    server = stub(empty=True)
    args = ["data", "synth", "--dataset", "tiny", "--generator", "llm", "--queries", "3", "--out", "tiny-fixed",
            "--model", "stub-model", "--base-url", server.url, "--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "answered every request with an empty message" in err and "empty answers are not cached" in err
    asked = len(server.calls)
    assert asked >= 3
    server.empty = False  # the endpoint is fixed
    assert main(args) == 0
    assert "3 requests (0 answers from the cache)" in capsys.readouterr().out
    assert len(server.calls) == asked + 3


def test_a_refused_connection_shows_each_retry_with_its_wait(source, tmp_path, caplog):
    closed = StubServer()
    closed.close()
    with caplog.at_level("WARNING", logger="retrieval_lab.data.synth.llm"), pytest.raises(SynthError):
        llm(closed.url, tmp_path / "c", retries=2, concurrency=1, backoff=0.01).generate(
            corpus_of(source), 1, np.random.default_rng(0))
    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == 2, retries
    assert re.search(r"Connection refused from .*/chat/completions; retry 1 of 2 in 0\.0 s", retries[0]), retries
    assert "retry 2 of 2 in" in retries[1]


@pytest.mark.parametrize("server, says", [
    ({"always": 503}, "failed 2 times; last: HTTP 503"),
    ({"garbage": True}, "did not answer with a chat completion"),
])
def test_cli_llm_endpoint_down_or_garbage_is_a_clear_error_and_writes_nothing(source, tmp_path, stub, capsys,
                                                                               monkeypatch, server, says):
    monkeypatch.setenv("RETRIEVAL_LAB_DATA", str(source.parent))
    url = stub(**server).url
    cache = tmp_path / "cache"
    assert main(["data", "synth", "--dataset", "tiny", "--generator", "llm", "--queries", "2", "--out", "tiny-bad",
                 "--model", "stub-model", "--base-url", url, "--retries", "1", "--cache-dir", str(cache)]) == 2
    err = capsys.readouterr().err
    error = err[err.index("error: "):]  # after the retries, each shown as it happened
    assert error.startswith(f"error: LLM endpoint {url}/chat/completions ") and says in err and "\n  fix: " in err
    shown = err[:err.index("error: ")].splitlines()
    assert all(line.startswith("WARNING ") and "retry 1 of 1 in" in line for line in shown)
    assert bool(shown) == ("always" in server)  # a 503 is retried (and shown); a body that is no API is not
    assert "Traceback" not in err
    assert not (source.parent / "tiny-bad").exists() and not (cache / "conf" / "dataset" / "tiny-bad.yaml").exists()


def test_an_empty_question_in_a_questions_file_names_file_and_line(source, tmp_path, capsys, monkeypatch):
    synthesize("tiny", "tiny-extract", "extract", 3, root=source.parent, cache_dir=str(tmp_path / "cache"),
               terms=3, min_df=1)
    path = source.parent / "tiny-extract" / "questions.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[1]["question"] = "   "
    edited = tmp_path / "edited.jsonl"
    edited.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = compose_config(["dataset=tiny-extract", f"cache.dir={tmp_path / 'cache'}", f"dataset.questions={edited}"])
    with pytest.raises(DataError, match=rf"{edited}:2: missing or empty 'question'\n  fix: every row needs the "
                                        "question text"):
        load_dataset(cfg.dataset)


def test_best_cautions_under_a_synthetic_leaderboard():
    def candidate(name, values, tags):
        return Candidate(name, name, sum(values) / len(values), 1.0, dict(zip("abcd", values)), tags=tags)

    real = [candidate("a", [0.5, 0.6, 0.4, 0.5], {}), candidate("b", [0.4, 0.5, 0.3, 0.4], {})]
    assert "caution" not in format_ranking(ranking_from(real, "ndcg_at_10", trials=100))
    synthetic = [candidate("a", [0.5, 0.6, 0.4, 0.5], {"eval_set": "synthetic", "synth_generator": "extract"}),
                 candidate("b", [0.4, 0.5, 0.3, 0.4], {"eval_set": "synthetic", "synth_generator": "extract"})]
    assert ("caution: these runs are scored on synthetic questions (extract generator)"
            in format_ranking(ranking_from(synthetic, "ndcg_at_10", trials=100)))


def test_word_forms_write_another_form_of_the_same_stem():
    corpus = Corpus(["a", "b", "c"], ["", "", ""], ["Wings lift. The wing stalls.", "Two wings, heated wings.",
                                                    "Heating the wing."])
    forms = WordForms(corpus)
    rng = np.random.default_rng(0)
    assert forms.vary("wing heated lift", rng, 1.0) == "wings heating lift"  # lift: no other form in the corpus
    assert forms.vary("wing heated", rng, 0.0) == "wing heated"


def test_extract_inflection_changes_word_forms_not_the_terms_chosen(source):
    corpus = corpus_of(source)
    exact = make_generator("extract", terms=3, min_df=1, inflect=0.0).generate(corpus, 6, np.random.default_rng(7))
    varied = make_generator("extract", terms=3, min_df=1).generate(corpus, 6, np.random.default_rng(7))
    stem = WordForms(corpus).stem
    assert [(q.doc, q.evidence) for q in exact] == [(q.doc, q.evidence) for q in varied]
    assert [[stem(w) for w in q.question.split()] for q in exact] == \
        [[stem(w) for w in q.question.split()] for q in varied]
    assert [q.question for q in exact] != [q.question for q in varied]


def test_title_dropout_and_inflection(source):
    corpus = corpus_of(source)
    plain = make_generator("title").generate(corpus, 8, np.random.default_rng(0))
    less = make_generator("title", dropout=0.5, inflect=1.0).generate(corpus, 8, np.random.default_rng(0))
    assert [q.doc for q in plain] == [q.doc for q in less]  # the same headings, asked differently
    for p, q in zip(plain, less):
        content = [w for w in words(p.question) if w.lower() not in stopwords()]
        assert len(q.question.split()) >= min(2, len(content)) and len(q.question.split()) <= len(content)
    assert any(p.question != q.question for p, q in zip(plain, less))
