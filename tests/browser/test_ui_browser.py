"""`retrieval-lab ui`: the MLflow UI in headless Chromium shows the sweep's runs sorted by the metric, with its column.

Needs Debian's `chromium` (`make browser-deps`) and the `playwright` Python package (no browser download).
Screenshots land in outputs/ui-test/ (ignored by git).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integration.sweep_util import REPO, sweep, tiny_beir

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = REPO / "outputs" / "ui-test"

pytestmark = pytest.mark.browser


def test_runs_view_shows_run_names_and_the_metric_column(tmp_path, mlflow_uri):
    if not Path(CHROMIUM).exists():
        pytest.skip("CHROMIUM NOT INSTALLED: `make browser-deps` (apt-get install chromium); browser test SKIPPED")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    tiny = tiny_beir(tmp_path / "tiny")
    proc = sweep(["retriever.k1=0.5,1.5", f"dataset.path={tiny}", "tracking.experiment=uitest"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]

    from mlflow.tracking import MlflowClient

    from retrieval_lab.commands.ui import shared_view, start_ui, stop_ui, view_url

    client = MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name("uitest")
    key = shared_view(client, experiment.experiment_id, "ndcg_at_10")
    server, base = start_ui(mlflow_uri, log_path=tmp_path / "ui.log")
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1500, "height": 900})
            page.set_default_timeout(90_000)
            page.goto(view_url(base, experiment.experiment_id, key, chart=False))
            for name in ("k1=0.5", "k1=1.5"):
                page.get_by_text(name, exact=True).first.wait_for()
            header = page.get_by_role("columnheader", name="ndcg_at_10").first
            header.wait_for()
            assert header.is_visible()
            page.get_by_text("sweep adhoc", exact=False).first.wait_for()  # the parent run
            page.screenshot(path=str(SHOTS / "runs-table.png"))
            page.goto(view_url(base, experiment.experiment_id, key, chart=True))
            page.get_by_text("k1=1.5", exact=True).first.wait_for()
            page.get_by_text("ndcg_at_10", exact=True).first.wait_for()  # the metric's chart
            page.wait_for_timeout(1500)
            page.screenshot(path=str(SHOTS / "runs-chart.png"))
            browser.close()
    finally:
        stop_ui(server)
    assert (SHOTS / "runs-table.png").stat().st_size > 20_000
