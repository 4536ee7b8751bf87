"""Train one recorded model twice from cold on this machine and compare the weights byte for byte (issue 37: "two cold
trainings of ce-scifact-hyb on this machine give identical weights").

    nice -n 10 .venv/bin/python benchmarks/cold_twice.py --pipeline fast-scifact --model ce-scifact-hyb
    ... benchmarks/cold_twice.py --work .cache/cold-twice/<stamp> --compare   # compare two finished tries again
    ... benchmarks/cold_twice.py --work <folder>   # a finished try-1 or try-2 there is kept, an empty one trained

Each try is a new empty cache under --work: the model and every model its recipe needs before it (the `requires`
entries of experiments/<pipeline>.yaml, in training order: for ce-scifact-hyb the fine-tuned MiniLM-L6 it starts from
and mines negatives with) are trained there by the same subprocess commands `make reproduce` runs
(benchmarks/reproduce.py). Then the sha256 of every file of each registered model folder (but the two that record
wall-clock time: TIMED) is compared between the two tries: every model in the chain must be identical, not only the
last. Results go to benchmarks/results/cold_twice.json; exit 1 when any file differs.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from reproduce import REPO, save, train, use_shared_datasets

from retrieval_lab.models.registry import lookup
from retrieval_lab.training.reproduce import recipes_of

OUT = REPO / "benchmarks" / "results" / "cold_twice.json"


# Written beside the weights with wall-clock facts in them, never equal twice: the lab's training log (seconds, peak
# memory, the cache folder) and sentence-transformers' model card ("Training Time").
TIMED = {"training.json", "README.md"}


def file_hashes(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file of a model folder but the TIMED ones."""
    hashes = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.name in TIMED:
            continue
        hashes[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def differences(first: dict, second: dict) -> dict[str, list[str]]:
    """model -> the files whose hashes differ between two tries (or that only one has)."""
    return {name: sorted(f for f in set(first[name]["files"]) | set(second.get(name, {}).get("files", {}))
                         if first[name]["files"].get(f) != second.get(name, {}).get("files", {}).get(f))
            for name in first}


def chain(pipeline: str, model: str):
    """The recipes that train `model` and the ones before it, in training order."""
    recipes = recipes_of([pipeline])[pipeline]
    names = [r.model for r in recipes]
    if model not in names:
        raise SystemExit(f"{model} is not trained by experiments/{pipeline}.yaml; its models: {', '.join(names)}")
    return recipes[:names.index(model) + 1]


def trained(recipes, cache: Path, seconds: dict | None = None) -> dict:
    """model -> its training seconds, final loss and file hashes, as registered in `cache`."""
    models = {}
    for recipe in recipes:
        found = lookup(recipe.kind, recipe.model, cache)
        if found is None:
            raise SystemExit(f"{recipe.model} is not registered in {cache}: that try did not finish")
        info = json.loads((found.folder / "training.json").read_text())
        models[recipe.model] = {"seconds": (seconds or {}).get(recipe.model, info.get("train_seconds")),
                                "final_loss": info.get("final_loss"), "files": file_hashes(found.folder)}
    return models


def finished(recipes, cache: Path) -> bool:
    return all(lookup(r.kind, r.model, cache) is not None for r in recipes)


def one_try(recipes, cache: Path, work: Path) -> dict:
    if cache.exists() and finished(recipes, cache):
        print(f"{cache.name}: every model already trained there (a finished try): compared as it is", flush=True)
        return trained(recipes, cache)
    if cache.exists() and any(cache.iterdir()):
        raise SystemExit(f"{cache} holds an unfinished try: a cold training needs an empty cache (remove {cache}, or "
                         "choose another --work)")
    cache.mkdir(parents=True, exist_ok=True)
    seconds = {}
    for recipe in recipes:
        print(f"{cache.name}: training {recipe.model}: {recipe.command}", flush=True)
        seconds[recipe.model] = train(recipe, cache, work)["seconds"]
        print(f"{cache.name}: {recipe.model} trained in {seconds[recipe.model]:.0f} s", flush=True)
    return trained(recipes, cache, seconds)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", default="fast-scifact", help="experiments/<pipeline>.yaml lists the recipes")
    parser.add_argument("--model", default="ce-scifact-hyb", help="the model trained twice (with those before it)")
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the two caches, their MLflow stores and logs (default: a new "
                             ".cache/cold-twice/<UTC time>)")
    parser.add_argument("--compare", action="store_true",
                        help="train nothing: compare the two tries already trained under --work")
    args = parser.parse_args(argv)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    work = (args.work or REPO / ".cache" / "cold-twice" / stamp).expanduser().resolve()
    if args.compare and args.work is None:
        parser.error("--compare needs --work: the folder holding try-1 and try-2")
    recipes = chain(args.pipeline, args.model)
    use_shared_datasets()
    t0 = time.perf_counter()
    # each try's logs and MLflow store beside its cache (the logs are named by model and seed: shared, they collide)
    tries = [trained(recipes, work / f"try-{i}") if args.compare
             else one_try(recipes, work / f"try-{i}", work / f"try-{i}-logs") for i in (1, 2)]
    differing = differences(*tries)
    result = {"pipeline": args.pipeline, "model": args.model, "commands": [r.command for r in recipes],
              "identical": not any(differing.values()), "differing_files": differing,
              "tries": tries, "seconds": time.perf_counter() - t0, "load_average": list(os.getloadavg()),
              "finished": stamp}
    save(OUT, f"{args.pipeline}/{args.model}", result)
    print("\n| model | files | identical | sha256 of the weights (try 1) | train s (try 1, try 2) |")
    print("|---|---:|---|---|---|")
    for name in tries[0]:
        files = tries[0][name]["files"]
        weights = next((h for f, h in files.items() if f.endswith(".safetensors")), "-")
        print(f"| {name} | {len(files)} | {'no: ' + ', '.join(differing[name]) if differing[name] else 'yes'} | "
              f"{weights[:16]} | {tries[0][name]['seconds']:.0f}, {tries[1][name]['seconds']:.0f} |")
    print(f"\ntotal {result['seconds']:.0f} s; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if result["identical"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
