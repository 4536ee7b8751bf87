"""Two processes judging one pool at once lose no judgment (real processes; tests/unit/test_judging_decide.py: the rest,
in one process)."""
from __future__ import annotations

import json
import multiprocessing

from retrieval_lab.judging.server import JudgingApp
from retrieval_lab.judging.store import JudgementStore
from tests.unit.test_judging_decide import CORPUS, pool_of


def _judge_many(folder, assessor, n):
    pool = pool_of()
    app = JudgingApp(folder, pool, JudgementStore(folder), CORPUS, assessor=assessor)
    for k in range(n):
        item = pool.items[k % len(pool.items)]
        app.judge({"query_id": item.query_id, "doc": item.doc, "start": 0, "end": 50, "grade": k % 3,
                   "assessor": assessor})


def test_two_processes_judging_one_pool_lose_nothing(tmp_path):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_judge_many, args=(tmp_path, name, 40)) for name in ("ann", "bob")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = [json.loads(line) for line in (tmp_path / "judgements.jsonl").read_text().splitlines()]
    assert len(lines) == 80 and {line["assessor"] for line in lines} == {"ann", "bob"}
    store = JudgementStore(tmp_path)
    units = len(pool_of().items)
    assert len(store.own) == 2 * min(40, units)
    # the judged set written last holds every unit either judged, with the consensus grade
    judged = [json.loads(line) for line in (tmp_path / "judged.jsonl").read_text().splitlines()]
    assert sum(len(r["grades"]) for r in judged) == len({(k[0], k[1]) for k, _ in store.own})
