"""`retrieval-lab judge` in headless Chromium: five pairs judged with keys and clicks (one with evidence selected in
the passage), the server killed with SIGKILL, started again, and the five judgements found kept, on the page and on
disk; a judgement for a pair that left the pool is refused and the page says why.

Needs Debian's `chromium` (`make browser-deps`) and the `playwright` Python package (no browser download).
Screenshots land in outputs/judge-test/ (ignored by git).
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.integration.sweep_util import CLI, REPO, cli, sweep, tiny_beir

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = REPO / "outputs" / "judge-test"

pytestmark = pytest.mark.browser


def start_judge(args: list[str], cwd: Path, env_extra: dict | None = None,
                output: list | None = None) -> tuple[subprocess.Popen, str]:
    """The judge command in the background; returns it and the URL it prints on a line of its own. `output`
    collects every line it prints, then and later."""
    proc = subprocess.Popen([*CLI, "judge", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "RETRIEVAL_LAB_CODE_VERSION": "test-code-v1",
                                            **(env_extra or {})})
    lines: queue.Queue = queue.Queue()  # a thread reads them: select() misses lines already in the pipe's buffer
    seen = [] if output is None else output

    def read():
        for line in proc.stdout:
            lines.put(line)
            seen.append(line)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            line = lines.get(timeout=1.0)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        if line.startswith("http://127.0.0.1:"):
            return proc, line.strip()
    proc.kill()
    raise AssertionError("judge printed no URL:\n" + "".join(seen))


def launch(p):
    return p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"])


def test_judge_five_with_keys_and_clicks_survive_a_kill(tmp_path, mlflow_uri):
    if not Path(CHROMIUM).exists():
        pytest.skip("CHROMIUM NOT INSTALLED: `make browser-deps` (apt-get install chromium); browser test SKIPPED")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    tiny = tiny_beir(tmp_path / "tiny")
    proc = sweep(["retriever.k1=0.5,1.5", f"dataset.path={tiny}", "tracking.experiment=judgetest"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    queries = [json.loads(line) for line in (tiny / "queries.jsonl").read_text().splitlines()][:3]
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps({"id": q["_id"], "question": q["text"]}) + "\n" for q in queries))
    args = ["--experiment", "judgetest", "--questions", str(questions), "--port", "0", "--depth", "5",
            "--order", "global"]
    folder = tmp_path / "questions.judged"
    SHOTS.mkdir(parents=True, exist_ok=True)

    server, url = start_judge(args, tmp_path)
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.set_default_timeout(30_000)
            page.goto(url)
            progress = page.locator("#progress")
            progress.filter(has_text="0 / ").wait_for()
            total = int(progress.inner_text().split("/")[1].split()[0])
            assert total >= 5
            # the page shows the progress before the first passage has loaded: wait for the passage itself
            page.locator("#position").filter(has_text=f"Passage 1 of {total}").wait_for()
            page.locator("#passage .term").first.wait_for()  # the question's terms are highlighted
            first = page.locator("#passage").inner_text()
            # 1: select the passage's first word as evidence, then the key "2" (relevant)
            page.evaluate("""() => {
                const node = document.querySelector('#passage').firstChild;
                const text = node.textContent, end = text.search(/\\s/) > 0 ? text.search(/\\s/) : text.length;
                const range = document.createRange();
                range.setStart(node.firstChild || node, 0);
                range.setEnd(node.firstChild || node, end);
                getSelection().removeAllRanges();
                getSelection().addRange(range);
            }""")
            page.keyboard.press("2")
            progress.filter(has_text=f"1 / {total} judged").wait_for()
            page.keyboard.press("n")  # 2: not relevant, by key
            progress.filter(has_text=f"2 / {total} judged").wait_for()
            page.click("#grade-1")  # 3: partly relevant, by click
            progress.filter(has_text=f"3 / {total} judged").wait_for()
            # 4 and 5 back to back, without waiting: the second grade must land on the next passage, not re-judge
            # the one still saving
            page.click("#grade-0")  # 4: not relevant, by click
            page.keyboard.press("r")  # 5: relevant, by key
            progress.filter(has_text=f"5 / {total} judged").wait_for()
            page.screenshot(path=str(SHOTS / "judged-5.png"))
            browser.close()
    finally:
        server.send_signal(signal.SIGKILL)  # no clean shutdown: only what was fsynced counts
        server.wait()

    lines = (folder / "judgements.jsonl").read_text().splitlines()
    assert [json.loads(line)["grade"] for line in lines] == [2, 0, 1, 0, 2]
    evidence = json.loads(lines[0])["evidence"]
    assert len(evidence) == 1 and evidence[0][2] == first.split()[0]

    server, url = start_judge(args, tmp_path)
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.set_default_timeout(30_000)
            page.goto(url)
            page.locator("#progress").filter(has_text=f"5 / {total} judged").wait_for()
            page.locator("#position").filter(has_text=f"Passage 6 of {total}").wait_for()  # resumes after the 5th
            for _ in range(5):
                page.keyboard.press("ArrowLeft")
            page.locator("#position").filter(has_text=f"Passage 1 of {total}").wait_for()
            page.locator("#status").filter(has_text="Judged relevant").wait_for()
            assert page.locator("#passage .evidence").first.inner_text() == first.split()[0]
            assert "grade-2 chosen" in page.locator("#grade-2").get_attribute("class")
            page.screenshot(path=str(SHOTS / "resumed.png"))
            # the pair leaves the pool (pooled again since the page loaded it): refused, and the page says so
            page.evaluate("() => { item.doc = 'no-such-doc'; }")
            page.keyboard.press("0")
            page.locator("#error").filter(has_text="is not in the pool").wait_for()
            browser.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert len((folder / "judgements.jsonl").read_text().splitlines()) == 5


def test_two_assessors_on_two_page_servers_one_question_at_a_time_and_a_new_configuration(tmp_path, mlflow_uri):
    """ann and bob judge one pool at once from two `judge` processes (question order, overlap 1: each judges every
    passage): nothing is lost, bob starts on the question ann is not on, the page shows what is left of the question
    and the decision, kappa appears once both judged one passage; ann's server killed and started again resumes on
    her question; a configuration that finishes meanwhile is announced on the page, and the next start extends the
    pool keeping every judgement."""
    if not Path(CHROMIUM).exists():
        pytest.skip("CHROMIUM NOT INSTALLED: `make browser-deps` (apt-get install chromium); browser test SKIPPED")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    tiny = tiny_beir(tmp_path / "tiny")
    proc = sweep(["retriever.k1=0.5,1.5", f"dataset.path={tiny}", "tracking.experiment=judgetwo"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    queries = [json.loads(line) for line in (tiny / "queries.jsonl").read_text().splitlines()][:3]
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps({"id": q["_id"], "question": q["text"]}) + "\n" for q in queries))
    common = ["--experiment", "judgetwo", "--questions", str(questions), "--port", "0", "--depth", "5",
              "--overlap", "1"]
    folder = tmp_path / "questions.judged"
    watch = {"RETRIEVAL_LAB_JUDGE_WATCH_SECONDS": "1"}
    SHOTS.mkdir(parents=True, exist_ok=True)
    ann_out: list[str] = []
    ann_server, ann_url = start_judge([*common, "--assessor", "ann"], tmp_path, watch, ann_out)
    bob_server, bob_url = start_judge([*common, "--assessor", "bob"], tmp_path)
    assert ann_url != bob_url
    try:
        with playwright.sync_playwright() as p:
            browser = launch(p)
            ann = browser.new_page(viewport={"width": 1200, "height": 900})
            ann.set_default_timeout(30_000)
            ann.goto(ann_url)
            ann.locator("#question-label").filter(has_text="Question 1 of 3").wait_for()
            left = ann.locator("#question-left")
            left.filter(has_text="left for this question").wait_for()
            first_left = int(left.inner_text().split()[1])
            assert ann.locator("#decision").inner_text().startswith(("leader:", "decided:"))
            ann_first = ann.evaluate("item.index")
            ann.keyboard.press("2")
            ann.locator("#progress").filter(has_text="1 / ").wait_for()
            if first_left > 1:  # still on question 1, one fewer left
                left.filter(has_text=f"· {first_left - 1} left for this question").wait_for()

            bob = browser.new_page(viewport={"width": 1200, "height": 900})
            bob.set_default_timeout(30_000)
            bob.goto(bob_url)
            # ann is on question 1: bob starts on the next question nobody is on
            bob.locator("#question-label").filter(has_text="Question 2 of 3").wait_for()
            bob.locator("#status").filter(has_text="overlap share").wait_for()
            # both judge three passages at once, without waiting for each other
            for key_ann, key_bob in (("0", "2"), ("n", "r"), ("1", "p")):
                ann.keyboard.press(key_ann)
                bob.keyboard.press(key_bob)
            ann.locator("#progress").filter(has_text="7 / ").wait_for()  # the poll brings bob's three
            bob.locator("#progress").filter(has_text="7 / ").wait_for()
            # bob judges ann's first passage too: one passage judged by both
            bob.evaluate(f"load({ann_first})")
            bob.locator("#position").filter(has_text=f"Passage {ann_first + 1} of").wait_for()
            bob.keyboard.press("0")
            bob.locator("#agreement").filter(has_text="ann / bob: 1 units judged by both").wait_for()
            ann.locator("#agreement").filter(has_text="ann / bob: 1 units judged by both").wait_for()
            ann.screenshot(path=str(SHOTS / "two-assessors-ann.png"))
            bob.screenshot(path=str(SHOTS / "two-assessors-bob.png"))

            # a configuration finishes while both pages run: the page says so and how to extend the pool
            proc = sweep(["retriever.k1=3.0", f"dataset.path={tiny}", "tracking.experiment=judgetwo"], tmp_path)
            assert proc.returncode == 0, proc.stderr[-2000:]
            ann.locator("#notice").filter(has_text="finished after this pool was made").wait_for()
            assert "--assessor ann" in ann.locator("#notice").inner_text()  # the command to extend the pool
            browser.close()
    finally:
        ann_server.send_signal(signal.SIGKILL)
        ann_server.wait()
        bob_server.send_signal(signal.SIGTERM)
        bob_server.wait(timeout=30)

    lines = [json.loads(line) for line in (folder / "judgements.jsonl").read_text().splitlines()]
    assert [j["assessor"] for j in lines].count("ann") == 4 and [j["assessor"] for j in lines].count("bob") == 4
    pool = json.loads((folder / "pool.json").read_text())
    firsts = {(j["query_id"], j["doc"]) for j in lines if j["assessor"] == "ann"}
    assert len(firsts) == 4  # every one of ann's keys judged a passage of its own
    # ann's 2 and bob's 0 on the shared passage: the lower median, not relevant
    shared = pool["items"][ann_first]
    assert f"{shared['query_id']}\t{shared['doc']}\t0" in (folder / "qrels.tsv").read_text()

    # ann starts again: the pool is extended with the new configuration, every judgement kept, and she resumes
    # on her question
    out: list[str] = []
    ann_server, ann_url = start_judge([*common, "--assessor", "ann"], tmp_path, output=out)
    try:
        text = "".join(out)
        assert "1 configuration(s) finished since the pool was made (" in text and "extending the pool" in text
        assert "judged so far: 7 of" in text  # 4 passages by ann, 3 more by bob
        assert len(json.loads((folder / "pool.json").read_text())["configurations"]) == 3
        with playwright.sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.set_default_timeout(30_000)
            page.goto(ann_url)
            page.locator("#question-label").filter(has_text="Question 1 of 3").wait_for()
            page.locator("#progress").filter(has_text="7 / ").wait_for()
            browser.close()
    finally:
        ann_server.send_signal(signal.SIGTERM)
        ann_server.wait(timeout=30)


def test_unknown_order_and_bad_assessor_name_are_refused_before_any_work(tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "a question"}) + "\n")
    base = ["--experiment", "none", "--questions", str(questions)]
    proc = cli(["judge", *base, "--order", "fastest"], tmp_path)
    assert proc.returncode != 0 and "--order 'fastest' is not a judging order" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = cli(["judge", *base, "--assessor", "ann smith"], tmp_path)
    assert proc.returncode != 0 and "fix: --assessor ann_smith" in proc.stderr and "Traceback" not in proc.stderr
    # following the fix gets past the name: the next error is the missing experiment
    proc = cli(["judge", *base, "--assessor", "ann_smith"], tmp_path)
    assert "--assessor" not in proc.stderr and "no MLflow experiment 'none'" in proc.stderr
