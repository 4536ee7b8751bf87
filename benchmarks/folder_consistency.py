"""Consistency of the own-documents path with the BEIR path, on SciFact.

SciFact's corpus is written out as a folder of documents in four formats (Markdown, HTML, plain text, PDF; assigned
in turn by corpus order, so about 1,300 of each), and its test claims as a questions JSONL (question = the claim,
`doc` = the relevant documents' relative paths, `evidence` = the rationale sentences where the query metadata has
them, `id` = the BEIR query id). Each configuration is then evaluated twice with `run_experiment`: over the BEIR
folder (`dataset=scifact`) and over the folder of documents (`dataset.path=<folder> dataset.questions=<jsonl>`,
imported on the fly). Both should give the same qrels and, up to what extraction changes, the same metrics.

How each document is written, so that the importer reads back the BEIR title and text: see
`retrieval_lab/data/roundtrip.py`.

Per format, the share of documents whose imported title or text differs from the BEIR one, and how (whitespace
only, line breaks, end-of-line hyphenation, or other characters: `difference`), and whether the evidence quotes were
located at the same sentences. Where a configuration's nDCG@10 differs (`--attribute`), the folder path is run again
with one format at a time given back its BEIR titles and texts, then all of them (`attribute`).

    nice -n 10 .venv/bin/python benchmarks/folder_consistency.py [--configs bm25 wordllama minilm_l6_int8] \
        [--attribute wordllama] [--folder DIR] [--out benchmarks/results/folder_consistency.json]

The folder defaults to `<cache>/folder-consistency/scifact-documents` (the cache root: $RETRIEVAL_LAB_CACHE, else
~/.cache/retrieval-lab); it is written once per corpus and layout (a hidden stamp file records which).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CI", "1")  # no progress bars in the log

CONFIGS = {
    "bm25": ["retriever=bm25"],
    "wordllama": ["retriever=dense", "embedder=wordllama"],
    "minilm_l6_int8": ["retriever=dense", "embedder=minilm_l6", "embedder.backend=onnx_int8"],
}


def main() -> None:
    from retrieval_lab.cache import default_cache_dir
    from retrieval_lab.config import compose_config
    from retrieval_lab.data import load_dataset
    from retrieval_lab.data.roundtrip import (compare_corpora, load_both, mapped_qrels, same_evidence, write_documents,
                                              write_questions)
    from retrieval_lab.errors import DataError
    from retrieval_lab.pipeline.roundtrip import attribute, compare_runs

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["bm25", "wordllama"], choices=sorted(CONFIGS))
    parser.add_argument("--attribute", nargs="*", default=["wordllama"], choices=sorted(CONFIGS),
                        help="configurations whose difference is attributed to formats (four more runs each, every "
                             "one embedding the whole corpus again for a dense retriever)")
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/folder_consistency.json"))
    args = parser.parse_args()
    folder = (args.folder or default_cache_dir() / "folder-consistency" / "scifact-documents").expanduser().resolve()
    base = ["dataset=scifact"]
    beir = load_dataset(compose_config(base).dataset)
    start = time.perf_counter()
    try:
        paths = write_documents(beir.corpus, folder)
    except DataError:  # files without the writer's stamp
        raise SystemExit(f"{folder} holds files this script did not write: give another --folder") from None
    questions = folder.parent / "scifact-test-questions.jsonl"
    quotes = write_questions(beir, paths, questions)
    written = time.perf_counter() - start
    start = time.perf_counter()
    _, own = load_both(base, folder, questions)
    loaded = time.perf_counter() - start
    report = {
        "documents": len(beir.corpus), "imported": len(own.corpus), "queries": len(beir.queries),
        "evidence_quotes": quotes, "write_seconds": written, "import_and_resolve_seconds": loaded,
        "qrels_equal": mapped_qrels(own.qrels) == {q: dict(d) for q, d in beir.qrels.items()},
        "evidence_queries": {"beir": len(beir.evidence), "folder": len(own.evidence)},
        "evidence_equal": same_evidence(beir, own),
        "formats": compare_corpora(beir.corpus, own.corpus, paths),
        "runs": {},
        "load": os.getloadavg()[0],
    }
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=1, ensure_ascii=False), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name in args.configs:
        run = compare_runs(beir, own, CONFIGS[name], base, folder, questions, paths)
        if name in args.attribute and run["queries_ndcg_changed"]:
            run["ndcg_gain_undoing_format"] = attribute(beir, own, CONFIGS[name], base, folder, questions, paths,
                                                        run["folder"]["ndcg_at_10"])
        report["runs"][name] = run
        print(name, json.dumps(report["runs"][name]), flush=True)
        args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print()
    print("| retriever | path | queries | nDCG@10 | recall@100 |")
    print("|---|---|---:|---:|---:|")
    for name, run in report["runs"].items():
        for label in ("beir", "folder"):
            r = run[label]
            print(f"| {name} | {label} | {r['queries']} | {r['ndcg_at_10']:.4f} | {r['recall_at_100']:.4f} |")
        d = run["difference"]
        print(f"| {name} | folder − BEIR | | {d['ndcg_at_10']:+.4f} | {d['recall_at_100']:+.4f} |")


if __name__ == "__main__":
    main()
