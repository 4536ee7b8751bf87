"""The judging page: a local web server (standard library only) on 127.0.0.1, one HTML page and a small JSON API.

- `GET /` the page (page.html, no external scripts or styles: it works offline);
- `GET /api/state` progress and where to resume (the first unjudged item after the last one judged);
- `GET /api/item?i=N` the N-th pool item: question, its terms' places in the unit text, the unit's text, document,
  title and location, which configurations retrieved it at which rank, and its judgement so far;
- `POST /api/judge` {query_id, doc, start, end, grade, evidence: [[start, end], ...]}: saved (fsync) before the
  answer; 409 when the pair is not in the pool (it was pooled again since the page loaded it), 400 for a grade or
  an evidence span that does not fit.

It listens on 127.0.0.1 only, answers only requests whose Host is that address (a web page elsewhere cannot reach
it through DNS rebinding), and takes only JSON posts (a cross-site form cannot send one without a preflight, which
it never allows).
"""
from __future__ import annotations

import json
import re
import threading
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlparse

from retrieval_lab.data.judging.pool import Pool
from retrieval_lab.data.judging.store import GRADES, Judgement, JudgementStore, JudgedSet, now, write_judged_set
from retrieval_lab.types import Corpus

HOST = "127.0.0.1"
WORD = re.compile(r"\w\w+")  # the BM25 tokenizer's pattern (sparse/tokenize.py)


class JudgingError(Exception):
    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english").stemWord


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s import stopwords

    return frozenset(stopwords.STOPWORDS_EN_PLUS)


def question_terms(question: str) -> set[str]:
    """Stems of the question's words, stopwords left out (case-insensitive)."""
    stem, stop = _stemmer(), _stopwords()
    return {stem(w) for w in WORD.findall(question.lower()) if w not in stop}


def term_spans(text: str, terms: set[str]) -> list[list[int]]:
    """[start, end] of each word of `text` whose stem is a question term."""
    stem = _stemmer()
    return [[m.start(), m.end()] for m in WORD.finditer(text) if stem(m.group().lower()) in terms]


class JudgingApp:
    """The pool, the store and the corpus behind the page; one lock around every write."""

    def __init__(self, folder, pool: Pool, store: JudgementStore, corpus: Corpus):
        self.folder, self.pool, self.store, self.corpus = folder, pool, store, corpus
        self.index = pool.index_of()
        self.row = corpus.index_of()
        self.text = pool.question_text()
        self.lock = threading.Lock()
        self.judged_set: JudgedSet = write_judged_set(folder, pool, store, corpus)

    def _current(self, key) -> Judgement | None:
        judgement = self.store.latest.get(key)
        return judgement if judgement is not None and judgement.question == self.text.get(key[0]) else None

    def judged(self) -> int:
        return sum(self._current(item.key) is not None for item in self.pool.items)

    def resume_at(self) -> int:
        """The first unjudged item after the last one judged (pool order, wrapping), else 0."""
        items = self.pool.items
        last = next((self.index[k] for k in reversed(self.store.latest) if k in self.index
                     and self._current(k) is not None), -1)
        for step in range(1, len(items) + 1):
            i = (last + step) % len(items)
            if self._current(items[i].key) is None:
                return i
        return 0

    def state(self) -> dict:
        s = self.judged_set
        return {"total": len(self.pool.items), "judged": self.judged(), "resume": self.resume_at(),
                "experiment": self.pool.experiment, "depth": self.pool.depth,
                "configurations": len(self.pool.configurations), "questions": len(self.pool.questions),
                "evaluated_questions": s.evaluated, "evidence_spans": s.evidence,
                "judged_set": str(self.folder / "judged.jsonl"), "grades": {str(k): v for k, v in GRADES.items()}}

    def item(self, i: int) -> dict:
        if not 0 <= i < len(self.pool.items):
            raise JudgingError(HTTPStatus.NOT_FOUND, f"no item {i}: the pool has {len(self.pool.items)}")
        item = self.pool.items[i]
        row = self.row[item.doc]
        text = self.corpus.texts[row][item.start:item.end]
        question = self.text[item.query_id]
        judgement = self._current(item.key)
        configurations = self.pool.configurations
        return {
            "index": i, "total": len(self.pool.items), "query_id": item.query_id, "question": question,
            "question_number": self.pool.questions.ids.index(item.query_id) + 1,
            "questions": len(self.pool.questions), "doc": item.doc, "title": self.corpus.titles[row],
            "start": item.start, "end": item.end, "document_length": len(self.corpus.texts[row]),
            "location": self._location(row, item.start, item.end), "text": text,
            "terms": term_spans(text, question_terms(question)),
            "retrieved_by": [{"name": configurations[c]["name"], "rank": r} for c, r in sorted(item.hits)],
            "configurations": len(configurations),
            "judgement": None if judgement is None else {"grade": judgement.grade, "at": judgement.at,
                                                         "evidence": [[s, e] for s, e, _ in judgement.evidence]},
        }

    def _location(self, row: int, start: int, end: int) -> str:
        metadata = self.corpus.metadata[row] if self.corpus.metadata else {}
        if metadata.get("source"):
            from retrieval_lab.data.folder import source_location

            where = source_location(metadata, start)
            page = f", page {where['page']}" if where.get("page") is not None else ""
            return f"{where['file']}{page}, offset {where['offset']}"
        return f"characters {start}-{end} of {len(self.corpus.texts[row])}"

    def judge(self, payload: dict) -> dict:
        try:
            key = (str(payload["query_id"]), str(payload["doc"]), int(payload["start"]), int(payload["end"]))
            grade = payload["grade"]
            spans = [(int(s), int(e)) for s, e in payload.get("evidence") or []]
        except (KeyError, TypeError, ValueError):
            raise JudgingError(HTTPStatus.BAD_REQUEST, "a judgement needs query_id, doc, start, end, grade and "
                                                       "evidence as [[start, end], ...]") from None
        if key not in self.index:
            raise JudgingError(HTTPStatus.CONFLICT,
                               f"question {key[0]} with passage {key[1]} [{key[2]}-{key[3]}] is not in the pool "
                               "(it was pooled again since this page loaded it): nothing was saved; reload the page")
        if grade not in GRADES or isinstance(grade, bool):
            raise JudgingError(HTTPStatus.BAD_REQUEST, f"grade {grade!r} is not one of {sorted(GRADES)}")
        _, doc, start, end = key
        bad = [f"{s}-{e}" for s, e in spans if not start <= s < e <= end]
        if bad:
            raise JudgingError(HTTPStatus.BAD_REQUEST, f"evidence {', '.join(bad)} is not inside the passage "
                                                       f"[{start}-{end}]")
        if spans and grade == 0:
            raise JudgingError(HTTPStatus.BAD_REQUEST, "a passage judged not relevant holds no evidence: clear "
                                                       "the selection or grade it relevant or partly relevant")
        text = self.corpus.texts[self.row[doc]]
        evidence = tuple((s, e, text[s:e]) for s, e in sorted(set(spans)))
        judgement = Judgement(key[0], self.text[key[0]], doc, start, end, grade, evidence, now())
        with self.lock:
            self.store.record(judgement)
            self.judged_set = write_judged_set(self.folder, self.pool, self.store, self.corpus)
            return {"saved": True, **self.state()}


