"""The judging page: a local web server (standard library only) on 127.0.0.1, one HTML page and a small JSON API.

- `GET /` the page (page.html, no external scripts or styles: it works offline);
- `GET /api/state?assessor=NAME` progress, the next unit for that assessor in the page's order (order.py), how many
  are left for its question, the decision so far (decide.py: leader, configurations that could still overtake it,
  "decided: ..."), the assessors' agreement, and a notice when the pool changed under the page;
- `GET /api/item?i=N&assessor=NAME` the N-th pool item: question, its terms' places in the unit text, the unit's
  text, document, title and location, which configurations retrieved it at which rank, and its judgement so far
  (the assessor's own; another assessor's unless the unit is in the overlap share, which each judges blind);
- `POST /api/judge` {query_id, doc, start, end, grade, evidence: [[start, end], ...], assessor}: saved (fsync) before
  the answer; 409 when the pair is not in the pool (it was pooled again since the page loaded it), 400 for a grade,
  an evidence span or an assessor name that does not fit.

Every request first reads what other processes appended to judgements.jsonl, so two page servers on one pool (or
two tabs, `?assessor=` telling them apart) see each other's judgements.

It listens on 127.0.0.1 only, answers only requests whose Host is that address (a web page elsewhere cannot reach
it through DNS rebinding), and takes only JSON posts (a cross-site form cannot send one without a preflight, which
it never allows).
"""
from __future__ import annotations

import json
import threading
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlparse

import numpy as np

from retrieval_lab.errors import LabError
from retrieval_lab.judging.assessors import agreement, check_assessor, in_overlap
from retrieval_lab.judging.decide import Board, decide, unit_values
from retrieval_lab.judging.order import DEFAULT_ORDER, left_in_question, next_unit
from retrieval_lab.judging.pool import POOL_FILE, Pool, read_pool
from retrieval_lab.judging.store import (GRADES, Judgement, JudgementStore, JudgedSet, now, unit_grades,
                                         write_judged_set)
from retrieval_lab.sparse.tokenize import Tokenizer, TokenizerConfig
from retrieval_lab.types import Corpus

HOST = "127.0.0.1"


class JudgingError(Exception):
    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


@lru_cache(maxsize=1)
def _tokenizer() -> Tokenizer:
    """BM25's tokenizer with the longer stopword list: the page marks the words that carry a question, not its
    "how" or "which"."""
    return Tokenizer(TokenizerConfig(stopwords="en_plus"))


def question_terms(question: str) -> set[str]:
    """The question's BM25 terms: stems of its words, stopwords left out (case-insensitive)."""
    return set(_tokenizer()([question])[0])


def term_spans(text: str, terms: set[str]) -> list[list[int]]:
    """[start, end] of each word of `text` whose BM25 term is a question term."""
    return [[start, end] for start, end, term in _tokenizer().spans(text) if term in terms]


def pool_board(pool: Pool) -> Board:
    order = {q: n for n, q in enumerate(pool.questions.ids)}
    return Board.from_hits([item.hits for item in pool.items], [order[item.query_id] for item in pool.items],
                           len(pool.questions), [c["name"] for c in pool.configurations], pool.depth,
                           [item.doc for item in pool.items])


