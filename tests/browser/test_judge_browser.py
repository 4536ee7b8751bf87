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

from tests.integration.sweep_util import CLI, REPO, sweep, tiny_beir

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = REPO / "outputs" / "judge-test"

pytestmark = pytest.mark.browser


def start_judge(args: list[str], cwd: Path) -> tuple[subprocess.Popen, str]:
    """The judge command in the background; returns it and the URL it prints on a line of its own."""
    proc = subprocess.Popen([*CLI, "judge", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "RETRIEVAL_LAB_CODE_VERSION": "test-code-v1"})
    lines: queue.Queue = queue.Queue()  # a thread reads them: select() misses lines already in the pipe's buffer
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    seen, deadline = [], time.time() + 180
    while time.time() < deadline:
        try:
            line = lines.get(timeout=1.0)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if line.startswith("http://127.0.0.1:"):
            return proc, line.strip()
    proc.kill()
    raise AssertionError("judge printed no URL:\n" + "".join(seen))


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
    args = ["--experiment", "judgetest", "--questions", str(questions), "--port", "0", "--depth", "5"]
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
