"""`retrieval-lab calibrate` on Cranfield: four cheap configurations of the calibration study, ranked on the real
qrels and on 50 title and 50 extract questions; the figures agree with plain runs and with their own leaderboards."""
from __future__ import annotations

import json

import pytest
from scipy.stats import kendalltau

from retrieval_lab.cli import main
from retrieval_lab.config import compose_config
from retrieval_lab.pipeline import run_experiment

CONFIGS = ["bm25", "bm25_unstemmed", "dense_wordllama", "hybrid_wordllama"]


def test_calibrate_cranfield(data_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RETRIEVAL_LAB_DATA", str(data_root))
    out = tmp_path / "calibration"
    assert main(["calibrate", "--dataset", "cranfield", "--queries", "50", "--trials", "2000", "--out", str(out),
                 f"+experiments/calibration={','.join(CONFIGS)}"]) == 0
    printed = capsys.readouterr().out
    assert "study calibration: 4 configurations on cranfield" in printed and "extract: Kendall tau" in printed
    report = json.loads((out / "calibration.json").read_text())
    assert list(report["configurations"]) == CONFIGS
    assert report["queries"] == {"real": 225, "title": 50, "extract": 50}

    # the real column is a plain run of that configuration: no shortcut
    plain = run_experiment(compose_config(["dataset=cranfield", "retriever=bm25", "tracking.enabled=false"]))
    assert report["means"]["real"]["bm25"] == pytest.approx(plain.evaluation.means["ndcg_at_10"], abs=1e-12)

    for found in report["agreements"]:
        synthetic, real = report["means"][found["label"]], report["means"]["real"]
        assert found["tau"] == pytest.approx(kendalltau([real[c] for c in CONFIGS],
                                                        [synthetic[c] for c in CONFIGS]).statistic)
        assert found["real_winner"] == max(real, key=real.get)
        assert found["synthetic_winner"] == max(synthetic, key=synthetic.get)
        assert found["synthetic_group"][0] == found["synthetic_winner"]
        assert found["real_winner_in_synthetic_group"] == (found["real_winner"] in found["synthetic_group"])
        assert found["reference_rank_synthetic"] == 1 + sum(v > synthetic["bm25"] for v in synthetic.values())
        assert found["reference_shift"] == found["reference_rank_real"] - found["reference_rank_synthetic"]
        questions = (out / f"cranfield-{found['label']}-50q-seed0.jsonl").read_text().splitlines()
        assert len(questions) == 50 and all(json.loads(q)["question"] for q in questions)
        assert report["sets"][found["label"]]["lexical_check"]["queries"] == 50