def page_html() -> bytes:
    return resources.files("retrieval_lab.data.judging").joinpath("page.html").read_bytes()


def make_server(app: JudgingApp, port: int = 0) -> ThreadingHTTPServer:
    """The server on 127.0.0.1:`port` (0: a free port); `serve_forever()` runs it."""
    page = page_html()

    class Handler(BaseHTTPRequestHandler):
        server_version = "retrieval-lab-judge"

        def log_message(self, format, *args):  # the console shows progress, not every request
            pass

        def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; "
                                                        "script-src 'unsafe-inline'")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: HTTPStatus, data: dict) -> None:
            self._send(status, json.dumps(data).encode("utf-8"), "application/json; charset=utf-8")

        def _host_ok(self) -> bool:
            port = self.server.server_address[1]
            if self.headers.get("Host") in (f"{HOST}:{port}", f"localhost:{port}"):
                return True
            self._json(HTTPStatus.FORBIDDEN, {"error": f"open the page at http://{HOST}:{port}/"})
            return False

        def do_GET(self):
            if not self._host_ok():
                return
            url = urlparse(self.path)
            try:
                if url.path in ("/", "/index.html"):
                    self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
                elif url.path == "/api/state":
                    self._json(HTTPStatus.OK, app.state())
                elif url.path == "/api/item":
                    index = parse_qs(url.query).get("i", ["0"])[0]
                    if not index.isdigit():
                        raise JudgingError(HTTPStatus.BAD_REQUEST, f"item index {index!r} is not a number")
                    self._json(HTTPStatus.OK, app.item(int(index)))
                else:
                    self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {url.path}"})
            except JudgingError as exc:
                self._json(exc.status, {"error": str(exc)})

        def do_POST(self):
            if not self._host_ok():
                return
            if urlparse(self.path).path != "/api/judge":
                return self._json(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: {self.path}"})
            if not (self.headers.get("Content-Type") or "").startswith("application/json"):
                return self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "send the judgement as JSON"})
            try:
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(min(length, 1 << 20)) or b"{}")
                if not isinstance(payload, dict):
                    raise ValueError("not an object")
                self._json(HTTPStatus.OK, app.judge(payload))
            except ValueError as exc:
                self._json(HTTPStatus.BAD_REQUEST, {"error": f"the body is not a JSON object ({exc})"})
            except JudgingError as exc:
                self._json(exc.status, {"error": str(exc)})

    server = ThreadingHTTPServer((HOST, port), Handler)
    server.daemon_threads = True
    return server
