"""Two measured rows compared query by query: each row holds `per_query` (query id -> metric value), as the
benchmarks' result files and `reproduce` record them."""
from __future__ import annotations

import json
from pathlib import Path

from retrieval_lab.errors import DataError
from retrieval_lab.evaluate.significance import randomization_test


def paired_vs(a: dict, b: dict) -> dict:
    """Mean difference and two-sided randomization-test p of a - b over the queries both scored."""
    queries = sorted(set(a["per_query"]) & set(b["per_query"]))
    x = [a["per_query"][q] for q in queries]
    y = [b["per_query"][q] for q in queries]
    return {"delta": (sum(x) - sum(y)) / len(queries), "p": randomization_test(x, y), "queries": len(queries)}


def paired_rows(a: str, b: str) -> dict:
    """`paired_vs` of two quality rows named 'file:row' (a results file's `quality` table), e.g. the same setting
    over two first stages; a missing row is a DataError naming the file and the rows it has."""
    rows = []
    for spec in (a, b):
        path, _, key = spec.partition(":")
        quality = json.loads(Path(path).read_text()).get("quality", {})
        if key not in quality:
            raise DataError(path, f"no quality row '{key}' (rows: {', '.join(quality) or 'none'})")
        rows.append(quality[key])
    return {"a": a, "b": b, "a_ndcg_at_10": rows[0]["ndcg_at_10"], "b_ndcg_at_10": rows[1]["ndcg_at_10"],
            **paired_vs(*rows)}