class JudgingApp:
    """The pool, the store and the corpus behind the page; one lock around every write (and the store's file lock
    around those of other processes). `report` gets a line whenever the decision changes (the console)."""

    def __init__(self, folder, pool: Pool, store: JudgementStore, corpus: Corpus, order: str = DEFAULT_ORDER,
                 assessor: str = "", overlap: float = 0.0, report=lambda line: None):
        self.folder, self.store, self.corpus = folder, store, corpus
        self.order, self.assessor, self.overlap, self.report = order, assessor, overlap, report
        self.row = corpus.index_of()
        self.lock = threading.Lock()
        self.notices: list[str] = []  # what changed under the page (a new configuration, the pool made again)
        self.watched: dict = {}  # pool.json's (mtime, size) when last read
        self._use_pool(pool)
        self.last_key = None  # the decision last reported (tell)
        with self.store.locked():
            self.store.refresh()
            self.judged_set: JudgedSet = write_judged_set(folder, pool, store, corpus)

    def _use_pool(self, pool: Pool) -> None:
        self.pool = pool
        self.index = pool.index_of()
        self.text = pool.question_text()
        self.board = pool_board(pool)
        self.overlapping = np.array([in_overlap(item.key, self.overlap) for item in pool.items], dtype=bool)
        path = self.folder / POOL_FILE
        self.watched = self._stamp(path)

    @staticmethod
    def _stamp(path) -> tuple | None:
        try:
            st = path.stat()
            return st.st_mtime_ns, st.st_size
        except OSError:
            return None

    def sync(self) -> None:
        """Read other processes' judgements, and follow pool.json when another `judge` made the pool again (the
        same questions with a configuration more, say): judgements carry over by unit."""
        self.store.refresh()
        path = self.folder / POOL_FILE
        stamp = self._stamp(path)
        if stamp == self.watched or stamp is None:
            return
        try:
            pool = read_pool(self.folder)
        except LabError:
            return  # half-written by nobody (writes are atomic): a broken file is reported when judge starts
        if pool is None or pool.inputs() == self.pool.inputs():
            self.watched = stamp
            return
        old = {c["run_id"] for c in self.pool.configurations}
        added = [c["name"] for c in pool.configurations if c["run_id"] not in old]
        before = len(self.pool.items)
        with self.lock:
            self._use_pool(pool)
        self.notices.append(f"The pool was made again by another judge process ({len(pool.items)} pairs, "
                            f"{before} before" + (f"; new configurations: {', '.join(added)}" if added else "")
                            + "): this page follows it; your judgements are kept.")

    def grades(self) -> np.ndarray:
        """The consensus grade of each pool unit, NaN where unjudged."""
        by_key = unit_grades(self.pool, self.store)
        return np.array([by_key.get(item.key, np.nan) for item in self.pool.items], dtype=float)

    def _current(self, key, assessor: str | None = None) -> Judgement | None:
        """The assessor's own last judgement of the unit (any assessor's with None), of the current question."""
        judgement = self.store.latest.get(key) if assessor is None else self.store.own.get((key, assessor))
        return judgement if judgement is not None and judgement.question == self.text.get(key[0]) else None

    def done(self, assessor: str) -> np.ndarray:
        """Per unit: judged by this assessor, or by anyone and outside the overlap share."""
        mine = np.array([self._current(item.key, assessor) is not None for item in self.pool.items], dtype=bool)
        anyone = np.array([self._current(item.key) is not None for item in self.pool.items], dtype=bool)
        return mine | (anyone & ~self.overlapping)

    def judged(self) -> int:
        return sum(self._current(item.key) is not None for item in self.pool.items)

    def _last(self, assessor: str) -> int | None:
        for (key, who) in reversed(self.store.own):
            if who == assessor and key in self.index and self._current(key, assessor) is not None:
                return self.index[key]
        return None

    def _taken_questions(self, assessor: str) -> frozenset[int]:
        """Questions other assessors are on: that of each one's last judgement."""
        order = {q: n for n, q in enumerate(self.pool.questions.ids)}
        last: dict[str, str] = {}
        for (key, who) in self.store.own:
            if who != assessor and key in self.index:
                last[who] = key[0]
        return frozenset(order[q] for q in last.values())

    def decision(self, grades: np.ndarray | None = None):
        return decide(self.board, self.grades() if grades is None else grades)

    def resume_at(self, assessor: str | None = None) -> int:
        """The next unit for the assessor in the page's order; 0 when everything is done."""
        assessor = self.assessor if assessor is None else assessor
        grades = self.grades()
        nxt = next_unit(self.order, self.board, grades, self.done(assessor), self._last(assessor),
                        self._taken_questions(assessor))
        return 0 if nxt is None else nxt

    def state(self, assessor: str | None = None) -> dict:
        assessor = self._assessor(assessor)
        self.sync()
        s = self.judged_set
        grades = self.grades()
        decision = decide(self.board, grades)
        done = self.done(assessor)
        nxt = next_unit(self.order, self.board, grades, done, self._last(assessor), self._taken_questions(assessor),
                        decision)
        values = unit_values(self.board, grades, decision) if self.order == "decisive" else None
        names = self.board.names
        units = {k: {a: j.grade for a, j in by.items() if j.question == self.text.get(k[0])}
                 for k, by in self.store.units().items() if k in self.index}
        assessors = sorted({a for by in units.values() for a in by})
        return {"total": len(self.pool.items), "judged": self.judged(), "resume": 0 if nxt is None else nxt,
                "left_for_me": int((~done).sum()), "order": self.order, "assessor": assessor,
                "assessors": assessors, "overlap": self.overlap,
                "mine": sum(self._current(item.key, assessor) is not None for item in self.pool.items),
                "question_left": 0 if nxt is None else left_in_question(self.order, self.board, done, nxt, values),
                "decision": decision.to_json(names, self.metric),
                "agreement": agreement(units), "notices": self.notices,
                "experiment": self.pool.experiment, "depth": self.pool.depth,
                "configurations": len(self.pool.configurations), "questions": len(self.pool.questions),
                "evaluated_questions": s.evaluated, "evidence_spans": s.evidence,
                "judged_set": str(self.folder / "judged.jsonl"), "grades": {str(k): v for k, v in GRADES.items()}}

    @property
    def metric(self) -> str:
        return f"DCG@{self.pool.depth}"

    def _assessor(self, assessor: str | None) -> str:
        if not assessor:
            return self.assessor
        try:
            return check_assessor(assessor)
        except LabError as exc:
            raise JudgingError(HTTPStatus.BAD_REQUEST, str(exc).replace("--assessor", "assessor")) from None

    def item(self, i: int, assessor: str | None = None) -> dict:
        assessor = self._assessor(assessor)
        self.sync()
        if not 0 <= i < len(self.pool.items):
            raise JudgingError(HTTPStatus.NOT_FOUND, f"no item {i}: the pool has {len(self.pool.items)}")
        item = self.pool.items[i]
        row = self.row[item.doc]
        text = self.corpus.texts[row][item.start:item.end]
        question = self.text[item.query_id]
        judgement = self._current(item.key, assessor)
        blind = bool(self.overlapping[i])
        if judgement is None and not blind:
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
            "configurations": len(configurations), "overlap": blind,
            "judgement": None if judgement is None else {"grade": judgement.grade, "at": judgement.at,
                                                         "assessor": judgement.assessor,
                                                         "evidence": [[s, e] for s, e, _ in judgement.evidence]},
        }

    def _location(self, row: int, start: int, end: int) -> str:
        metadata = self.corpus.metadata[row] if self.corpus.metadata else {}
        if metadata.get("source"):
            from retrieval_lab.data.places import source_location

            where = source_location(metadata, start)
            page = f", page {where['page']}" if where.get("page") is not None else ""
            return f"{where['file']}{page}, offset {where['offset']}"
        return f"characters {start}-{end} of {len(self.corpus.texts[row])}"

    def judge(self, payload: dict) -> dict:
        try:
            key = (str(payload["query_id"]), str(payload["doc"]), int(payload["start"]), int(payload["end"]))
            grade = payload["grade"]
            spans = [(int(s), int(e)) for s, e in payload.get("evidence") or []]
            assessor = payload.get("assessor")
            if assessor is not None and not isinstance(assessor, str):
                raise TypeError
        except (KeyError, TypeError, ValueError):
            raise JudgingError(HTTPStatus.BAD_REQUEST, "a judgement needs query_id, doc, start, end, grade and "
                                                       "evidence as [[start, end], ...]") from None
        assessor = self._assessor(assessor)
        self.sync()
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
        judgement = Judgement(key[0], self.text[key[0]], doc, start, end, grade, evidence, now(), assessor)
        with self.lock, self.store.locked():
            self.store.refresh()
            self.store.record(judgement)
            self.judged_set = write_judged_set(self.folder, self.pool, self.store, self.corpus)
        state = self.state(assessor)
        self.tell(state)
        return {"saved": True, **state}

    def tell(self, state: dict) -> None:
        """Report the decision when it changes: another leader, other contenders, the forecast, decided or not,
        another runner-up (not every move of the estimates)."""
        d = state["decision"]
        key = (d["leader"], d["decided"], d["likely"], frozenset(d["contenders"]),
               d["decided"] and d["runner_up"]["name"])
        if key != self.last_key:
            if self.last_key is not None:
                self.report(f"[{state['judged']}/{state['total']} judged] {d['statement']}")
            self.last_key = key


def page_html() -> bytes:
    return resources.files("retrieval_lab.judging").joinpath("page.html").read_bytes()


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
                query = parse_qs(url.query)
                assessor = query.get("assessor", [""])[0]
                if url.path in ("/", "/index.html"):
                    self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
                elif url.path == "/api/state":
                    self._json(HTTPStatus.OK, app.state(assessor))
                elif url.path == "/api/item":
                    index = query.get("i", ["0"])[0]
                    if not index.isdigit():
                        raise JudgingError(HTTPStatus.BAD_REQUEST, f"item index {index!r} is not a number")
                    self._json(HTTPStatus.OK, app.item(int(index), assessor))
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
