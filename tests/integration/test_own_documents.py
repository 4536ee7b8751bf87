"""Own documents end to end: a folder of Markdown, HTML, text and PDF, questions with evidence quotes, a logged run,
its export, and `search` returning the section that holds the answer with its file and page."""
from __future__ import annotations

import json

from retrieval_lab import load_retriever, tracking
from retrieval_lab.config import compose_config
from retrieval_lab.pipeline import run_experiment
from retrieval_lab.pipeline.export import export_run
from retrieval_lab.pipeline.tracked import log_outcome
from tests.unit.test_folder_import import make_docs

QUESTIONS = [
    {"question": "which tools must be installed before building", "evidence": ["a C compiler"],
     "doc": "guide/install.md"},
    {"question": "what do dogs do when they meet people they do not know", "evidence": ["Dogs bark at strangers."]},
    {"question": "what makes imports quicker in the new version", "evidence": ["Faster imports & smaller indexes."]},
]


def test_folder_questions_run_export_and_search_with_source(tmp_path, mlflow_uri):
    docs = make_docs(tmp_path / "docs")
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    cfg = compose_config([f"dataset.path={docs}", f"dataset.questions={questions}", "retriever=bm25",
                          "chunker=fixed_tokens", "chunker.size=8", "chunker.overlap=0", "unit=section",
                          f"cache.dir={tmp_path / 'cache'}", "eval.k=[1,3]", "eval.depth=3"])
    outcome = run_experiment(cfg)
    assert outcome.dataset.name == "docs" and len(outcome.dataset.queries) == 3
    assert outcome.extra_metrics["evidence_queries"] == 3
    assert 0 < outcome.extra_metrics["evidence_coverage_at_3"] <= 1
    run_id = log_outcome(cfg, outcome)
    client = tracking.client({"uri": mlflow_uri})
    assert client.get_experiment(client.get_run(run_id).info.experiment_id).name == "docs"

    export_run(client, run_id, tmp_path / "best.yaml")
    header = (tmp_path / "best.yaml").read_text().split("\nformat:")[0]
    assert "dataset=nfcorpus" not in header  # a BEIR set is not what an own-documents run goes on with
    assert "evaluate --config best.yaml dataset.questions=OTHER_QUESTIONS.jsonl" in header
    retriever = load_retriever(tmp_path / "best.yaml")
    hit = retriever.search("dogs bark strangers", k=1)[0]
    assert hit["doc_id"] == "manual.pdf"
    assert "Dogs bark at strangers." in hit["passage"]  # the section (PDF outline item) holding the matched chunk
    assert hit["source"] == {"file": "manual.pdf", "page": 2, "offset": hit["source"]["offset"], "line": None,
                             "heading_path": ["Advanced use"], "anchor": None, "link": "manual.pdf"}
    hit = retriever.search("C compiler make requirements", k=1)[0]
    assert hit["doc_id"] == "guide/install.md" and hit["source"]["page"] is None
    source = hit["source"]  # a Markdown heading: its path, its slug as the anchor, and the file's line
    assert source["heading_path"][-1] == "Requirements" and source["link"] == "guide/install.md#requirements"
    assert isinstance(source["line"], int) and source["line"] > 1
    assert hit["passage"].startswith("Requirements") and "GNU make" in hit["passage"]
    assert "Building" not in hit["passage"]  # the Requirements section only
