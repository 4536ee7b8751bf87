"""The own-docs study: its grid composes into the chunker, unit and pipeline it names, ranked by a span metric."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from retrieval_lab.config import compose_config
from retrieval_lab.paths import experiments_dir

CHUNKINGS = {"tokens64": ("fixed_tokens", 64), "tokens128": ("fixed_tokens", 128), "tokens256": ("fixed_tokens", 256),
             "sentences": ("sentences", 3), "recursive": ("recursive", 128)}


@pytest.mark.parametrize("chunking", sorted(CHUNKINGS))
def test_each_chunking_sets_chunker_and_size(chunking):
    cfg = compose_config(["+experiments=own-docs", f"+chunking={chunking}", "unit=window",
                          "+pipeline=hybrid_wordllama"])
    assert (cfg.chunker.name, cfg.chunker.size) == CHUNKINGS[chunking]
    assert cfg.unit.name == "window" and cfg.retriever.name == "hybrid" and cfg.embedder.name == "wordllama"
    assert cfg.dataset.name == "r_manuals" and cfg.sweep.metric == "evidence_coverage_budget_512"


def test_the_sweep_grid_is_the_documented_one():
    params = OmegaConf.load(experiments_dir() / "own-docs.yaml").hydra.sweeper.params
    assert params["+chunking"].split(",") == list(CHUNKINGS)
    assert params["unit"].split(",") == ["chunk", "window", "section", "document"]
    assert params["+pipeline"].split(",") == ["bm25", "dense_wordllama", "hybrid_wordllama"]


def test_the_study_follows_the_dataset_it_is_given(tmp_path):
    from retrieval_lab.pipeline.tracked import experiment_name, resolved_config

    docs = tmp_path / "my_docs"
    docs.mkdir()
    cfg = compose_config(["+experiments=own-docs", f"dataset.path={docs}", "dataset.questions=q.jsonl"])
    assert experiment_name(cfg) == "own-docs-my_docs"
    assert resolved_config(cfg)["dataset"]["name"] == "my_docs"  # config.yaml and the export name your data
    shipped = compose_config(["+experiments=own-docs"])
    assert experiment_name(shipped) == "own-docs-r_manuals"
    assert resolved_config(shipped)["dataset"]["name"] == "r_manuals"
    other = compose_config(["+experiments=chunking", f"dataset.path={docs}"])
    assert experiment_name(other) == "chunking-my_docs"


def test_the_docs_give_the_study_the_same_duration():
    import re

    from retrieval_lab.paths import project_home

    def minutes(text: str, where: str) -> set[str]:
        found = set(re.findall(r"~(\d+) min", text))
        assert found, f"no duration in {where}"
        return found

    study = (experiments_dir() / "own-docs.yaml").read_text()
    readme = next(line for line in (project_home() / "README.md").read_text().splitlines()
                  if line.startswith("retrieval-lab sweep own-docs"))
    table = next(line for line in (experiments_dir() / "README.md").read_text().splitlines()
                 if line.startswith("| `own-docs` |"))
    assert minutes(study, "own-docs.yaml") == minutes(readme, "README.md") == minutes(table, "experiments/README.md")
