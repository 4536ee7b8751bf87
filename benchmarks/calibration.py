"""How far to trust each offline generator: `retrieval-lab calibrate` on SciFact, NFCorpus and Cranfield.

The 12 configurations of experiments/calibration.yaml are ranked on each dataset's real test qrels and on 300
questions (seed 0) from each generator variant below, written from the same corpus:
- `title`: the title generator at its defaults (the document's title, word for word);
- `title-less`: title with dropout 0.5 and every word in another form of its stem (`inflect 1`);
- `extract`: the extract generator at its defaults (key terms, inflected);
- `extract-exact`: extract with `inflect 0` (the terms in the document's own word forms: the previous default).
doc2query and llm need a model or an endpoint, which this machine does not have offline.
Per dataset and variant: Kendall tau-b of the two rankings, whether the real winner is in the synthetic set's
not-significantly-worse group (randomization test, Holm), whether the synthetic winner is in the real one, the
BM25 configuration's rank on both, and the lexical check (BM25 MRR@10 of the source passage).
MiniLM-L6 and -L3 encode each corpus once (cached); reruns take a few minutes per dataset.

    .venv/bin/python benchmarks/calibration.py [--datasets scifact nfcorpus cranfield] [--queries 300]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

VARIANTS = {
    "title": ("title", {}),
    "title-less": ("title", {"dropout": 0.5, "inflect": 1.0}),
    "extract": ("extract", {}),
    "extract-exact": ("extract", {"inflect": 0.0}),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", nargs="+", default=["scifact", "nfcorpus", "cranfield"])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/calibration.json")
    args = parser.parse_args()

    from retrieval_lab.commands.calibrate import calibrate

    results = []
    for dataset in args.datasets:
        load = os.getloadavg()[0]
        result, folder = calibrate("calibration", dataset, VARIANTS, args.queries, args.seed,
                                   out=Path("outputs") / "calibrate" / f"bench-{dataset}",
                                   progress=lambda line: print(line, flush=True))
        print("\n".join(result.lines()), flush=True)
        results.append({**result.as_dict(), "load_start": load, "load_end": os.getloadavg()[0]})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print("\n" + "\n".join(table(results)))


def table(results: list[dict]) -> list[str]:
    lines = ["| dataset | generator | Kendall tau | real winner in its top group | its winner in the real top group | "
             "BM25 rank real -> synthetic | BM25 MRR@10 generated (copied) |", "|---|---|---:|---|---|---|---|"]
    for r in results:
        for a in r["agreements"]:
            lexical = r["sets"][a["label"]]["lexical_check"]
            lines.append(f"| {r['dataset']} | {a['label']} | {a['tau']:+.2f} | "
                         f"{'yes' if a['real_winner_in_synthetic_group'] else 'no'} "
                         f"({len(a['synthetic_group'])} in group) | "
                         f"{'yes' if a['synthetic_winner_in_real_group'] else 'no'} ({a['synthetic_winner']}) | "
                         f"{a['reference_rank_real']} -> {a['reference_rank_synthetic']} | "
                         f"{lexical['generated']['mrr_at_10']:.3f} ({lexical['copied']['mrr_at_10']:.3f}) |")
    return lines


if __name__ == "__main__":
    started = time.time()
    main()
    print(f"\n{time.time() - started:.0f} s")
